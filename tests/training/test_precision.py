"""bf16-mixed, the precision of the published setting: regularisers and the energy gap stay float32.

Fabric's ``bf16-mixed`` on CPU runs the forward under ``torch.autocast("cpu", torch.bfloat16)``, as on
GPUs; the towers' features are then bf16, but the scores, differences and sums built from them must not
be rounded to bf16 again.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lightning_fabric import Fabric

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.evaluation.metrics import energy_gap
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import ParameterError, parse
from lipsum_ft.training.loop import fit
from tests.training.loop_helpers import config, make, tiny_setup
from tests.training.objective_helpers import build_objective

CLASSNAMES = ["zero", "one", "two", "three"]
TEMPLATES = ["a photo of the digit {}.", "a sketch of the digit {}."]
SCALE = 100.0  # a real CLIP's logit scale: scores of tens, whose small differences bf16 would round


@pytest.fixture(scope="module")
def zero_shot():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, len(CLASSNAMES), generator=torch.Generator().manual_seed(1)), dim=0)
    return model.eval(), spec, head


def objective(zero_shot, method: str):
    model, spec, head = zero_shot
    return build_objective(
        method, model, head, SCALE, spec=spec, classnames=CLASSNAMES, coefficient=1.0, templates=TEMPLATES
    )


def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, len(CLASSNAMES), (8,), generator=g)


def bf16(module):
    fabric = Fabric(accelerator="cpu", devices=1, precision="bf16-mixed")
    return fabric.setup_module(module)


def nudge(objective, size: float) -> None:
    """Move theta a little away from theta_0: the towers stay close, as early in fine-tuning."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in objective.classifier.visual.parameters():
            p.add_(size * torch.randn(p.shape, generator=g))


def bf16_features(objective, images, step):
    """The bf16 features the regulariser sees: both towers and the text tower under bf16 autocast."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        features = objective.classifier.features(images)
        zero = objective.zero_shot_features(images)
        texts = objective.text_features(step) if hasattr(objective, "text_features") else None
    return features, zero, texts


def test_r_is_exactly_zero_at_step_zero_under_bf16_mixed(zero_shot):
    lipsum = objective(zero_shot, "lipsum").train()
    images, labels = batch()
    _, terms = bf16(lipsum)(images, labels, 0)
    assert terms["reg"].dtype == torch.float32
    assert terms["reg"].item() == 0.0


@pytest.mark.parametrize("distance", [1e-4, 5e-4, 1e-2])
def test_r_under_bf16_mixed_equals_r_in_float32_from_the_same_bf16_features(zero_shot, distance):
    # bf16 scores would be off by ~24 % / ~14 % / ~0.5 % here (measured), the closer the towers the worse.
    lipsum = objective(zero_shot, "lipsum").train()
    nudge(lipsum, distance)
    images, labels = batch()
    _, terms = bf16(lipsum)(images, labels, 3)
    features, zero, texts = bf16_features(lipsum, images, 3)
    assert features.dtype == texts.dtype == torch.bfloat16  # the forward really ran in bf16
    # R written out in float64 from the same bf16 features: mean_x sum_m (s <f - f0, t_m>)^2 / (2M).
    f, f0, t = features.double(), zero.double(), texts.double()
    v_theta, v_zero = SCALE * f @ t.T, SCALE * f0 @ t.T
    expected = ((v_theta - v_zero) ** 2).sum(dim=1).mean() / (2 * t.shape[0])
    assert expected > 0
    assert terms["reg"].dtype == torch.float32
    assert terms["reg"].item() == pytest.approx(expected.item(), rel=2e-3)


@pytest.mark.parametrize("method", ["kd", "carft"])
def test_kd_and_carft_under_bf16_mixed_equal_float32_from_the_same_bf16_features(zero_shot, method):
    images, labels = batch()
    reg = objective(zero_shot, method).train()
    nudge(reg, 5e-4)
    _, terms = bf16(reg)(images, labels, 0)
    features, zero, _ = bf16_features(reg, images, 0)
    f, f0 = features.double(), zero.double()
    if method == "kd":
        expected = ((f - f0) ** 2).sum(dim=1).mean()
    else:
        contexts = reg.contexts.double()
        log_p = torch.log_softmax(SCALE * f @ contexts.T, dim=1)
        log_p0 = torch.log_softmax(SCALE * f0 @ contexts.T, dim=1)
        expected = (log_p0.exp() * (log_p0 - log_p)).sum(dim=1).mean()
    assert expected > 0
    assert terms["reg"].dtype == torch.float32
    assert terms["reg"].item() == pytest.approx(expected.item(), rel=2e-3)


def test_l2sp_under_bf16_mixed_is_the_float32_squared_distance(zero_shot):
    l2sp = objective(zero_shot, "l2sp").train()
    nudge(l2sp, 1e-4)
    images, labels = batch()
    _, terms = bf16(l2sp)(images, labels, 0)
    start = dict(l2sp.reference.visual.named_parameters())
    expected = sum(
        ((p.double() - start[n].double()) ** 2).sum() for n, p in l2sp.classifier.visual.named_parameters()
    )
    assert terms["reg"].dtype == torch.float32
    assert terms["reg"].item() == pytest.approx(expected.item(), rel=1e-4)


def test_energy_gap_under_bf16_autocast_is_computed_in_float32():
    g = torch.Generator().manual_seed(4)
    zero = F.normalize(torch.randn(16, 64, generator=g), dim=1)
    tuned = F.normalize(zero + 0.01 * torch.randn(16, 64, generator=g), dim=1)
    texts = F.normalize(torch.randn(80, 64, generator=g), dim=1)
    expected = (((zero.double() - tuned.double()) @ texts.double().T) ** 2).mean().item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gap = energy_gap(tuned, zero, texts)
    assert gap == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_the_conf_test_chain_runs_with_bf16_mixed_fine_tuning_and_mars_tpgm(chain, tmp_path):
    """finetune (bf16-mixed) -> posthoc (TPGM with mars) -> evaluate on conf/test, reusing the chain's
    data and zero-shot model. Posthoc and evaluate have no precision setting; they run in float32."""
    import json

    import pandas as pd

    from tests.kedro_helpers import linked_after_zeroshot, run_in

    project = linked_after_zeroshot(chain, tmp_path / "project")
    run_in(
        project,
        ["finetune", "posthoc", "evaluate"],
        finetune={"precision": "bf16-mixed"},
        posthoc={"tpgm": {"norm": "mars"}},
    )
    log = pd.read_csv(project / "data/08_reporting/finetune_log.csv")
    lipsum = log[log["method"] == "lipsum"].sort_values("step")
    assert lipsum["reg"].iloc[0] == 0.0  # theta = theta_0 at the first step: R exactly 0 in bf16 too
    # warm-up starts at lr 0, so the first update that moves theta is step 2's: R > 0 from step 3 on
    assert lipsum["reg"].iloc[1] == 0.0
    assert (lipsum["reg"].iloc[2:] > 0).all() and log["loss"].notna().all()
    summary = json.loads((project / "data/08_reporting/tpgm_summary.json").read_text())
    assert {s["norm"] for s in summary.values()} == {"mars"}
    assert all(0 < s["mean_ratio"] <= 1 for s in summary.values())
    results = pd.read_csv(project / "reports/results.csv")
    assert {"tpgm-ft", "tpgm-lipsum"} <= set(results["variant"]) and results["acc"].notna().all()


def test_validation_runs_in_the_training_precision():
    """Fabric applies bf16 autocast only inside the module it wraps; validation calls the classifier
    itself, so it ran in float32 (on a GPU without TF32: at a fraction of bf16's speed, and scored
    with other numerics than the forward it selects among)."""
    setup = tiny_setup()
    objective = make(setup, "ft")
    seen: list[tuple[bool, torch.dtype]] = []
    objective.classifier.visual.register_forward_hook(
        lambda module, args, out: seen.append((torch.is_grad_enabled(), out.dtype))
    )
    fit(objective, setup[3], setup[4], config(precision="bf16-mixed", steps=2, eval_every=1))
    assert {dtype for grad, dtype in seen if not grad} == {torch.bfloat16}  # validation's forwards
    assert {dtype for grad, dtype in seen if grad} == {torch.bfloat16}  # training's


def test_a_precision_the_loop_does_not_support_is_refused_by_name():
    finetune = {"reference_domain": "photo", "lr": 1e-5, "precision": "bf16-true"}
    with pytest.raises(
        ParameterError, match=r"finetune\.precision: .*'32-true' or 'bf16-mixed' \(got 'bf16-true'\)"
    ):
        parse(FinetuneParams, finetune)
