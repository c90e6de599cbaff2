"""Best-on-val selection, made observable: a run whose validation accuracy peaks mid-way.

A controlled objective sets the classifier to prescribed states (its loss has zero gradient, so
AdamW leaves them as set): after steps 1-2 a head that gets half the validation set right, after
steps 3-4 one that gets all of it, after 5-6 one that gets none. The real loop, the real
validation and the real finetune node must keep, save and export the state of step 4.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from lipsum_ft.clip.backbone import ClipBundle, new_model
from lipsum_ft.data.images import InMemoryImages
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.training import runs
from lipsum_ft.training.loop import TrainConfig, fit
from lipsum_ft.training.objectives import Objective

REPO = Path(__file__).resolve().parents[2]
CLASSES = 4
BEST = 4  # the step whose state is best on val
VAL_ACC = {2: 0.5, 4: 1.0, 6: 0.0}


class Prescribed(Objective):
    """Before step s (0-based) runs, the classifier becomes ``states[s + 1]``; the loss has zero gradient."""

    name = "ft"

    def __init__(self, clip, head, logit_scale, states, crash_at: int | None = None):
        super().__init__(clip, head, logit_scale)
        self.states, self.crash_at = states, crash_at

    def forward(self, images, labels, step):
        if step == self.crash_at:
            raise KeyboardInterrupt("simulated interruption")
        self.classifier.load_state_dict(self.states[step + 1])
        loss = 0.0 * self.classifier.head.sum()
        return loss, {"ce": loss.detach()}


@pytest.fixture(scope="module")
def setup():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    model.eval()
    g = torch.Generator().manual_seed(2)
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]

    def images(n: int) -> InMemoryImages:
        pixels = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        return InMemoryImages(pixels, torch.arange(n) % CLASSES, mean, std)

    train, val = images(16), images(8)
    with torch.no_grad():
        features = F.normalize(model.visual(next(val.eval_batches(8))), dim=-1)

    def head_scoring(targets: torch.Tensor) -> torch.Tensor:
        """A head whose logits on the val images put ``targets`` first by a wide margin."""
        wanted = 0.5 * F.one_hot(targets, CLASSES).float() - 0.1
        return torch.linalg.pinv(features) @ wanted

    labels = val.labels
    half = torch.where(torch.arange(8) < 4, labels, (labels + 1) % CLASSES)
    heads = {2: head_scoring(half), 4: head_scoring(labels), 6: head_scoring((labels + 2) % CLASSES)}
    visual = model.visual.state_dict()
    states = {}
    for step in range(1, 7):
        state = {f"visual.{k}": v.clone() for k, v in visual.items()}
        state["visual.ln_post.bias"] += 1e-5 * step  # every step's tower differs, harmlessly
        state["head"] = heads[2 * ((step + 1) // 2)].clone()
        state["logit_scale"] = torch.tensor(14.0)
        states[step] = state
    return model, spec, heads[4], train, val, states


def config(**overrides) -> TrainConfig:
    base = TrainConfig(steps=6, batch_size=8, lr=1e-2, weight_decay=0.0, eval_every=2, progress=False)
    return replace(base, **overrides)


def assert_state(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


def test_the_run_keeps_the_state_of_the_step_best_on_val(setup):
    model, _, head, train, val, states = setup
    result = fit(Prescribed(model, head, 14.0, states), train, val, config())
    assert {row["step"]: row["val_acc"] for row in result.log if "val_acc" in row} == VAL_ACC
    assert result.best_step == BEST and result.best_val_acc == 1.0
    assert_state(result.best_state, states[BEST])
    assert not torch.equal(result.best_state["head"], states[6]["head"])  # not the last state


def test_the_finetune_node_exports_the_best_state(setup, monkeypatch):
    model, spec, head, train, val, states = setup
    finetune = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    finetune.update(
        reference_domain="photo", loader={}, steps=6, batch_size=8, weight_decay=0.0, eval_every=2
    )
    finetune.update(checkpoint_every=0, progress=False)
    params = parse(FinetuneParams, finetune)
    monkeypatch.setattr(
        runs,
        "make_objective",
        lambda method, settings, context: Prescribed(context.clip, context.head, context.logit_scale, states),
    )
    zeroshot = {"weight": head, "logit_scale": torch.tensor(14.0)}
    bundle, log = runs.finetune_one(
        "ft", params, ClipBundle(model=model, spec=spec), zeroshot, ["a", "b", "c", "d"], train, val
    )
    assert bundle.spec.extra["finetune"]["best_step"] == BEST
    assert bundle.spec.extra["finetune"]["peak_memory_gib"] is None  # recorded; a CPU run has no GPU peak
    assert torch.equal(bundle.head["weight"], states[BEST]["head"])
    exported = {f"visual.{k}": v for k, v in bundle.model.visual.state_dict().items()}
    assert_state(exported, {k: v for k, v in states[BEST].items() if k.startswith("visual.")})
    assert log["val_acc"].dropna().tolist() == list(VAL_ACC.values())


def test_a_resumed_run_selects_the_same_step(setup, tmp_path):
    model, _, head, train, val, states = setup
    checkpoint = tmp_path / "ckpt.pt"
    settings = dict(checkpoint_every=2, checkpoint_path=str(checkpoint))
    with pytest.raises(KeyboardInterrupt):  # stops after the best step's checkpoint, before step 5
        fit(Prescribed(model, head, 14.0, states, crash_at=4), train, val, config(**settings))
    assert torch.load(checkpoint, weights_only=False)["step"] == 4
    resumed = fit(Prescribed(model, head, 14.0, states), train, val, config(**settings, resume=True))
    assert [row["step"] for row in resumed.log] == [1, 2, 3, 4, 5, 6]
    assert resumed.best_step == BEST and resumed.best_val_acc == 1.0
    assert_state(resumed.best_state, states[BEST])
