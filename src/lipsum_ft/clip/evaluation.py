"""Scoring classifiers on every domain: features once per (model, domain), then every metric from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from lipsum_ft.clip.features import encode_images
from lipsum_ft.clip.metrics import classification_metrics, energy_gap, reliability_bins, restrict_to_classes
from lipsum_ft.clip.zeroshot import ClipClassifier


@torch.inference_mode()
def evaluate_domains(
    classifier: ClipClassifier,
    data: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 512,
    bins: int = 15,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Accuracy, NLL and ECE of ``classifier`` on each domain's (images, labels)."""
    classifier.eval()
    results = {}
    for domain, (images, labels) in data.items():
        features = encode_images(classifier.visual, images, mean, std, batch_size, progress, desc=f"eval {domain}")
        results[domain] = classification_metrics(classifier.logits_from_features(features), labels, bins)
    return results


@dataclass
class DomainScores:
    """What evaluation keeps of one (model, domain): metrics, and reliability bins for the plots."""

    metrics: dict[str, float]
    reliability: dict[str, list[float]]


@torch.inference_mode()
def score_variant(
    classifier: ClipClassifier,
    data: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    zero_shot_features: Mapping[str, torch.Tensor] | None,
    text_features: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    class_subsets: Mapping[str, list[int]],
    batch_size: int,
    bins: int,
    progress: bool,
    name: str,
) -> tuple[dict[str, DomainScores], dict[str, torch.Tensor]]:
    """Metrics and the energy gap to the zero-shot model per domain; returns the features too (for reuse)."""
    classifier.eval()
    scores, features_by_domain = {}, {}
    for domain, (images, labels) in data.items():
        features = encode_images(classifier.visual, images, mean, std, batch_size, progress, desc=f"{name}/{domain}")
        features_by_domain[domain] = features
        logits = classifier.logits_from_features(features).float()
        if domain in class_subsets:
            logits, labels = restrict_to_classes(logits, labels, class_subsets[domain])
        metrics = classification_metrics(logits, labels, bins)
        reference = zero_shot_features[domain] if zero_shot_features is not None else features
        metrics["energy_gap"] = energy_gap(features, reference, text_features)
        scores[domain] = DomainScores(metrics, reliability_bins(logits, labels, bins))
    return scores, features_by_domain
