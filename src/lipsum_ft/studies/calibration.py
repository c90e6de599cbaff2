"""The criterion that chooses the embedded benchmark's design (issue 23), written before any result.

The embedded benchmark must sit in the paper's regime: fine-tuning gains on the reference domain and
loses under shift, from a zero-shot model that is worth protecting, with CAR-FT's contexts told apart,
in a ``make run`` that stays short. A configuration of the benchmark's knobs is judged on figures
measured with zero-shot and FT alone, on **val** splits (never test, never a regularised method):

- FT ref val >= zero-shot ref val + ``ref_gain_min`` (FT has something to gain);
- FT shift val <= zero-shot shift val - ``shift_drop_min`` (and something to lose under shift);
- zero-shot mean val accuracy over every domain >= ``zeroshot_mean_min`` (a zero-shot model worth keeping);
- mean top p_0(context | x) over the reference train images >= ``context_top_min`` (CAR-FT's contexts
  carry information, ``benchmarks/carft_contexts.py``);
- the estimated ``make run`` seconds <= ``make_run_max_s``.

Each condition has a margin (figure minus threshold, in the direction that passes); a configuration
passes when every margin is >= 0. Among passing configurations ``choose`` applies the tie-break in
``tie_break_key``. Accuracies are fractions (0.05 is 5 points).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROUNDING = 1e-9
"""A margin this far below zero still passes: float rounding of differences of accuracies (one image of
360 is 2.8e-3), so a figure exactly at its threshold meets it (>=, not >)."""


@dataclass(frozen=True)
class CalibrationFigures:
    """What one configuration measured: val accuracies (fractions), CAR-FT's context peak, run time."""

    zeroshot_ref_val: float  # zero-shot accuracy on the reference domain's val split
    ft_ref_val: float  # FT's, same split
    zeroshot_shift_val: float  # zero-shot accuracy on the shift domains' val splits, mean over domains
    ft_shift_val: float  # FT's, same splits and mean
    zeroshot_mean_val: float  # zero-shot accuracy, mean over every domain (reference included)
    context_top_p: float  # mean over reference train images of max_context p_0(context | x)
    make_run_s: float  # the estimated seconds of ``make run`` on 2 cores


@dataclass(frozen=True)
class Criterion:
    """The thresholds (``calibration.criterion`` in ``conf/base/calibration.yml``)."""

    ref_gain_min: float
    shift_drop_min: float
    zeroshot_mean_min: float
    context_top_min: float
    make_run_max_s: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Criterion:
        """From the config, naming a missing or unknown key."""
        names = set(cls.__dataclass_fields__)
        unknown, missing = sorted(set(values) - names), sorted(names - set(values))
        if unknown or missing:
            raise ValueError(
                f"calibration.criterion: unknown keys {unknown}, missing keys {missing}; "
                f"expected {sorted(names)}"
            )
        return cls(**{name: float(values[name]) for name in names})


@dataclass(frozen=True)
class Condition:
    """One condition of the criterion for one configuration: its margin (>= 0 passes), and the verdict."""

    name: str
    margin: float
    passed: bool


def meets_criterion(figures: CalibrationFigures, criterion: Criterion) -> dict[str, Condition]:
    """Every condition of the criterion, by name, with its margin: see the module's docstring."""
    margins = {
        "ref_gain": (figures.ft_ref_val - figures.zeroshot_ref_val) - criterion.ref_gain_min,
        "shift_drop": (figures.zeroshot_shift_val - figures.ft_shift_val) - criterion.shift_drop_min,
        "zeroshot_mean": figures.zeroshot_mean_val - criterion.zeroshot_mean_min,
        "contexts_apart": figures.context_top_p - criterion.context_top_min,
        "make_run_time": criterion.make_run_max_s - figures.make_run_s,
    }
    return {name: Condition(name, margin, margin >= -ROUNDING) for name, margin in margins.items()}


def passes(conditions: Mapping[str, Condition]) -> bool:
    """True when every condition passes."""
    return all(condition.passed for condition in conditions.values())


def tie_break_key(pretrain_steps: int, conditions: Mapping[str, Condition], order: int) -> tuple:
    """The tie-break among passing configurations, smallest first:

    1. the fewest pretraining steps (the cheapest ``make run`` and the least pretraining to explain);
    2. then the largest trade-off margin, min(ref_gain, shift_drop) margins (the regime shown most
       clearly, furthest from either boundary);
    3. then the shortest estimated ``make run``;
    4. then the first in the grid's order.
    """
    trade_off = min(conditions["ref_gain"].margin, conditions["shift_drop"].margin)
    return (pretrain_steps, -trade_off, -conditions["make_run_time"].margin, order)


def choose(candidates: Sequence[tuple[int, Mapping[str, Condition]]]) -> int | None:
    """The index of the chosen configuration among ``candidates`` (pretraining steps, conditions), in
    grid order: the passing one with the smallest ``tie_break_key``; None when none passes."""
    passing = [
        (tie_break_key(steps, conditions, order), order)
        for order, (steps, conditions) in enumerate(candidates)
        if passes(conditions)
    ]
    return min(passing)[1] if passing else None
