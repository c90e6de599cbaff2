"""Assemble one fine-tuning run: the method's objective from the zero-shot model, then ``fit``."""

from __future__ import annotations

import copy

import open_clip
import torch
from torch import nn

from lipsum_ft.clip.prompts import Template, fill
from lipsum_ft.training.guidance import Guidance, RandomTokens
from lipsum_ft.training.objectives import (
    FLYP,
    METHODS,
    ContextAwareRegularisation,
    LinearProbeThenFinetune,
    Lipsum,
    Objective,
)


def class_prompt_tokens(tokenizer, classnames: list[str], templates: list[Template]) -> torch.Tensor:
    """Tokens of every (class, template) prompt, class-major: row k * T + t."""
    return tokenizer([fill(t, c) for c in classnames for t in templates])


def make_objective(
    method: str,
    clip: nn.Module,
    head: torch.Tensor,
    logit_scale: float,
    *,
    model_name: str,
    context_length: int,
    classnames: list[str],
    coefficients: dict[str, float],
    guidance: Guidance | None = None,
    carft_templates: list[Template] | None = None,
    flyp_templates: list[Template] | None = None,
    lp_steps: int = 0,
    seed: int = 0,
) -> Objective:
    """The objective of ``method`` around a private copy of the zero-shot CLIP
    (the caller's stays untouched).
    """
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}; valid: {sorted(METHODS)}")
    clip = copy.deepcopy(clip)
    coefficient = coefficients.get(method, 0.0)
    if method == "lipsum":
        return Lipsum(clip, head, logit_scale, coefficient, guidance or RandomTokens(seed=seed))
    if method == "carft":
        tokens = class_prompt_tokens(
            open_clip.get_tokenizer(model_name, context_length=context_length),
            classnames,
            carft_templates or [],
        )
        # template-major for the context average: reorder (class, template) rows to (template, class)
        k, t = len(classnames), len(carft_templates or [])
        tokens = tokens.reshape(k, t, -1).transpose(0, 1).reshape(k * t, -1)
        return ContextAwareRegularisation(clip, head, logit_scale, coefficient, tokens, num_classes=k)
    if method == "flyp":
        tokens = class_prompt_tokens(
            open_clip.get_tokenizer(model_name, context_length=context_length),
            classnames,
            flyp_templates or [],
        )
        return FLYP(
            clip, head, logit_scale, coefficient, tokens, template_count=len(flyp_templates or []), seed=seed
        )
    if method == "lpft":
        return LinearProbeThenFinetune(clip, head, logit_scale, coefficient, lp_steps=lp_steps)
    return METHODS[method](clip, head, logit_scale, coefficient)
