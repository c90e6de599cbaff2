"""The ablation study's grid: the baselines, Lipsum-FT at ``params:finetune``'s knobs, then each other
value of lambda, M and L, one knob at a time, over seeds; each setting a ``Run`` of ``training.runs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lipsum_ft.params.ablation import AblationParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.training.runs import Run, study_params

DEFAULT = "default"
KNOB_FIELDS = {"lambda": "coefficient", "num_texts": "num_texts", "length": "length"}


def study_settings(params: FinetuneParams, study: AblationParams) -> list[dict[str, Any]]:
    """The baselines, Lipsum-FT at params:finetune's knobs, then each other knob value, one at a time."""
    settings = [{"setting": b, "method": b, "knob": "none", "value": np.nan} for b in study.baselines]
    settings.append({"setting": DEFAULT, "method": "lipsum", "knob": "none", "value": np.nan})
    for knob, field in KNOB_FIELDS.items():
        default = getattr(params.lipsum, field)
        for value in getattr(study.knobs, field):
            if value != default:
                settings.append(
                    {"setting": f"{knob}={value:g}", "method": "lipsum", "knob": knob, "value": value}
                )
    return settings


def setting_params(params: FinetuneParams, setting: dict[str, Any], seed: int) -> FinetuneParams:
    """params:finetune at ``seed`` with the setting's knob changed (a study run: no checkpoints)."""
    if setting["knob"] == "none":
        return study_params(params, seed)
    field = KNOB_FIELDS[setting["knob"]]
    value = setting["value"] if field == "coefficient" else int(setting["value"])
    return study_params(params, seed, lipsum=params.lipsum.model_copy(update={field: value}))


def check_lengths(params: FinetuneParams, study: AblationParams, context_length: int) -> None:
    """Fail before any training when a text of L random tokens (plus start and end) cannot fit the
    model's context (the tiny CLIP's is 16; ViT-B/16's 77)."""
    if params.lipsum.guidance != "random_tokens":
        return  # L counts words for random_words: their token count is not known in advance
    longest = context_length - 2
    too_long = [length for length in study.knobs.length if length > longest]
    if too_long:
        raise ValueError(
            f"ablation.knobs.length {too_long}: random-token texts of L tokens take L + 2 positions, and "
            f"this model's context length is {context_length}; use L <= {longest}"
        )


def run_name(setting: str, seed: int) -> str:
    """A study run's name: ``<setting>/seed<k>``."""
    return f"{setting}/seed{seed}"


def ablation_runs(params: FinetuneParams, study: AblationParams) -> list[Run]:
    """Every (setting, seed) of the study, seed-major; each run's setting is kept in its model's spec."""
    runs = []
    for seed in study.seeds:
        for setting in study_settings(params, study):
            name = run_name(setting["setting"], seed)
            runs.append(
                Run(
                    name,
                    setting["method"],
                    setting_params(params, setting, seed),
                    labels={"run": name, "setting": setting["setting"]},
                    extra_key="ablation",
                    extra={**setting, "seed": seed},
                )
            )
    return runs
