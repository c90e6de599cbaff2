"""The objective of a fine-tuning method, from its own settings and the shared ``ObjectiveContext``."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from lipsum_ft.training.objectives import METHODS, Objective, ObjectiveContext


def make_objective(method: str, settings: Any, context: ObjectiveContext) -> Objective:
    """``METHODS[method].from_params(settings, context)`` around a private copy of the zero-shot CLIP
    (the caller's stays untouched). ``settings`` is the method's own (``finetune.<method>``; None for
    FT and LP).
    """
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}; valid: {sorted(METHODS)}")
    private = replace(context, clip=copy.deepcopy(context.clip))
    return METHODS[method].from_params(settings, private)
