"""Warm-up as in the reference implementations: lr 0 at step 0, the peak at the end of warm-up, then a
half cosine towards 0; and the lr each step logs is the lr that step used."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.data.images import InMemoryImages
from lipsum_ft.training.loop import TrainConfig, fit
from lipsum_ft.training.schedule import adamw, decay_groups, warmup_cosine, warmup_cosine_factor
from tests.kedro_helpers import REPO
from tests.training.objective_helpers import build_objective


def expected_lr(step: int, peak: float, total: int, warmup: int) -> float:
    """Linear 0 -> peak over steps [0, warmup], then peak * (1 + cos(pi * progress)) / 2."""
    if step < warmup:
        return peak * step / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def lrs_from_scheduler(peak: float, total: int, warmup: int) -> list[float]:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=peak)
    scheduler = warmup_cosine(optimizer, total, warmup)
    seen = []
    for _ in range(total):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_first_peak_and_last_lr_follow_the_reference_warm_up():
    peak, total, warmup = 3e-4, 13, 4
    lrs = lrs_from_scheduler(peak, total, warmup)
    assert lrs[0] == 0.0  # not peak / warmup
    assert lrs[1] == pytest.approx(peak / 4, rel=1e-12)
    assert lrs[warmup] == pytest.approx(peak, rel=1e-12)  # the peak is reached at the end of warm-up
    assert max(lrs) == lrs[warmup]
    last = peak * 0.5 * (1 + math.cos(math.pi * 8 / 9))  # step 12: 8 of the 9 cosine steps done
    assert lrs[-1] == pytest.approx(last, rel=1e-12)
    assert lrs == pytest.approx([expected_lr(s, peak, total, warmup) for s in range(total)], rel=1e-12)


def test_without_warm_up_the_first_step_is_at_the_peak():
    lrs = lrs_from_scheduler(1e-3, 5, 0)
    assert lrs[0] == 1e-3 and lrs[-1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 5)))


def test_the_factor_reaches_zero_at_total_steps_and_stays_there():
    # The scheduler is stepped once past the last step (and a resumed run may ask for later steps): the lr
    # must stay at 0, not climb back up the cosine. With one cosine step (total = warm-up + 1), step
    # `total` is already the end of the cosine.
    assert warmup_cosine_factor(6, total_steps=7, warmup_steps=6) == 1.0
    assert warmup_cosine_factor(7, total_steps=7, warmup_steps=6) == 0.0
    assert warmup_cosine_factor(12, total_steps=13, warmup_steps=4) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 8 / 9)), rel=1e-12
    )
    assert [warmup_cosine_factor(s, total_steps=13, warmup_steps=4) for s in (13, 17, 20, 31)] == [0.0] * 4


class Named(torch.nn.Module):
    """Parameters of every kind decay_groups tells apart, named as in open_clip."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 5)  # 2-D weight: decays; 1-D bias: does not
        self.conv = torch.nn.Conv2d(2, 4, 3)  # 4-D weight: decays
        self.token_embedding = torch.nn.Embedding(11, 3)  # 2-D, but an embedding: does not
        self.positional_embedding = torch.nn.Parameter(torch.randn(6, 3))  # likewise
        self.ln = torch.nn.LayerNorm(3)  # 1-D scales and shifts: do not
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.0))  # 0-D: does not
        self.frozen = torch.nn.Parameter(torch.randn(4, 4), requires_grad=False)  # in no group


def test_only_trainable_matrices_that_are_not_embeddings_decay():
    module = Named()
    params = dict(module.named_parameters())
    names = {id(p): n for n, p in params.items()}
    groups = decay_groups(module, 0.3)
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["conv.weight", "proj.weight"]
    assert sorted(names[id(p)] for p in groups[1]["params"]) == sorted(
        [
            "proj.bias",
            "conv.bias",
            "token_embedding.weight",
            "positional_embedding",
            "ln.weight",
            "ln.bias",
            "logit_scale",
        ]
    )
    # One AdamW step with zero gradients moves nothing but the decoupled decay: p * (1 - lr * wd) for the
    # decay group, p unchanged for the other (AdamW's own default decay is 1e-2, not 0).
    before = {n: p.detach().clone() for n, p in params.items()}
    optimizer = adamw(groups, lr=0.1, betas=(0.9, 0.98), eps=1e-6)
    for p in module.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in params.items():
        expected = before[name] * (1 - 0.1 * 0.3) if name in ("conv.weight", "proj.weight") else before[name]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=0)


def test_adamw_steps_with_the_given_betas_and_eps():
    # Two steps with different gradients: the first update is g / (|g| + eps) whatever the betas, so the
    # second one shows beta1 and beta2; gradients of the order of eps make eps count. Expected: AdamW by
    # hand (decoupled decay, bias-corrected moments).
    lr, wd, (b1, b2), eps = 0.1, 0.2, (0.6, 0.75), 1e-3
    p0 = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    grads = [
        torch.tensor([2e-3, -5e-4, 1e-3], dtype=torch.float64),
        torch.tensor([-1e-3, 3e-3, 4e-4], dtype=torch.float64),
    ]
    p = torch.nn.Parameter(p0.clone())
    optimizer = adamw([{"params": [p], "weight_decay": wd}], lr=lr, betas=(b1, b2), eps=eps)
    # The fused kernel is the point of this helper (speed); its results differ from the for-each kernel's
    # in the last bit only, so only the flag tells them apart.
    assert optimizer.param_groups[0]["fused"] is True
    expected, m, v = p0.clone(), torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        p.grad = g.clone()
        optimizer.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        expected = expected * (1 - lr * wd) - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-14)


def test_a_tiny_fine_tuning_run_logs_the_lr_each_step_used():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(1)), dim=0)
    g = torch.Generator().manual_seed(2)
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    images = lambda n: InMemoryImages(  # noqa: E731
        torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(n) % 4, mean, std
    )
    objective = build_objective("ft", model.eval(), head, 14.0, spec=spec, classnames=["a", "b", "c", "d"])
    peak, total = 2e-3, 7
    config = TrainConfig(
        steps=total, batch_size=8, lr=peak, warmup_fraction=0.3, eval_every=7, progress=False
    )
    result = fit(objective, images(16), images(8), config)
    logged = [row["lr"] for row in result.log]
    warmup = 2  # int(0.3 * 7)
    assert logged[0] == 0.0
    assert logged[warmup] == pytest.approx(peak, rel=1e-12)
    assert logged[-1] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 4 / 5)), rel=1e-12)
    assert logged == pytest.approx([expected_lr(s, peak, total, warmup) for s in range(total)], rel=1e-12)


def test_conf_test_fine_tuning_has_at_least_one_warm_up_step():
    base = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    test = yaml.safe_load((REPO / "conf/test/parameters_finetune.yml").read_text())["finetune"]
    steps = test.get("steps", base["steps"])
    assert int(test.get("warmup_fraction", base["warmup_fraction"]) * steps) >= 1


@pytest.mark.slow
def test_the_kedro_fine_tuning_log_follows_the_schedule(chain):
    """conf/test's real ``finetune`` run: each method's logged lr at the first step, the peak, the last."""
    base = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    test = yaml.safe_load((REPO / "conf/test/parameters_finetune.yml").read_text())["finetune"]
    params = {**base, **test}
    total, warmup = params["steps"], int(params["warmup_fraction"] * params["steps"])
    log = pd.read_csv(chain / "data/08_reporting/finetune_log.csv")
    for method, rows in log.groupby("method"):
        peak = params["lr_by_method"].get(method, params["lr"])
        lrs = rows.sort_values("step")["lr"].tolist()
        assert len(lrs) == total
        assert lrs[0] == 0.0
        assert lrs[warmup] == pytest.approx(peak, rel=1e-9)
        assert lrs[-1] == pytest.approx(expected_lr(total - 1, peak, total, warmup), rel=1e-9)
        assert lrs == pytest.approx([expected_lr(s, peak, total, warmup) for s in range(total)], rel=1e-9)
