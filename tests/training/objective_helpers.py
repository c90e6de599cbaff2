"""Objectives for the tests, built the way a run builds them: the method's own settings model from
``lipsum_ft.params.finetune``, an ``ObjectiveContext``, then ``make_objective``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from lipsum_ft.clip.backbone import ModelSpec
from lipsum_ft.params.finetune import METHODS, FinetuneParams
from lipsum_ft.training.finetuning import make_objective
from lipsum_ft.training.objectives import Objective, ObjectiveContext

MODEL_NAME = "TinyCLIP-ViT-P8-32"


def settings_model(method: str) -> type[BaseModel] | None:
    """The class of ``finetune.<method>`` (None for a method without settings: FT, LP)."""
    assert method in METHODS, method
    field = FinetuneParams.model_fields.get(method)
    return None if field is None else field.annotation


SETTING_NAMES = {
    name for method in METHODS if (model := settings_model(method)) for name in model.model_fields
}


def method_settings(method: str, **overrides: Any) -> BaseModel | None:
    """``method``'s settings model with ``overrides``; a setting its model lacks is left out
    (a coefficient means nothing to FT or FLYP), a setting no method has is an error."""
    unknown = set(overrides) - SETTING_NAMES
    if unknown:
        raise TypeError(f"no method has the settings {sorted(unknown)}")
    model = settings_model(method)
    if model is None:
        return None
    return model(**{k: v for k, v in overrides.items() if k in model.model_fields})


def build_objective(
    method: str,
    clip: nn.Module,
    head: torch.Tensor,
    scale: float,
    *,
    classnames: list[str],
    spec: ModelSpec | None = None,
    steps: int = 1,
    seed: int = 0,
    **settings: Any,
) -> Objective:
    """``make_objective`` as a run calls it; ``settings`` override the method's defaults
    (``coefficient``, ``templates``, ``num_texts``, ``lp_fraction``, ...)."""
    context = ObjectiveContext(
        clip=clip,
        head=head,
        logit_scale=scale,
        model_name=spec.name if spec is not None else MODEL_NAME,
        context_length=spec.context_length if spec is not None else 77,
        classnames=classnames,
        steps=steps,
        seed=seed,
    )
    return make_objective(method, method_settings(method, **settings), context)
