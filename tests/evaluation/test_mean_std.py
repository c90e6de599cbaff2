"""The reports' "mean ± std" cell: one seed's NaN std reads 0, an unmeasured (NaN) mean a dash, the
scale and sign apply to the mean."""

from __future__ import annotations

import pytest

from lipsum_ft.evaluation.reporting import mean_std


@pytest.mark.parametrize(
    ("mean", "std", "digits", "scale", "signed", "cell"),
    [
        (0.71234, 0.00567, 1, 100, False, "71.2 ± 0.6"),  # accuracy in %: both scaled
        (-0.0372, 0.0114, 1, 100, True, "-3.7 ± 1.1"),  # a paired difference keeps its sign
        (0.0224, 0.0114, 1, 100, True, "+2.2 ± 1.1"),
        (163.6, float("nan"), 0, 1.0, False, "164 ± 0"),  # one seed: no spread, not "nan"
        (0.00226, 0.00201, 4, 1.0, False, "0.0023 ± 0.0020"),
        (float("nan"), float("nan"), 0, 1.0, False, "–"),  # not measured: a dash, not "nan ± 0"
        (float("nan"), 3.0, 1, 100, True, "–"),
    ],
)
def test_the_cell_rounds_mean_and_spread_alike(mean, std, digits, scale, signed, cell):
    assert mean_std(mean, std, digits, scale=scale, signed=signed) == cell
