"""Paired differences over seeds: the Student-t interval, and the table that pairs every variant."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lipsum_ft.studies.seed_intervals import paired_interval, paired_table


def test_interval_is_the_student_t_interval_of_the_differences():
    differences = [0.031, -0.004, 0.052, 0.017, 0.009]  # 5 seeds, asymmetric about their mean
    mean = sum(differences) / 5
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 4)  # n - 1
    half = 2.7764451051977987 * sd / math.sqrt(5)  # t_{0.975, 4}
    assert paired_interval(differences, 0.95) == pytest.approx((mean, mean - half, mean + half), rel=1e-9)


def test_interval_widens_with_the_level_and_narrows_with_more_seeds():
    _, low90, high90 = paired_interval([0.01, 0.03, 0.02], 0.90)
    _, low95, high95 = paired_interval([0.01, 0.03, 0.02], 0.95)
    assert low95 < low90 and high95 > high90
    _, low6, high6 = paired_interval([0.01, 0.03, 0.02] * 2, 0.95)
    assert high6 - low6 < high95 - low95


@pytest.mark.parametrize(
    ("differences", "level", "message"),
    [([0.1], 0.95, "at least 2"), ([0.1, float("nan")], 0.95, "finite"), ([0.1, 0.2], 1.0, "level")],
)
def test_interval_refuses_what_it_cannot_compute(differences, level, message):
    with pytest.raises(ValueError, match=message):
        paired_interval(differences, level)


def per_seed_rows() -> pd.DataFrame:
    """Three variants over three seeds; seed 2 of ``kd`` is missing, so kd pairs over seeds 0 and 1."""
    rows = [
        ("ft", 0, 0.90, 0.70),
        ("ft", 1, 0.88, 0.74),
        ("ft", 2, 0.91, 0.71),
        ("lipsum", 0, 0.92, 0.75),
        ("lipsum", 1, 0.89, 0.76),
        ("lipsum", 2, 0.90, 0.78),
        ("kd", 0, 0.93, 0.69),
        ("kd", 1, 0.87, 0.73),
    ]
    return pd.DataFrame(rows, columns=["variant", "seed", "ref_acc", "shift_acc"])


def test_table_pairs_each_seed_with_the_same_seed_of_the_baseline():
    table = paired_table(per_seed_rows(), "ft", ["ref_acc", "shift_acc"], 0.95).set_index(
        ["variant", "metric"]
    )
    assert "ft" not in table.index.get_level_values("variant")
    lipsum = table.loc[("lipsum", "shift_acc")]
    expected = paired_interval([0.75 - 0.70, 0.76 - 0.74, 0.78 - 0.71], 0.95)
    assert (lipsum["mean"], lipsum["low"], lipsum["high"]) == pytest.approx(expected)
    assert (lipsum["seeds"], lipsum["ahead"], lipsum["against"]) == (3, 3, "ft")
    kd = table.loc[("kd", "ref_acc")]
    assert kd["seeds"] == 2 and kd["ahead"] == 1
    assert kd["mean"] == pytest.approx(((0.93 - 0.90) + (0.87 - 0.88)) / 2)


def test_table_names_what_is_missing():
    with pytest.raises(ValueError, match="'zeroshot'"):
        paired_table(per_seed_rows(), "zeroshot", ["ref_acc"], 0.95)
    with pytest.raises(ValueError, match="ece"):
        paired_table(per_seed_rows(), "ft", ["ece"], 0.95)
