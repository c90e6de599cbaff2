"""Nodes of the ``guidance`` pipeline: fine-tune one Lipsum-FT run per (strategy, seed),
score, tabulate, plot.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.evaluation import plots
from lipsum_ft.evaluation.reporting import study_markdown, study_runs, study_summary
from lipsum_ft.params import FinetuneParams, GuidanceStudyParams, parse
from lipsum_ft.pipelines.evaluate.nodes import evaluate_variants
from lipsum_ft.pipelines.finetune.nodes import finetune_one, reference_data

log = logging.getLogger(__name__)
SEED_MARK = "/seed"  # variant names are "<arm>/seed<k>"


def arm_params(
    params: FinetuneParams, arm: str, seed: int, baselines: list[str]
) -> tuple[str, FinetuneParams]:
    """The method and recipe of one study run: a baseline as is, or Lipsum-FT with ``arm`` as its guidance.

    Study runs keep no checkpoints, so they never overwrite the ``finetune`` pipeline's.
    """
    update: dict[str, Any] = {"seed": seed, "checkpoint_every": 0, "resume": False}
    if arm in baselines:
        return arm, params.model_copy(update=update)
    return "lipsum", params.model_copy(
        update={**update, "lipsum": params.lipsum.model_copy(update={"guidance": arm})}
    )


def finetune_study_arms(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    manifest: pd.DataFrame,
    classnames: list[str],
    finetune: dict[str, Any],
    guidance_study: dict[str, Any],
) -> tuple[dict[str, ClipBundle], pd.DataFrame]:
    """Every (arm, seed) of the study on the ``finetune`` recipe: baselines, then each guidance strategy."""
    params: FinetuneParams = parse("finetune", finetune)
    study: GuidanceStudyParams = parse("guidance_study", guidance_study)
    spec = pretrained_clip.spec
    train_data, val_data = reference_data(
        manifest, params, spec.image_size, spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    )
    runs = [(arm, seed) for seed in study.seeds for arm in [*study.baselines, *study.strategies]]
    models, logs = {}, []
    for arm, seed in tqdm(runs, desc="guidance study", unit="run", disable=not study.progress):
        method, run_params = arm_params(params, arm, seed, study.baselines)
        bundle, frame = finetune_one(
            method, run_params, pretrained_clip, zeroshot_head, classnames, train_data, val_data
        )
        models[f"{arm}{SEED_MARK}{seed}"] = bundle
        logs.append(frame.assign(arm=arm))
        log.info("guidance study: %s seed %d done (%d of %d runs)", arm, seed, len(models), len(runs))
    return models, pd.concat(logs, ignore_index=True)


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
    results, _ = evaluate_variants(
        pretrained_clip, zeroshot_head, study_models, {}, {}, manifest, classnames, class_groups, evaluate
    )
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
    study: GuidanceStudyParams = parse("guidance_study", guidance_study)
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
    study: GuidanceStudyParams = parse("guidance_study", guidance_study)
    return plots.study_comparison(study_runs_table, study_summary_table, study.reference)
