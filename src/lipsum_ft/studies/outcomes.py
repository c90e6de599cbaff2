"""Per-image outcomes of a model on a labelled image set, and the candidate x image matrices built
from them.

A study that compares hundreds of candidates with intervals over images needs what each image gave,
not only each domain's mean: a bootstrap resamples images and recomputes every mean from these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from lipsum_ft.clip.inference import inference_on
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.evaluation.metrics import energy_gap_per_image, feature_distortion_per_image
from lipsum_ft.evaluation.scoring import domain_passes
from lipsum_ft.studies.bootstrap import resampled_means

OUTCOMES = ("correct", "confidence", "true_logprob", "energy_gap", "feature_distortion")


def image_outcomes(
    logits: torch.Tensor,
    labels: torch.Tensor,
    features: torch.Tensor,
    zero_shot_features: torch.Tensor,
    text_features: torch.Tensor,
) -> dict[str, np.ndarray]:
    """Per image: right or wrong, top-class confidence, log-probability of the true class,
    energy gap and feature distortion to the zero-shot model.

    Means of these over images give accuracy, NLL (minus the mean log-probability), the energy gap
    and the feature distortion; ``confidence`` with ``correct`` gives the ECE.
    """
    log_probs = logits.float().log_softmax(dim=-1)
    confidence, predicted = log_probs.exp().max(dim=-1)
    return {
        "correct": (predicted == labels).numpy(),
        "confidence": confidence.numpy().astype(np.float32),
        "true_logprob": log_probs.gather(1, labels[:, None])[:, 0].numpy().astype(np.float32),
        "energy_gap": energy_gap_per_image(features, zero_shot_features, text_features)
        .numpy()
        .astype(np.float32),
        "feature_distortion": feature_distortion_per_image(features, zero_shot_features)
        .numpy()
        .astype(np.float32),
    }


def classifier_outcomes(
    classifier: ClipClassifier,
    data: Mapping[str, Any],
    zero_shot_features: Mapping[str, torch.Tensor] | None,
    text_features: torch.Tensor,
    class_groups: Mapping[str, list[list[int]]],
    batch_size: int,
    device: str = "cpu",
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, torch.Tensor]]:
    """Per-image outcomes (``outcomes.OUTCOMES``) on every domain, and the image features.

    Without ``zero_shot_features`` the classifier is its own reference (the zero-shot model: gaps of 0).
    """
    outcomes, features_by_domain = {}, {}
    with inference_on(classifier, device):
        for run in domain_passes(classifier, data, class_groups, batch_size, device):
            features_by_domain[run.domain] = run.features
            reference = zero_shot_features[run.domain] if zero_shot_features is not None else run.features
            outcomes[run.domain] = image_outcomes(
                run.logits, run.labels, run.features, reference, text_features
            )
    return outcomes, features_by_domain


def outcome_frame(candidate: str, domain: str, outcomes: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Long rows (candidate, domain, image, outcome columns) for storage."""
    n = len(outcomes["correct"])
    return pd.DataFrame({"candidate": candidate, "domain": domain, "image": np.arange(n), **outcomes})


@dataclass
class OutcomeMatrices:
    """Per domain and outcome, a (candidates x images) matrix; rows follow ``candidates``."""

    candidates: list[str]
    domains: list[str]
    values: dict[str, dict[str, np.ndarray]]  # domain -> outcome -> matrix

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, candidates: Sequence[str] | None = None) -> OutcomeMatrices:
        """Pivot long outcome rows; every candidate must have the same images of every domain."""
        order = list(candidates) if candidates is not None else list(dict.fromkeys(frame["candidate"]))
        domains = list(dict.fromkeys(frame["domain"]))
        values: dict[str, dict[str, np.ndarray]] = {}
        for domain in domains:
            part = frame[(frame["domain"] == domain) & frame["candidate"].isin(order)]
            counts = part.groupby("candidate", observed=True)["image"].nunique().reindex(order)
            if counts.isna().any() or counts.nunique() != 1 or len(part) != counts.sum():
                missing = counts[counts.isna()].index.tolist()[:3]
                raise ValueError(
                    f"domain {domain!r}: candidates differ in images (missing: {missing}, "
                    f"counts: {sorted(set(counts.dropna().astype(int).tolist()))[:3]})"
                )
            row = pd.Categorical(part["candidate"], categories=order).codes
            index = np.lexsort((part["image"].to_numpy(), row))
            shape = (len(order), int(counts.iloc[0]))
            values[domain] = {name: part[name].to_numpy()[index].reshape(shape) for name in OUTCOMES}
        return cls(order, domains, values)

    def domain_means(self, outcome: str) -> pd.DataFrame:
        """(candidates x domains) means of one outcome: accuracy for ``correct``, and so on."""
        return pd.DataFrame(
            {d: self.values[d][outcome].astype(np.float64).mean(axis=1) for d in self.domains},
            index=self.candidates,
        )

    def calibration_errors(self, bins: int) -> pd.DataFrame:
        """(candidates x domains) ECE with equal-width right-closed bins, as ``metrics.reliability_bins``."""
        out = {}
        for domain in self.domains:
            confidence = self.values[domain]["confidence"].astype(np.float64)
            correct = self.values[domain]["correct"].astype(np.float64)
            index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
            gaps = np.zeros(len(self.candidates))
            for b in range(bins):
                inside = index == b
                count = inside.sum(axis=1)
                safe = np.maximum(count, 1)
                acc = (correct * inside).sum(axis=1) / safe
                conf = (confidence * inside).sum(axis=1) / safe
                gaps += count / confidence.shape[1] * np.abs(acc - conf)
            out[domain] = gaps
        return pd.DataFrame(out, index=self.candidates)

    def scores(self, reference: str, bins: int) -> pd.DataFrame:
        """Per candidate: reference and shift-mean accuracy, ECE and NLL, and the shift-mean energy gap
        and feature distortion (the conventions of ``reporting.variant_summary``).
        """
        shift = self.shift_domains(reference)
        accuracy, ece = self.domain_means("correct"), self.calibration_errors(bins)
        nll = -self.domain_means("true_logprob")
        gap, distortion = self.domain_means("energy_gap"), self.domain_means("feature_distortion")
        return pd.DataFrame(
            {
                "ref_acc": accuracy[reference],
                "shift_acc": accuracy[shift].mean(axis=1),
                "ref_ece": ece[reference],
                "shift_ece": ece[shift].mean(axis=1),
                "ref_nll": nll[reference],
                "shift_nll": nll[shift].mean(axis=1),
                "energy_gap": gap[shift].mean(axis=1),
                "feature_distortion": distortion[shift].mean(axis=1),
            }
        )

    def shift_domains(self, reference: str) -> list[str]:
        if reference not in self.domains:
            raise ValueError(f"reference domain {reference!r} has no outcomes; domains: {self.domains}")
        return [d for d in self.domains if d != reference]

    def resampled(self, outcome: str, counts: Mapping[str, np.ndarray], domains: Sequence[str]) -> np.ndarray:
        """(resamples x candidates): the mean over ``domains`` of each domain's resampled mean."""
        return np.mean([resampled_means(self.values[d][outcome], counts[d]) for d in domains], axis=0)

    def image_counts(self) -> dict[str, int]:
        return {d: self.values[d]["correct"].shape[1] for d in self.domains}
