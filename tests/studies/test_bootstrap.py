"""Bootstrap over images: counts are resamples within each domain, means match explicit resampling,
and Spearman's rho matches a hand computation with ties."""

from __future__ import annotations

import numpy as np
import pytest

from lipsum_ft.studies.bootstrap import (
    covers_zero,
    interval,
    ranks,
    resample_counts,
    resampled_means,
    spearman,
)


def test_counts_redraw_each_domain_with_replacement_at_its_own_size():
    counts = resample_counts({"photo": 7, "sketch": 3}, samples=500, seed=4)
    assert counts["photo"].shape == (500, 7) and counts["sketch"].shape == (500, 3)
    assert (counts["photo"].sum(axis=1) == 7).all() and (counts["sketch"].sum(axis=1) == 3).all()
    assert (counts["photo"] > 1).any()  # with replacement: some image drawn twice in some resample
    assert np.array_equal(counts["photo"], resample_counts({"photo": 7, "sketch": 3}, 500, 4)["photo"])
    assert not np.array_equal(counts["photo"], resample_counts({"photo": 7, "sketch": 3}, 500, 5)["photo"])


def test_resampled_means_equal_the_means_of_explicitly_resampled_images():
    rng = np.random.default_rng(0)
    matrix = rng.random((4, 9))  # 4 candidates x 9 images
    counts = resample_counts({"d": 9}, samples=6, seed=1)["d"]
    fast = resampled_means(matrix, counts)
    for b in range(6):
        drawn = np.repeat(np.arange(9), counts[b].astype(int))  # the images of resample b, repeats kept
        assert fast[b] == pytest.approx(matrix[:, drawn].mean(axis=1))


def test_spearman_is_pearson_of_average_ranks_with_ties():
    x = np.array([1.0, 2.0, 2.0, 5.0, 4.0])
    y = np.array([3.0, 1.0, 4.0, 9.0, 2.0])
    rx = np.array([1.0, 2.5, 2.5, 5.0, 4.0])  # the tied pair shares rank (2 + 3) / 2
    ry = np.array([3.0, 1.0, 4.0, 5.0, 2.0])
    assert np.array_equal(ranks(x), rx)
    assert spearman(x, y) == pytest.approx(np.corrcoef(rx, ry)[0, 1])
    rows = spearman(np.stack([x, -x]), np.stack([y, y]))  # row-wise
    assert rows == pytest.approx([np.corrcoef(rx, ry)[0, 1], -np.corrcoef(rx, ry)[0, 1]])
    assert np.isnan(spearman(np.ones(4), np.arange(4.0)))  # a constant side has no rank order


def test_percentile_interval_and_zero_cover():
    draws = np.concatenate([np.arange(1, 101, dtype=float), [np.nan]])  # NaN draws are dropped
    low, high = interval(draws, 0.9)
    assert (low, high) == pytest.approx(
        (np.percentile(np.arange(1, 101), 5), np.percentile(np.arange(1, 101), 95))
    )
    assert covers_zero((-0.1, 0.2)) and covers_zero((0.0, 0.3)) and not covers_zero((0.01, 0.3))
