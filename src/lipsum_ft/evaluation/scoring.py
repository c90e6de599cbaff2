"""Scoring classifiers on every domain: features once per (model, domain), then every metric from them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from lipsum_ft.clip.features import encode_images
from lipsum_ft.clip.inference import inference_on
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.evaluation.metrics import (
    classification_metrics,
    energy_gap,
    feature_distortion,
    group_logits,
    reliability_bins,
)


@dataclass
class DomainScores:
    """What evaluation keeps of one (model, domain): metrics, and reliability bins for the plots."""

    metrics: dict[str, float]
    reliability: dict[str, list[float]]


@dataclass
class DomainPass:
    """One classifier's pass over one domain: unit image features, (grouped) logits and labels."""

    domain: str
    features: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


def domain_passes(
    classifier: ClipClassifier,
    data: Mapping[str, Any],
    class_groups: Mapping[str, list[list[int]]],
    batch_size: int,
    device: str = "cpu",
    progress: bool = False,
    name: str = "eval",
) -> Iterator[DomainPass]:
    """Features and logits of ``classifier`` on every domain, logits pooled into the domain's class
    groups where it has them: what every score (per domain or per image) is computed from.

    The caller holds the classifier on ``device`` for inference (``inference_on``).
    """
    for domain, images in data.items():
        features = encode_images(
            classifier.visual, images, batch_size, progress, desc=f"{name}/{domain}", device=device
        )
        labels = images.labels
        logits = classifier.logits_from_features(features.to(device)).float().cpu()
        if domain in class_groups:
            logits, labels = group_logits(logits, labels, class_groups[domain])
        yield DomainPass(domain, features, logits, labels)


def score_variant(
    classifier: ClipClassifier,
    data: Mapping[str, Any],
    zero_shot_features: Mapping[str, torch.Tensor] | None,
    text_features: torch.Tensor | None,
    class_groups: Mapping[str, list[list[int]]],
    batch_size: int,
    bins: int,
    progress: bool,
    name: str,
    device: str = "cpu",
) -> tuple[dict[str, DomainScores], dict[str, torch.Tensor]]:
    """Metrics per domain, and the energy gap and feature distortion to the zero-shot model when
    ``text_features`` are given.

    Returns the image features too, so the zero-shot model's can serve as the reference of later variants.
    """
    scores, features_by_domain = {}, {}
    with inference_on(classifier, device):
        for run in domain_passes(classifier, data, class_groups, batch_size, device, progress, name):
            features_by_domain[run.domain] = run.features
            metrics = classification_metrics(run.logits, run.labels, bins)
            if text_features is not None:
                reference = zero_shot_features[run.domain] if zero_shot_features is not None else run.features
                metrics["energy_gap"] = energy_gap(run.features, reference, text_features)
                metrics["feature_distortion"] = feature_distortion(run.features, reference)
            scores[run.domain] = DomainScores(metrics, reliability_bins(run.logits, run.labels, bins))
    return scores, features_by_domain


def evaluate_domains(
    classifier: ClipClassifier,
    data: Mapping[str, Any],
    batch_size: int = 512,
    bins: int = 15,
    progress: bool = True,
    device: str = "cpu",
    class_groups: Mapping[str, list[list[int]]] | None = None,
) -> dict[str, dict[str, float]]:
    """Accuracy, NLL and ECE of ``classifier`` on each domain's image set (grouped classes where given)."""
    scores, _ = score_variant(
        classifier, data, None, None, class_groups or {}, batch_size, bins, progress, "eval", device
    )
    return {domain: score.metrics for domain, score in scores.items()}


def scoring_groups(
    class_groups: Mapping[str, list[list[int]]],
    class_subsets: Mapping[str, list[str]],
    classnames: list[str],
) -> dict[str, list[list[int]]]:
    """Per domain, the groups its logits are pooled into: the dataset's (ObjectNet) and
    ``evaluate.class_subsets`` (ImageNet-R/-A: one group per kept class).
    """
    unknown = {d: [c for c in names if c not in classnames] for d, names in class_subsets.items()}
    if any(unknown.values()):
        raise ValueError(
            f"evaluate.class_subsets name unknown classes: { {d: u[:5] for d, u in unknown.items() if u} }"
        )
    return {
        **class_groups,
        **{d: [[classnames.index(c)] for c in names] for d, names in class_subsets.items()},
    }
