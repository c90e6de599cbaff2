"""Metrics against hand-computed values on small fixed examples."""

from __future__ import annotations

import math

import pytest
import torch

from lipsum_ft.evaluation.metrics import (
    accuracy,
    energy_gap,
    expected_calibration_error,
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
