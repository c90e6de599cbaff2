"""Nodes of the ``evaluate`` pipeline: score every variant, then summarise and plot."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.evaluation import plots
from lipsum_ft.evaluation.reporting import flat_metrics, headline_metrics, summary_markdown
from lipsum_ft.evaluation.variants import evaluate_on_split
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.params.shared import parse

log = logging.getLogger(__name__)


def evaluate_variants(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    finetuned_clip: dict[str, ClipBundle],
    wise_models: dict[str, dict[str, torch.Tensor]],
    tpgm_models: dict[str, dict[str, torch.Tensor]],
    manifest: pd.DataFrame,
    classnames: list[str],
    class_groups: dict[str, list[list[int]]],
    evaluate: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Accuracy, NLL, ECE and energy gap of every variant on every domain of the evaluation split."""
    params = parse(EvaluateParams, evaluate)
    states = {**wise_models, **tpgm_models}
    inputs = (manifest, classnames, class_groups)
    results, reliability = evaluate_on_split(
        pretrained_clip, zeroshot_head, finetuned_clip, states, inputs, params
    )
    log.info("evaluated %d variants on %d domains", results["variant"].nunique(), results["domain"].nunique())
    return results, reliability


def summarise(
    results: pd.DataFrame, tpgm_summary: dict[str, Any], evaluate: dict[str, Any]
) -> tuple[dict[str, float], str]:
    """Flat metrics for DVC (``<variant>.<split>.<domain>.<metric>``) and the Markdown summary table."""
    params = parse(EvaluateParams, evaluate)
    table = summary_markdown(results, params.report_alpha, tpgm_summary)
    log.info("results table written (reports/summary.md); %d variants", results["variant"].nunique())
    return flat_metrics(results), table


def headline(results: pd.DataFrame, evaluate: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The chain's DVC metric: a few numbers per reported variant, so ``dvc exp show`` stays readable."""
    params = parse(EvaluateParams, evaluate)
    return headline_metrics(results, params.report_alpha, params.headline.model_dump())


def plot_reliability(results: pd.DataFrame, reliability: dict[str, Any], evaluate: dict[str, Any]) -> Figure:
    params = parse(EvaluateParams, evaluate)
    present = [v for v in params.reliability_variants if v in set(results["variant"])]
    return plots.reliability_diagrams(results, reliability, present)


def plot_wise_curves(results: pd.DataFrame) -> Figure:
    return plots.wise_curves(results)


def plot_reference_vs_shift(results: pd.DataFrame, evaluate: dict[str, Any]) -> Figure:
    params = parse(EvaluateParams, evaluate)
    return plots.reference_vs_shift(results, params.report_alpha)


def plot_energy_gap(results: pd.DataFrame, evaluate: dict[str, Any]) -> Figure:
    params = parse(EvaluateParams, evaluate)
    return plots.energy_gap_vs_shift(results, params.report_alpha)
