"""Objectives, configs and comparisons that the loop tests share (``test_training``, ``test_checkpoint``)."""

from __future__ import annotations

from dataclasses import replace

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
