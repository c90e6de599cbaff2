"""Objectives, configs, injected faults and comparisons that the loop tests share (``test_training``,
``test_checkpoint``, ``test_checkpoint_faults``, ``test_live``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import torch

from lipsum_ft.training.loop import TrainConfig
from tests.training.objective_helpers import build_objective

CLASSNAMES = ["a", "b", "c", "d"]


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
