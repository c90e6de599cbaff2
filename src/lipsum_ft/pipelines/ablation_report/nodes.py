"""Nodes of the ``ablation_report`` pipeline: the ``ablation`` study's per-image outcomes turned into
sensitivity tables, the energy-gap-vs-distortion comparison, model choice without shift labels, the
reference-vs-shift front, plots and the README's findings.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lipsum_ft.params.ablation import AblationParams
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.studies import ablation_plots, diagnostics, findings, model_choice, sensitivity
from lipsum_ft.studies.ablation_grid import DEFAULT, KNOB_FIELDS
from lipsum_ft.studies.bootstrap import resample_counts
from lipsum_ft.studies.outcomes import OutcomeMatrices


def outcome_matrices(
    outcomes: pd.DataFrame, candidates: pd.DataFrame, evaluate: dict[str, Any], ablation: dict[str, Any]
) -> tuple[OutcomeMatrices, dict[str, np.ndarray], pd.DataFrame]:
    """The per-image outcomes pivoted once into candidate x image matrices, the bootstrap's image
    resamples (shared by every interval below, so differences stay paired), and the candidates table
    people read: description, val criteria and test scores, one row each.
    """
    params = parse(EvaluateParams, evaluate)
    study = parse(AblationParams, ablation)
    matrices = OutcomeMatrices.from_frame(outcomes, candidates["candidate"].tolist())
    counts = resample_counts(matrices.image_counts(), study.bootstrap.samples, study.bootstrap.seed)
    scored = candidates.join(matrices.scores(params.reference_domain, params.ece_bins), on="candidate")
    return matrices, counts, scored


def _reference(evaluate: dict[str, Any]) -> str:
    return parse(EvaluateParams, evaluate).reference_domain


def summarise_sensitivity(
    scored: pd.DataFrame,
    matrices: OutcomeMatrices,
    counts: dict[str, np.ndarray],
    study_log: pd.DataFrame,
    batch_size: int,
    evaluate: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Per run and per setting (mean, std, paired differences with intervals), and the Markdown table."""
    reference, study = _reference(evaluate), parse(AblationParams, ablation)
    scores = scored.set_index("candidate")[list(sensitivity.RUN_METRICS[:-1])]
    runs = sensitivity.run_table(scores, scored.drop(columns=scores.columns), study_log, batch_size)
    summary = sensitivity.sensitivity_summary(
        runs, matrices, counts, reference, DEFAULT, study.bootstrap.level
    )
    return runs, summary, sensitivity.sensitivity_markdown(summary, DEFAULT, study.bootstrap.level)


def compare_diagnostics(
    scored: pd.DataFrame,
    runs: pd.DataFrame,
    matrices: OutcomeMatrices,
    counts: dict[str, np.ndarray],
    evaluate: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Energy gap vs feature distortion as explanations of shift accuracy, over the fine-tuned models
    (every run at alpha 1, and the chain's TPGM) and over every candidate but zero-shot (WiSE too);
    and the per-method profile.
    """
    reference, study = _reference(evaluate), parse(AblationParams, ablation)
    scores = scored.set_index("candidate")
    tuned = scored[((scored["source"] == "study") & (scored["alpha"] == 1.0)) | (scored["source"] == "chain")]
    everything = scored[scored["source"] != "zeroshot"]
    populations = {"finetuned": tuned, "candidates": everything}
    correlations = {
        name: diagnostics.rank_correlations(
            matrices, scores, members["candidate"].tolist(), counts, reference, study.bootstrap.level
        )
        for name, members in populations.items()
    }
    profile = diagnostics.method_profile(runs, [*study.baselines, DEFAULT])
    return correlations, profile


def choose_models(
    scored: pd.DataFrame,
    matrices: OutcomeMatrices,
    counts: dict[str, np.ndarray],
    evaluate: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Each criterion's pick per seed, the summary over seeds, and how well the label-free energy gap
    ranks the candidates' shift accuracy.
    """
    reference, study = _reference(evaluate), parse(AblationParams, ablation)
    scores = scored.set_index("candidate")[["ref_acc", "shift_acc"]]
    descriptions = scored.drop(columns=[c for c in scored.columns if c in scores.columns])
    picks = model_choice.picks_per_seed(descriptions, scores, study.tolerance)
    correlation = model_choice.gap_accuracy_correlation(
        scored, matrices, counts, reference, study.bootstrap.level
    )
    return picks, model_choice.choice_summary(picks), correlation


def place_pick_on_front(
    scored: pd.DataFrame,
    matrices: OutcomeMatrices,
    counts: dict[str, np.ndarray],
    evaluate: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every configuration's seed means on the reference-vs-shift plane, and criterion (c)'s pick
    against the no-trade-off target.
    """
    reference, study = _reference(evaluate), parse(AblationParams, ablation)
    scores = scored.set_index("candidate")[["ref_acc", "shift_acc"]]
    descriptions = scored.drop(columns=["ref_acc", "shift_acc"])
    configs = model_choice.configurations(descriptions, scores)
    verdict = model_choice.pick_against_target(
        configs,
        scored,
        matrices,
        counts,
        reference,
        study.baselines[0],
        study.tolerance,
        study.bootstrap.level,
    )
    return configs.reset_index(), verdict


def write_findings(
    sensitivity_summary: pd.DataFrame,
    correlations: dict[str, Any],
    profile: pd.DataFrame,
    choice: pd.DataFrame,
    gap_correlation: dict[str, float],
    front: dict[str, Any],
    finetune: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[str, dict[str, float]]:
    """The README's Findings section, generated from the study's tables, and flat DVC metrics."""
    study = parse(AblationParams, ablation)
    text = findings.findings_markdown(
        sensitivity_summary,
        correlations,
        profile,
        choice,
        gap_correlation,
        front,
        study,
        DEFAULT,
        _knob_defaults(finetune),
    )
    metrics = findings.flat_metrics(sensitivity_summary, correlations, choice, gap_correlation, front)
    return text, json.loads(json.dumps(metrics))


def plot_sensitivity(
    runs: pd.DataFrame, scored: pd.DataFrame, finetune: dict[str, Any], ablation: dict[str, Any]
) -> Figure:
    study = parse(AblationParams, ablation)
    return ablation_plots.sensitivity(runs, scored, study.baselines[0], DEFAULT, _knob_defaults(finetune))


def _knob_defaults(finetune: dict[str, Any]) -> dict[str, float]:
    """The default setting's value of each knob: params:finetune's Lipsum-FT recipe."""
    params = parse(FinetuneParams, finetune)
    return {knob: float(getattr(params.lipsum, field)) for knob, field in KNOB_FIELDS.items()}


def plot_diagnostics(scored: pd.DataFrame, correlations: dict[str, Any]) -> Figure:
    return ablation_plots.diagnostics(scored, correlations)


def plot_front(configs: pd.DataFrame, scored: pd.DataFrame, front: dict[str, Any]) -> Figure:
    return ablation_plots.front(configs, scored, front)
