"""Metrics against hand-computed values on small fixed examples."""

from __future__ import annotations

import math

import pytest
import torch

from lipsum_ft.evaluation.metrics import (
    accuracy,
    classification_metrics,
    energy_gap,
    energy_gap_per_image,
    expected_calibration_error,
    feature_distortion,
    feature_distortion_per_image,
    group_logits,
    nll,
    reliability_bins,
    restrict_to_classes,
)


def test_nll_and_accuracy_by_hand():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]))
    labels = torch.tensor([0, 2, 2])
    assert accuracy(logits, labels) == pytest.approx(2 / 3)
    assert nll(logits, labels) == pytest.approx(
        -(math.log(0.7) + math.log(0.3) + math.log(0.4)) / 3, rel=1e-6
    )


def test_ece_by_hand():
    # confidences 0.7 (right), 0.6 (wrong), 0.4 (right) fall in bins 11, 9, 6 of 15 (right-closed)
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]))
    labels = torch.tensor([0, 2, 2])
    expected = (abs(1 - 0.7) + abs(0 - 0.6) + abs(1 - 0.4)) / 3
    assert expected_calibration_error(logits, labels, bins=15) == pytest.approx(expected, rel=1e-6)
    bins = reliability_bins(logits, labels, bins=15)
    assert (
        sum(bins["count"]) == 3 and bins["count"][10] == 1 and bins["count"][8] == 1 and bins["count"][5] == 1
    )


def test_ece_of_a_perfectly_calibrated_pair_of_bins_is_zero():
    # two predictions at confidence 0.5, one right and one wrong
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    assert expected_calibration_error(logits, torch.tensor([0, 1]), bins=15) == pytest.approx(0.0, abs=1e-7)


def test_class_subset_matches_a_manual_restriction():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 10, generator=g)
    labels = torch.tensor([2, 5, 7, 2, 9, 5])
    subset = [2, 5, 7, 9]
    restricted, mapped = restrict_to_classes(logits, labels, subset)
    assert torch.equal(restricted, logits[:, [2, 5, 7, 9]])
    assert mapped.tolist() == [0, 1, 2, 0, 3, 1]
    manual = torch.tensor([subset[i] for i in logits[:, subset].argmax(1)])
    assert torch.equal(torch.tensor(subset)[restricted.argmax(1)], manual)
    with pytest.raises(ValueError, match="outside the class groups"):
        restrict_to_classes(logits, torch.tensor([3]), subset)


def test_energy_gap_by_hand():
    texts = torch.eye(3)
    features = torch.tensor([[1.0, 0.0, 0.0]])
    zero = torch.tensor([[0.0, 1.0, 0.0]])
    # E differences per text: (-1 - 0, 0 - (-1), 0) -> squares 1, 1, 0 -> mean 2/3
    assert energy_gap(features, zero, texts) == pytest.approx(2 / 3)
    assert energy_gap(zero, zero, texts) == 0.0


def test_grouped_logits_take_the_max_over_each_group():
    # ObjectNet-style: group 0 = classes {1, 3}, group 1 = class {4}
    logits = torch.tensor([[0.0, 2.0, 0.0, 5.0, 1.0], [0.0, 1.0, 0.0, 0.5, 3.0]])
    grouped, mapped = group_logits(logits, torch.tensor([3, 4]), [[1, 3], [4]])
    assert torch.equal(grouped, torch.tensor([[5.0, 1.0], [1.0, 3.0]]))
    assert mapped.tolist() == [0, 1]


def ece_by_loops(confidences: list[float], correct: list[bool], bins: int) -> float:
    """ECE written out: right-closed bins ((b - 1) / B, b / B], the first one also holding 0."""
    total, n = 0.0, len(confidences)
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidences) if (low < c <= high) or (b == 0 and c == 0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidences[i] for i in members) / len(members)
            total += len(members) / n * abs(acc - conf)
    return total


def binary_logits(confidences: list[float], correct: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-class logits whose softmax puts ``c`` on class 0; the label is 0 when the prediction is right."""
    c = torch.tensor(confidences, dtype=torch.float64)
    logits = torch.stack([torch.log(c), torch.log1p(-c)], dim=1)
    return logits, torch.tensor([0 if ok else 1 for ok in correct])


# Several samples per bin, bins of unequal accuracy, and two confidences of exactly 0.5 (one tie,
# logits [0, 0]) that sit on a bin edge for even bin counts: right-closed and left-closed bins differ.
CONFIDENCES = [0.52, 0.55, 0.58, 0.61, 0.64, 0.66, 0.71, 0.74, 0.83, 0.86, 0.88, 0.93, 0.97, 0.99]
CORRECT = [True, False, False, True, True, False, True, True, True, False, True, True, True, True]


@pytest.mark.parametrize("bins", [2, 4, 5, 10, 15])
def test_ece_with_several_samples_per_bin_matches_a_loop_for_each_bin_count(bins):
    logits, labels = binary_logits(CONFIDENCES, CORRECT)
    logits = torch.cat([logits, torch.zeros(2, 2, dtype=torch.float64)])  # confidence exactly 0.5
    labels = torch.cat([labels, torch.tensor([0, 1])])  # argmax of a tie is class 0: one right, one wrong
    confidences = logits.softmax(dim=-1).max(dim=-1).values.tolist()
    correct = [*CORRECT, True, False]
    expected = ece_by_loops(confidences, correct, bins)
    assert expected_calibration_error(logits, labels, bins=bins) == pytest.approx(
        expected, rel=1e-5, abs=1e-6
    )
    table = reliability_bins(logits, labels, bins=bins)
    assert len(table["count"]) == bins and sum(table["count"]) == len(correct)
    assert max(table["count"]) >= 3  # the example does put several samples in a bin


def test_ece_depends_on_the_bin_count():
    logits, labels = binary_logits(CONFIDENCES, CORRECT)
    values = {bins: expected_calibration_error(logits, labels, bins=bins) for bins in (2, 5, 15)}
    assert len({round(v, 6) for v in values.values()}) == 3, values


def test_nll_of_unnormalised_float16_logits_is_the_mean_log_softmax_of_the_label():
    # rows shifted by different constants: log-probabilities only after a log-softmax
    logits = torch.tensor([[2.0, -1.0, 0.5], [7.0, 9.0, 6.5], [-3.0, -2.5, -4.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2, 1, 0])
    expected = 0.0
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        log_z = math.log(sum(math.exp(v) for v in row))
        expected += (log_z - row[y]) / len(logits)
    assert nll(logits, labels) == pytest.approx(expected, rel=1e-6)
    assert nll(logits.half(), labels) == pytest.approx(expected, rel=2e-3)


def test_energy_gap_squares_differences_that_are_not_unit():
    # two images, three texts, features that are not one-hot: differences of 0.3, -1.7, 2.5, ...
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    features = torch.tensor([[0.9, -0.4], [0.2, 1.1]])
    zero = torch.tensor([[0.6, 1.3], [-0.5, 0.4]])
    expected = 0.0
    for f, f0 in zip(features.tolist(), zero.tolist(), strict=True):
        for t in texts.tolist():
            e_theta = -(t[0] * f[0] + t[1] * f[1])
            e_zero = -(t[0] * f0[0] + t[1] * f0[1])
            expected += (e_theta - e_zero) ** 2 / 6
    assert energy_gap(features, zero, texts) == pytest.approx(expected, rel=1e-6)
    # the absolute difference would give another value on these numbers
    absolute = ((features - zero) @ texts.T).abs().mean().item()
    assert abs(absolute - expected) > 0.1


def test_classification_metrics_bundle_the_metrics_with_fifteen_bins_by_default():
    logits, labels = binary_logits(CONFIDENCES, CORRECT)
    metrics = classification_metrics(logits, labels)
    assert metrics == {
        "acc": pytest.approx(sum(CORRECT) / len(CORRECT)),
        "nll": pytest.approx(
            -sum(math.log(c if ok else 1 - c) for c, ok in zip(CONFIDENCES, CORRECT, strict=True)) / 14
        ),
        "ece": pytest.approx(ece_by_loops(CONFIDENCES, CORRECT, 15), rel=1e-5, abs=1e-6),
        "n": 14,
    }
    assert expected_calibration_error(logits, labels) == pytest.approx(ece_by_loops(CONFIDENCES, CORRECT, 15))
    assert len(reliability_bins(logits, labels)["count"]) == 15
    assert classification_metrics(logits, labels, bins=5)["ece"] == pytest.approx(
        ece_by_loops(CONFIDENCES, CORRECT, 5), rel=1e-5, abs=1e-6
    )


def test_feature_distortion_is_the_squared_distance_of_unit_features_by_hand():
    # image 1 turns by 90 degrees (distance^2 = 2), image 2 keeps its direction but not its norm (0),
    # image 3 turns by 60 degrees (distance^2 = 2 - 2 cos 60 = 1): mean 1.0
    features = torch.tensor([[3.0, 0.0], [0.6, 0.8], [0.5, 3**0.5 / 2]])
    zero_shot = torch.tensor([[0.0, 2.0], [1.2, 1.6], [1.0, 0.0]])
    per_image = feature_distortion_per_image(features, zero_shot)
    assert per_image.tolist() == pytest.approx([2.0, 0.0, 1.0], abs=1e-6)
    assert feature_distortion(features, zero_shot) == pytest.approx(1.0, abs=1e-6)


def test_energy_gap_per_image_averages_over_texts_and_its_mean_is_the_gap():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zero_shot = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    texts = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    # image 1: <t, f - f0> = (1, -0.2, -1) -> mean of squares (1 + 0.04 + 1) / 3; image 2: no change
    per_image = energy_gap_per_image(features, zero_shot, texts)
    assert per_image.tolist() == pytest.approx([2.04 / 3, 0.0], abs=1e-6)
    assert energy_gap(features, zero_shot, texts) == pytest.approx(2.04 / 6, abs=1e-6)


def test_the_lowest_bin_holds_confidences_under_one_over_bins():
    # With 40 classes a near-uniform softmax is 4-6 % confident: under 1/10, so bin 0 of 10 (not bin 1).
    g = torch.Generator().manual_seed(2)
    logits = 0.3 * torch.rand(9, 40, generator=g)
    logits[6:, 0] += 3.0  # three confident rows, for contrast
    labels = torch.tensor([0, 5, 7, 1, 2, 3, 0, 0, 4])
    probs = logits.softmax(-1)
    confidence = probs.max(-1).values
    assert (confidence[:6] < 0.1).all() and (confidence[6:] > 0.1).all()
    table = reliability_bins(logits, labels, bins=10)
    expected = [0] * 10
    for c in confidence.tolist():
        expected[math.ceil(c * 10) - 1] += 1
    assert table["count"] == expected and table["count"][0] == 6
    low = probs[:6].argmax(-1) == labels[:6]
    assert table["accuracy"][0] == pytest.approx(low.float().mean().item())
    assert table["confidence"][0] == pytest.approx(confidence[:6].mean().item())
