"""Nodes of the ``finetune`` pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.training.runs import Run, reference_data, run_grid


def finetune_models(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    manifest: pd.DataFrame,
    classnames: list[str],
    finetune: dict[str, Any],
) -> tuple[dict[str, ClipBundle], pd.DataFrame]:
    """Fine-tune each selected method from the zero-shot model; keep each run's best-on-val weights."""
    params = parse(FinetuneParams, finetune)
    runs = [
        Run(method, method, params, series=f"{method}-seed{params.seed}")
        for method in params.selected_methods
    ]
    data = reference_data(manifest, params, pretrained_clip.spec)
    return run_grid(
        runs,
        pretrained_clip,
        zeroshot_head,
        classnames,
        data,
        params.progress,
        "finetune runs",
        params.dvclive_dir,
    )
