"""Nodes of the ``evaluate`` pipeline: score every variant, then summarise and plot."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.text import encode_tokens
from lipsum_ft.clip.zeroshot import ClipClassifier, classifier_for
from lipsum_ft.data.images import load_split
from lipsum_ft.evaluation import plots
from lipsum_ft.evaluation.reporting import flat_metrics, summary_markdown
from lipsum_ft.evaluation.scoring import score_variant, scoring_groups
from lipsum_ft.params import EvaluateParams, parse
from lipsum_ft.training.guidance import RandomTokens

log = logging.getLogger(__name__)


def _describe(name: str) -> dict[str, Any]:
    """variant name -> (kind, method, alpha):
    ``zeroshot``, ``<method>``, ``wise-<method>-<alpha>``, ``tpgm-<method>``.
    """
    if name == "zeroshot":
        return {"kind": "zeroshot", "method": "zeroshot", "alpha": 0.0}
    if name.startswith("wise-"):
        _, method, alpha = name.split("-")
        return {"kind": "wise", "method": method, "alpha": float(alpha)}
    if name.startswith("tpgm-"):
        return {"kind": "tpgm", "method": name[5:], "alpha": float("nan")}
    return {"kind": "finetuned", "method": name, "alpha": 1.0}


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
    params: EvaluateParams = parse("evaluate", evaluate)
    spec, model = pretrained_clip.spec, pretrained_clip.model.eval()
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    data = load_split(
        manifest,
        params.split,
        spec.image_size,
        mean,
        std,
        params.loader.mode,
        params.loader.settings(),
        params.progress,
    )
    if params.reference_domain not in data:
        raise ValueError(
            f"evaluate.reference_domain {params.reference_domain!r} has no {params.split!r} rows; "
            f"domains: {sorted(data)}"
        )
    groups = scoring_groups(class_groups, params.class_subsets, classnames)
    with torch.no_grad():
        texts = F.normalize(
            encode_tokens(
                model,
                RandomTokens(params.energy.num_texts, params.energy.length, params.energy.seed).tokens(0),
            ),
            dim=-1,
        )

    template = classifier_for(copy.deepcopy(model), zeroshot_head)
    variants: dict[str, ClipClassifier] = {"zeroshot": classifier_for(model, zeroshot_head)}
    variants.update(
        {method: classifier_for(bundle.model, bundle.head) for method, bundle in finetuned_clip.items()}
    )
    states = {**wise_models, **tpgm_models}

    rows, reliability, zero_features = [], {}, None
    for name in [*variants, *states]:
        if name in variants:
            classifier = variants[name]
        else:
            template.load_state_dict(states[name])
            classifier = template
        scores, features = score_variant(
            classifier,
            data,
            zero_features,
            texts,
            groups,
            params.batch_size,
            params.ece_bins,
            params.progress,
            name,
            params.device,
        )
        if name == "zeroshot":
            zero_features = features
        for domain, score in scores.items():
            role = "reference" if domain == params.reference_domain else "shift"
            rows.append(
                {
                    "variant": name,
                    **_describe(name),
                    "domain": domain,
                    "role": role,
                    "split": params.split,
                    **score.metrics,
                }
            )
            reliability[f"{name}/{domain}"] = score.reliability
    results = pd.DataFrame(rows)
    log.info("evaluated %d variants on %d domains", results["variant"].nunique(), results["domain"].nunique())
    return results, reliability


def summarise(
    results: pd.DataFrame, tpgm_summary: dict[str, Any], evaluate: dict[str, Any]
) -> tuple[dict[str, float], str]:
    """Flat metrics for DVC (``<variant>.<split>.<domain>.<metric>``) and the Markdown summary table."""
    params: EvaluateParams = parse("evaluate", evaluate)
    table = summary_markdown(results, params.report_alpha, tpgm_summary)
    log.info("results table written (reports/summary.md); %d variants", results["variant"].nunique())
    return flat_metrics(results), table


def plot_reliability(results: pd.DataFrame, reliability: dict[str, Any], evaluate: dict[str, Any]) -> Figure:
    params: EvaluateParams = parse("evaluate", evaluate)
    present = [v for v in params.reliability_variants if v in set(results["variant"])]
    return plots.reliability_diagrams(results, reliability, present)


def plot_wise_curves(results: pd.DataFrame) -> Figure:
    return plots.wise_curves(results)


def plot_reference_vs_shift(results: pd.DataFrame, evaluate: dict[str, Any]) -> Figure:
    params: EvaluateParams = parse("evaluate", evaluate)
    return plots.reference_vs_shift(results, params.report_alpha)


def plot_energy_gap(results: pd.DataFrame, evaluate: dict[str, Any]) -> Figure:
    params: EvaluateParams = parse("evaluate", evaluate)
    return plots.energy_gap_vs_shift(results, params.report_alpha)
