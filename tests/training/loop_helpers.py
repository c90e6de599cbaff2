"""The tiny model and images, objectives, configs, injected faults and comparisons that the loop tests
share (``test_training``, ``test_checkpoint``, ``test_checkpoint_faults``, ``test_live``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.data.images import InMemoryImages
from lipsum_ft.training.loop import TrainConfig
from tests.training.objective_helpers import build_objective

CLASSNAMES = ["a", "b", "c", "d"]


def tiny_setup():
    """(model, spec, head, train, val): TinyCLIP at seed 0, a random unit head over four classes, and
    24 training and 8 validation images of 32 px (the ``setup`` fixture; a fresh process builds its own)."""
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(1)), dim=0)
    g = torch.Generator().manual_seed(2)
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    train = InMemoryImages(
        torch.randint(0, 256, (24, 3, 32, 32), generator=g, dtype=torch.uint8),
        torch.arange(24) % 4,
        mean,
        std,
    )
    val = InMemoryImages(
        torch.randint(0, 256, (8, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(8) % 4, mean, std
    )
    return model.eval(), spec, head, train, val


def make(setup, method="lipsum", **settings):
    """Lipsum-FT at weight 1 with 16 random-token texts, unless ``settings`` say otherwise."""
    model, spec, head, _, _ = setup
    settings = {"coefficient": 1.0, "num_texts": 16, **settings}
    return build_objective(method, model, head, 14.0, spec=spec, classnames=CLASSNAMES, **settings)


def config(**overrides) -> TrainConfig:
    base = TrainConfig(
        steps=6,
        batch_size=8,
        lr=1e-3,
        weight_decay=0.1,
        warmup_fraction=0.2,
        eval_every=3,
        progress=False,
        flip=True,
    )
    return replace(base, **overrides)


def assert_states_equal(a, b, **tolerance):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], **tolerance)


def fault_at(monkeypatch: pytest.MonkeyPatch, objective, step: int, fault: str) -> Callable[[], None]:
    """Make ``objective``'s forward fail at the 0-based ``step``, and return the undo.

    ``fault``: ``"interrupt"`` raises KeyboardInterrupt there (a preemption mid-run); ``"nan"`` returns a
    NaN loss there (the terms as computed).
    """
    if fault not in ("interrupt", "nan"):
        raise ValueError(f"fault={fault!r}: expected 'interrupt' or 'nan'")
    cls = type(objective)
    original = cls.forward

    def faulty(self, images, labels, at):
        if at == step and fault == "interrupt":
            raise KeyboardInterrupt("simulated interruption")
        loss, terms = original(self, images, labels, at)
        return (loss * float("nan"), terms) if at == step else (loss, terms)

    monkeypatch.setattr(cls, "forward", faulty)
    return lambda: monkeypatch.setattr(cls, "forward", original)
