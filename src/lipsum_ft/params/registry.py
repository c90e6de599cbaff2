"""Every parameter group by name, validated together before any node runs (see ``hooks.py``).

A wrong key or value fails at start-up with the dotted key named, instead of deep inside a node.
Only the project hook imports this module: a pipeline imports its own group's module, so a DVC stage
depends on the parameter code it reads and no other.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from lipsum_ft.params.ablation import AblationParams
from lipsum_ft.params.data import DataParams
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.guidance_study import GuidanceStudyParams
from lipsum_ft.params.posthoc import PosthocParams
from lipsum_ft.params.pretrain import PretrainParams
from lipsum_ft.params.shared import ParameterError, problems_of
from lipsum_ft.params.zeroshot import ZeroshotParams

PARAMETER_MODELS: dict[str, type[BaseModel]] = {
    model.group: model
    for model in (
        DataParams,
        PretrainParams,
        ZeroshotParams,
        FinetuneParams,
        PosthocParams,
        EvaluateParams,
        GuidanceStudyParams,
        AblationParams,
    )
}


def _test_split_stays_unseen(validated: Mapping[str, BaseModel]) -> list[str]:
    """The split ``evaluate`` reports on is never trained on or selected on, by any pipeline."""
    if "evaluate" not in validated:
        return []
    test = validated["evaluate"].split
    used = {
        "finetune.train_split": getattr(validated.get("finetune"), "train_split", None),
        "finetune.val_split": getattr(validated.get("finetune"), "val_split", None),
        "posthoc.val_split": getattr(validated.get("posthoc"), "val_split", None),
    }
    return [
        f"{key}: must not be the test split evaluate.split={test!r} (got {value!r})"
        for key, value in used.items()
        if value == test
    ]


def validate_parameters(params: Mapping[str, Any]) -> dict[str, BaseModel]:
    """Validate every parameter group in ``params``; raise naming each bad or unknown key.

    An unknown top-level key (e.g. ``--params finetun.lr=-1``) is an error, not silently ignored.
    """
    validated, problems = {}, []
    for group in params:
        if group not in PARAMETER_MODELS:
            close = difflib.get_close_matches(str(group), PARAMETER_MODELS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{group}: unknown parameter group (known: {', '.join(PARAMETER_MODELS)}){hint}")
    for group, model in PARAMETER_MODELS.items():
        if group not in params:
            continue
        parsed, failures = problems_of(model, group, params[group])
        problems += failures
        if parsed is not None:
            validated[group] = parsed
    problems += _test_split_stays_unseen(validated)
    domains = {
        f"{group}.reference_domain": validated[group].reference_domain
        for group in ("finetune", "posthoc", "evaluate")
        if group in validated
    }
    if len(set(domains.values())) > 1:  # each file states it (DVC's -S cannot read Kedro's ${globals:})
        named = ", ".join(f"{key}={value!r}" for key, value in domains.items())
        problems.append(f"the reference domains differ: {named}; set the same domain in each file")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    return validated
