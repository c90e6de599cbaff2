"""Per-image outcomes rebuild the evaluation's metrics exactly, and the candidate x image matrices keep
each image in its row and column whatever order the rows were stored in."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lipsum_ft.evaluation.metrics import classification_metrics, energy_gap, feature_distortion
from lipsum_ft.studies.outcomes import OutcomeMatrices, image_outcomes, outcome_frame


def _features(n: int, seed: int) -> torch.Tensor:
    return torch.nn.functional.normalize(
        torch.randn(n, 6, generator=torch.Generator().manual_seed(seed)), dim=-1
    )


def test_outcomes_by_hand_on_three_images():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]))
    labels = torch.tensor([0, 2, 2])
    f, f0, texts = _features(3, 0), _features(3, 1), _features(5, 2)
    out = image_outcomes(logits, labels, f, f0, texts)
    assert out["correct"].tolist() == [True, False, True]
    assert out["confidence"].tolist() == pytest.approx([0.7, 0.6, 0.4], abs=1e-6)
    assert out["true_logprob"].tolist() == pytest.approx(
        [math.log(0.7), math.log(0.3), math.log(0.4)], abs=1e-6
    )
    assert out["energy_gap"].mean() == pytest.approx(energy_gap(f, f0, texts), rel=1e-5)
    assert out["feature_distortion"].mean() == pytest.approx(feature_distortion(f, f0), rel=1e-5)


def _matrices_from_random_logits(seed: int, candidates: int = 3, images: int = 40, classes: int = 4):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (images,), generator=g)
    frames, logits_of = [], {}
    for c in range(candidates):
        logits = 2.5 * torch.randn(images, classes, generator=g)  # confidences spread over many bins
        logits_of[f"m{c}"] = logits
        outcomes = image_outcomes(
            logits, labels, _features(images, c), _features(images, 99), _features(3, 7)
        )
        frames.append(outcome_frame(f"m{c}", "photo", outcomes))
    return pd.concat(frames, ignore_index=True), logits_of, labels


def test_matrix_means_and_ece_equal_the_evaluation_metrics():
    frame, logits_of, labels = _matrices_from_random_logits(0)
    matrices = OutcomeMatrices.from_frame(frame)
    accuracy, ece = matrices.domain_means("correct"), matrices.calibration_errors(bins=15)
    nll = -matrices.domain_means("true_logprob")
    for name, logits in logits_of.items():
        expected = classification_metrics(logits, labels, bins=15)
        assert accuracy.loc[name, "photo"] == pytest.approx(expected["acc"])
        assert nll.loc[name, "photo"] == pytest.approx(expected["nll"], rel=1e-5)
        assert ece.loc[name, "photo"] == pytest.approx(expected["ece"], abs=1e-6)
        assert expected["ece"] > 0.01  # not a degenerate all-calibrated example


def test_stored_row_order_does_not_move_images_between_candidates():
    frame, _, _ = _matrices_from_random_logits(1)
    ordered = OutcomeMatrices.from_frame(frame, ["m2", "m0", "m1"])
    shuffled = OutcomeMatrices.from_frame(frame.sample(frac=1.0, random_state=3), ["m2", "m0", "m1"])
    for name in ("correct", "confidence", "energy_gap"):
        assert np.array_equal(ordered.values["photo"][name], shuffled.values["photo"][name])
    m0 = frame[frame["candidate"] == "m0"].sort_values("image")["confidence"].to_numpy()
    assert np.array_equal(ordered.values["photo"]["confidence"][1], m0)  # m0 is the second row asked for


def test_scores_use_the_reference_domain_and_the_mean_over_shift_domains():
    rows = []
    for domain, right in (("photo", [1, 1, 1, 0]), ("sketch", [1, 0, 0, 0]), ("quickdraw", [1, 1, 0, 0])):
        outcomes = {
            "correct": np.array(right, dtype=bool),
            "confidence": np.full(4, 0.9, dtype=np.float32),
            "true_logprob": np.full(4, -0.5, dtype=np.float32),
            "energy_gap": np.full(4, 0.1 if domain == "sketch" else 0.3, dtype=np.float32),
            "feature_distortion": np.full(4, 0.2, dtype=np.float32),
        }
        rows.append(outcome_frame("m", domain, outcomes))
    scores = OutcomeMatrices.from_frame(pd.concat(rows)).scores("photo", bins=15).loc["m"]
    assert scores["ref_acc"] == 0.75 and scores["shift_acc"] == pytest.approx((0.25 + 0.5) / 2)
    assert scores["energy_gap"] == pytest.approx(0.2) and scores["shift_nll"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="'clipart' has no outcomes"):
        OutcomeMatrices.from_frame(pd.concat(rows)).scores("clipart", bins=15)


def test_candidates_with_different_images_are_refused():
    frame, _, _ = _matrices_from_random_logits(2)
    short = frame[~((frame["candidate"] == "m1") & (frame["image"] == 5))]
    with pytest.raises(ValueError, match="domain 'photo': candidates differ in images"):
        OutcomeMatrices.from_frame(short)
