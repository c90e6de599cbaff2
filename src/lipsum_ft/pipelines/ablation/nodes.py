"""Nodes of the ``ablation`` pipeline: Lipsum-FT's knobs one at a time over seeds, every run times the
WiSE alpha grid scored image by image (the analysis is the ``ablation_report`` pipeline's).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.params.ablation import AblationParams
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.studies.ablation_candidates import score_candidates
from lipsum_ft.studies.ablation_grid import ablation_runs, check_lengths
from lipsum_ft.training.runs import reference_data, run_grid

log = logging.getLogger(__name__)


def finetune_ablation_runs(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    manifest: pd.DataFrame,
    classnames: list[str],
    finetune: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[dict[str, ClipBundle], pd.DataFrame]:
    """Every (setting, seed) on the ``finetune`` recipe; each run's best-on-val weights and step log."""
    params = parse(FinetuneParams, finetune)
    study = parse(AblationParams, ablation)
    check_lengths(params, study, pretrained_clip.spec.context_length)
    data = reference_data(manifest, params, pretrained_clip.spec)
    runs = ablation_runs(params, study)
    return run_grid(
        runs,
        pretrained_clip,
        zeroshot_head,
        classnames,
        data,
        study.progress,
        "ablation runs",
        study.dvclive_dir,
        study.resume_dir,
    )


def score_ablation_candidates(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    ablation_models: dict[str, ClipBundle],
    tpgm_models: dict[str, dict[str, torch.Tensor]],
    manifest: pd.DataFrame,
    classnames: list[str],
    class_groups: dict[str, list[list[int]]],
    val_split: str,
    evaluate: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image test outcomes of every candidate, and per candidate the selection criteria:
    reference val accuracy and NLL, and the energy gap on the shift domains' val images without labels.
    ``val_split`` is params:finetune's: the split that chose each run's best step chooses among them too.
    """
    params, study = parse(EvaluateParams, evaluate), parse(AblationParams, ablation)
    inputs = (manifest, classnames, class_groups)
    outcomes, candidates = score_candidates(
        pretrained_clip, zeroshot_head, ablation_models, tpgm_models, inputs, val_split, params, study
    )
    log.info(
        "ablation: scored %d candidates on %d test images", len(candidates), len(outcomes) // len(candidates)
    )
    return outcomes, candidates
