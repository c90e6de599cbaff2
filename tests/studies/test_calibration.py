"""The calibration criterion of the embedded benchmark (issue 23) on constructed figures: each condition
met at its boundary (>=), missed just past it, and met just inside it, the others held passing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from lipsum_ft.studies.calibration import (
    CalibrationFigures,
    Criterion,
    choose,
    meets_criterion,
    passes,
    tie_break_key,
)

REPO = Path(__file__).resolve().parents[2]
ISSUE = Criterion(
    ref_gain_min=0.05, shift_drop_min=0.03, zeroshot_mean_min=0.60, context_top_min=0.5, make_run_max_s=600
)
# every condition passes with room: ref +10 points, shift -10 points, mean 70 %, top p 0.75, 300 s
GOOD = CalibrationFigures(
    zeroshot_ref_val=0.75,
    ft_ref_val=0.85,
    zeroshot_shift_val=0.625,
    ft_shift_val=0.525,
    zeroshot_mean_val=0.70,
    context_top_p=0.75,
    make_run_s=300.0,
)
STEP = 0.001  # well under one image of the embedded val split (1/180 per domain)

# condition -> (the figure it reads, that figure at the boundary, the direction that fails it)
BOUNDARIES = {
    "ref_gain": ("ft_ref_val", 0.80, -STEP),  # 0.80 = zero-shot 0.75 + 5 points
    "shift_drop": ("ft_shift_val", 0.595, +STEP),  # 0.595 = zero-shot 0.625 - 3 points
    "zeroshot_mean": ("zeroshot_mean_val", 0.60, -STEP),
    "contexts_apart": ("context_top_p", 0.5, -STEP),
    "make_run_time": ("make_run_s", 600.0, +1.0),
}


def with_figure(field: str, value: float) -> CalibrationFigures:
    return dataclasses.replace(GOOD, **{field: value})


def test_figures_with_room_pass_every_condition_with_their_margins():
    conditions = meets_criterion(GOOD, ISSUE)
    assert passes(conditions)
    expected = {
        "ref_gain": 0.05,
        "shift_drop": 0.07,
        "zeroshot_mean": 0.10,
        "contexts_apart": 0.25,
        "make_run_time": 300.0,
    }
    assert {name: c.margin for name, c in conditions.items()} == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(BOUNDARIES))
def test_each_condition_is_met_at_its_boundary_and_missed_just_past_it(name):
    field, boundary, failing = BOUNDARIES[name]
    at = meets_criterion(with_figure(field, boundary), ISSUE)
    assert at[name].passed and at[name].margin == pytest.approx(0.0, abs=1e-9)  # >=, not >
    assert passes(at)
    past = meets_criterion(with_figure(field, boundary + failing), ISSUE)
    assert not past[name].passed and past[name].margin == pytest.approx(-abs(failing))
    assert [n for n, c in past.items() if not c.passed] == [name]  # only the condition at fault
    assert not passes(past)
    inside = meets_criterion(with_figure(field, boundary - failing), ISSUE)
    assert inside[name].passed and inside[name].margin == pytest.approx(abs(failing))


def test_a_gain_on_shift_or_a_loss_on_the_reference_fails():
    # the sign of each trade-off condition: FT better on shift than zero-shot, or worse on the reference
    better_shift = meets_criterion(dataclasses.replace(GOOD, ft_shift_val=0.70), ISSUE)
    assert not better_shift["shift_drop"].passed and better_shift["shift_drop"].margin == pytest.approx(
        -0.105
    )
    worse_ref = meets_criterion(dataclasses.replace(GOOD, ft_ref_val=0.70), ISSUE)
    assert not worse_ref["ref_gain"].passed and worse_ref["ref_gain"].margin == pytest.approx(-0.10)


def test_the_tie_break_prefers_fewer_pretraining_steps_then_the_larger_trade_off_margin():
    clear = meets_criterion(GOOD, ISSUE)  # trade-off margin min(0.05, 0.07) = 0.05
    narrow = meets_criterion(dataclasses.replace(GOOD, ft_ref_val=0.81), ISSUE)  # min(0.01, 0.07)
    failing = meets_criterion(dataclasses.replace(GOOD, context_top_p=0.2), ISSUE)
    assert choose([(1000, clear), (500, narrow), (100, failing)]) == 1  # fewest steps among passing
    assert choose([(1000, narrow), (1000, clear)]) == 1  # then the clearer regime
    faster = meets_criterion(dataclasses.replace(GOOD, make_run_s=200.0), ISSUE)
    assert choose([(1000, clear), (1000, faster)]) == 1  # then the shorter make run
    assert choose([(1000, clear), (1000, clear)]) == 0  # then grid order
    assert choose([(100, failing)]) is None
    assert tie_break_key(500, clear, 3) < tie_break_key(1000, clear, 0)


def test_the_committed_criterion_is_the_issues():
    config = yaml.safe_load((REPO / "conf/base/calibration.yml").read_text())["calibration"]
    assert Criterion.from_mapping(config["criterion"]) == ISSUE


def test_a_criterion_with_a_wrong_key_is_refused_by_name():
    values = dataclasses.asdict(ISSUE) | {"ref_gain_minimum": 0.05}
    with pytest.raises(ValueError, match="ref_gain_minimum"):
        Criterion.from_mapping(values)
