"""Scoring a classifier on every domain: features once per domain, then all metrics from the logits."""

from __future__ import annotations

from typing import Sequence

import torch

from lipsum_ft.clip.features import encode_images
from lipsum_ft.clip.metrics import classification_metrics
from lipsum_ft.clip.zeroshot import ClipClassifier


@torch.inference_mode()
def evaluate_domains(
    classifier: ClipClassifier,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
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
