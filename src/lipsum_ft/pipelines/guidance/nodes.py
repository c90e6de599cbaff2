"""Nodes of the ``guidance`` pipeline: fine-tune one Lipsum-FT run per (strategy, seed),
score, tabulate, plot.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.evaluation.variants import evaluate_on_split
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.guidance_study import GuidanceStudyParams
from lipsum_ft.params.shared import parse
from lipsum_ft.studies.guidance_report import study_comparison, study_markdown, study_runs, study_summary
from lipsum_ft.training.runs import Run, reference_data, run_grid, study_params

log = logging.getLogger(__name__)
SEED_MARK = "/seed"  # variant names are "<arm>/seed<k>"


def arm_runs(params: FinetuneParams, study: GuidanceStudyParams) -> list[Run]:
    """Every (arm, seed) of the study on the ``finetune`` recipe: each baseline as is, then Lipsum-FT
    with each guidance strategy."""
    runs = []
    for seed in study.seeds:
        for arm in [*study.baselines, *study.strategies]:
            if arm in study.baselines:
                method, run_params = arm, study_params(params, seed)
            else:
                guided = params.lipsum.model_copy(update={"guidance": arm})
                method, run_params = "lipsum", study_params(params, seed, lipsum=guided)
            runs.append(Run(f"{arm}{SEED_MARK}{seed}", method, run_params, labels={"arm": arm}))
    return runs


def finetune_study_arms(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    manifest: pd.DataFrame,
    classnames: list[str],
    finetune: dict[str, Any],
    guidance_study: dict[str, Any],
) -> tuple[dict[str, ClipBundle], pd.DataFrame]:
    """Every run of the study; each run's best-on-val weights and step log."""
    params = parse(FinetuneParams, finetune)
    study = parse(GuidanceStudyParams, guidance_study)
    data = reference_data(manifest, params, pretrained_clip.spec)
    runs = arm_runs(params, study)
    return run_grid(
        runs,
        pretrained_clip,
        zeroshot_head,
        classnames,
        data,
        study.progress,
        "guidance study",
        study.dvclive_dir,
        study.resume_dir,
    )


def evaluate_study_arms(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    study_models: dict[str, ClipBundle],
    manifest: pd.DataFrame,
    classnames: list[str],
    class_groups: dict[str, list[list[int]]],
    evaluate: dict[str, Any],
) -> pd.DataFrame:
    """The ``evaluate`` pipeline's scores (accuracy, NLL, ECE, energy gap per domain)
    for every study run and zero-shot.
    """
    params = parse(EvaluateParams, evaluate)
    inputs = (manifest, classnames, class_groups)
    results, _ = evaluate_on_split(pretrained_clip, zeroshot_head, study_models, {}, inputs, params)
    named = results["variant"].str.partition(SEED_MARK)
    arm = named[0]
    seed = pd.to_numeric(named[2], errors="coerce").fillna(-1).astype(int)  # zero-shot has no seed
    return results.assign(arm=arm, seed=seed)


def summarise_study(
    study_results: pd.DataFrame, study_log: pd.DataFrame, batch_size: int, guidance_study: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """Per-run rows, the per-arm summary (mean ± std, paired difference, step cost),
    its Markdown, and DVC metrics.
    """
    study = parse(GuidanceStudyParams, guidance_study)
    runs = study_runs(study_results, study_log, batch_size)
    summary = study_summary(runs, study.reference)
    seeds = ", ".join(map(str, study.seeds))
    table = study_markdown(
        summary,
        study.strategies,
        study.reference,
        f"Lipsum-FT text guidance, {len(study.seeds)} seeds ({seeds}): mean ± std, accuracy and ECE in %",
    )
    metrics = {
        f"{row.arm}.{column}": round(float(getattr(row, column)), 6)
        for row in summary.itertuples()
        for column in (
            "shift_acc_mean",
            "shift_acc_std",
            "ref_acc_mean",
            "delta_shift_mean",
            "ms_per_step_mean",
        )
        if getattr(row, column) == getattr(row, column)
    }
    log.info("guidance study summarised: %d arms, %d runs", len(summary), len(runs))
    return runs, summary, table, metrics


def plot_study(
    study_runs_table: pd.DataFrame, study_summary_table: pd.DataFrame, guidance_study: dict[str, Any]
) -> Figure:
    study = parse(GuidanceStudyParams, guidance_study)
    return study_comparison(study_runs_table, study_summary_table, study.reference)
