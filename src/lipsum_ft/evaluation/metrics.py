"""Classification metrics under shift: accuracy, NLL, ECE and reliability bins (15 equal-width bins)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(dim=-1) == labels).float().mean().item()


def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true class."""
    return F.cross_entropy(logits.float(), labels).item()


def reliability_bins(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, list[float]]:
    """Per confidence bin (right-closed, equal width): count, mean confidence, accuracy."""
    probs = logits.float().softmax(dim=-1)
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).float()
    index = torch.clamp(torch.ceil(confidence * bins).long() - 1, 0, bins - 1)
    count = torch.bincount(index, minlength=bins).float()
    conf_sum = torch.bincount(index, weights=confidence, minlength=bins)
    acc_sum = torch.bincount(index, weights=correct, minlength=bins)
    safe = count.clamp(min=1)
    return {
        "count": count.tolist(),
        "confidence": (conf_sum / safe).tolist(),
        "accuracy": (acc_sum / safe).tolist(),
    }


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE: sum over bins of (bin share) x |accuracy - confidence|."""
    table = reliability_bins(logits, labels, bins)
    total = sum(table["count"])
    return sum(
        n / total * abs(a - c)
        for n, a, c in zip(table["count"], table["accuracy"], table["confidence"], strict=True)
    )


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, float]:
    return {
        "acc": accuracy(logits, labels),
        "nll": nll(logits, labels),
        "ece": expected_calibration_error(logits, labels, bins),
        "n": int(labels.numel()),
    }


def energy_gap_per_image(
    features: torch.Tensor, zero_shot_features: torch.Tensor, text_features: torch.Tensor
) -> torch.Tensor:
    """Per image, the mean over texts of (E_theta - E_0)^2 with E(x, t) = -<G(t), F(x)>.

    In float32 whatever the inputs' dtype or an enclosing autocast: bf16 would round the small gaps.
    """
    with torch.autocast(features.device.type, enabled=False):
        difference = (
            zero_shot_features.float() - features.float()
        ) @ text_features.float().T  # E_theta - E_0
        return (difference**2).mean(dim=1)


def energy_gap(
    features: torch.Tensor, zero_shot_features: torch.Tensor, text_features: torch.Tensor
) -> float:
    """The paper's EnergyGap: mean over images and texts of (E_theta - E_0)^2."""
    return energy_gap_per_image(features, zero_shot_features, text_features).mean().item()


def feature_distortion_per_image(features: torch.Tensor, zero_shot_features: torch.Tensor) -> torch.Tensor:
    """Per image, ||F(x)/|F(x)| - F_0(x)/|F_0(x)|||^2: how far the unit image feature moved.

    Feature distortion theory (the motivation of LP-FT) blames this movement for the loss of
    robustness; the paper's energy view blames the image-text energy instead (``energy_gap``).
    """
    with torch.autocast(features.device.type, enabled=False):
        moved = F.normalize(features.float(), dim=-1) - F.normalize(zero_shot_features.float(), dim=-1)
        return (moved**2).sum(dim=1)


def feature_distortion(features: torch.Tensor, zero_shot_features: torch.Tensor) -> float:
    """Mean over images of the squared distance between unit features of a model and of zero-shot."""
    return feature_distortion_per_image(features, zero_shot_features).mean().item()


def group_logits(
    logits: torch.Tensor, labels: torch.Tensor, groups: list[list[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score a domain whose classes are groups of the model's classes.

    Each group's logit is the max over its members (ObjectNet: one ObjectNet class = several ImageNet
    classes); one-element groups restrict the logits to a subset (ImageNet-R/-A: 200 classes). Labels
    become the index of the group that contains them.
    """
    owner = torch.full((logits.shape[1],), -1, dtype=torch.long)
    for position, members in enumerate(groups):
        owner[torch.tensor(members, dtype=torch.long)] = position
    mapped = owner[labels]
    if (mapped < 0).any():
        raise ValueError(f"{int((mapped < 0).sum())} labels fall outside the class groups")
    grouped = torch.stack([logits[:, members].max(dim=1).values for members in groups], dim=1)
    return grouped, mapped


def restrict_to_classes(
    logits: torch.Tensor, labels: torch.Tensor, subset: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep only the logits of ``subset`` (e.g. ImageNet-R's 200 classes) and relabel into it."""
    return group_logits(logits, labels, [[c] for c in subset])
