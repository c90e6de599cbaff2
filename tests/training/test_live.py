"""Live curves (DVCLive): the loop streams the rows of its own log, one point per ``log_every`` block
plus every validation; a resumed run's curves equal an uninterrupted run's; only global rank 0 writes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lipsum_ft.training.live import LiveCurves, LiveSettings, curve_points, curves_for
from lipsum_ft.training.loop import fit
from tests.training.loop_helpers import config, fault_at, make


@pytest.fixture(autouse=True)
def outside_any_repository(tmp_path, monkeypatch):
    """DVCLive looks for a DVC repository from the working directory: keep it away from this checkout."""
    monkeypatch.chdir(tmp_path)


def series(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / "plots" / "metrics" / f"{name}.tsv", sep="\t")


def test_curve_points_keep_the_rows_that_end_a_block_and_every_validation():
    row = {"step": 4, "loss": 1.5, "ce": 1.0, "lr": 0.1, "images_per_s": 9.0}
    assert curve_points(row, log_every=2, steps=7) == (
        {"train/loss": 1.5, "train/ce": 1.0, "train/lr": 0.1, "train/images_per_s": 9.0},
        {},
    )
    assert curve_points({**row, "step": 3}, log_every=2, steps=7) == ({}, {})
    assert curve_points({**row, "step": 7}, log_every=2, steps=7)[0]["train/loss"] == 1.5  # the last step
    assert curve_points({**row, "step": 3, "val_acc": 0.5}, log_every=2, steps=7) == ({}, {"val/acc": 0.5})


def test_a_run_streams_its_own_log_rows_one_per_block_and_the_val_points(setup, tmp_path):
    folder = tmp_path / "dvclive" / "finetune"
    live = LiveSettings(str(folder), "lipsum-seed0")
    result = fit(make(setup), setup[3], setup[4], config(log_every=2, live=live))

    by_step = {row["step"]: row for row in result.log}
    for name in ("loss", "ce", "reg", "lr", "images_per_s"):
        curve = series(folder, f"lipsum-seed0/train/{name}")
        assert curve["step"].tolist() == [2, 4, 6]  # steps 2, 4, 6 end the log blocks of 2
        assert curve[name].tolist() == pytest.approx([by_step[s][name] for s in (2, 4, 6)], rel=1e-12)
    val = series(folder, "lipsum-seed0/val/acc")
    assert val["step"].tolist() == [3, 6]  # eval_every=3
    assert val["acc"].tolist() == [by_step[3]["val_acc"], by_step[6]["val_acc"]]

    summary = json.loads((folder / "metrics.json").read_text())["lipsum-seed0"]
    assert summary == {
        "best_step": result.best_step,
        "best_val_acc": result.best_val_acc,
        "loss": pytest.approx(result.log[-1]["loss"]),
    }
    assert not (folder / "dvc.yaml").exists() and not (folder / "report.html").exists()


def test_without_a_folder_or_off_rank_zero_nothing_is_written(tmp_path):
    settings = LiveSettings(str(tmp_path / "live"))
    for curves in (curves_for(None, 1, 2), curves_for(settings, 1, 2, rank_zero=False)):
        curves.add([{"step": 1, "loss": 1.0}])
        curves.finish({"loss": 1.0})
    assert not (tmp_path / "live").exists()


def test_later_runs_of_a_grid_keep_the_earlier_series_and_a_fresh_one_clears_them(tmp_path):
    folder = str(tmp_path / "live")
    for series_name, fresh in (("ft-seed0", True), ("lipsum-seed0", False)):
        curves = LiveCurves(LiveSettings(folder, series_name, fresh), log_every=1, steps=2)
        curves.add([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
        curves.finish({"loss": 1.0})
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["ft-seed0"] == summary["lipsum-seed0"] == {"loss": 1.0}
    assert series(tmp_path / "live", "ft-seed0/train/loss")["loss"].tolist() == [2.0, 1.0]

    LiveCurves(LiveSettings(folder, "kd-seed0"), log_every=1, steps=2).finish({"loss": 3.0})
    assert json.loads((tmp_path / "live" / "metrics.json").read_text()).keys() == {"kd-seed0"}
    assert not (tmp_path / "live" / "plots" / "metrics" / "ft-seed0").exists()


def test_a_resumed_run_replays_its_restored_rows_so_its_curves_equal_the_uninterrupted_runs(
    setup, tmp_path, monkeypatch
):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(make(setup), setup[3], setup[4], config(log_every=2, live=LiveSettings(str(straight))))
    checkpoint = str(tmp_path / "ckpt.pt")
    interrupted = make(setup)
    restore = fault_at(monkeypatch, interrupted, 4, "interrupt")  # step 5
    settings = config(
        log_every=2, checkpoint_every=2, checkpoint_path=checkpoint, live=LiveSettings(str(resumed))
    )
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, setup[3], setup[4], settings)
    restore()
    fit(make(setup), setup[3], setup[4], config(**{**settings.__dict__, "resume": True}))
    for name in ("train/loss", "train/lr", "val/acc"):
        expected, got = series(straight, name), series(resumed, name)
        assert got["step"].tolist() == expected["step"].tolist()
        assert got.iloc[:, -1].tolist() == expected.iloc[:, -1].tolist()


@pytest.mark.slow
def test_rank_one_of_two_processes_writes_no_point(setup, tmp_path):
    folder = tmp_path / "live"
    two = fit(make(setup), setup[3], setup[4], config(devices=2, log_every=2, live=LiveSettings(str(folder))))
    loss = series(folder, "train/loss")
    assert loss["step"].tolist() == [2, 4, 6]  # one writer: no point twice
    assert loss["loss"].tolist() == pytest.approx(
        [r["loss"] for r in two.log if r["step"] % 2 == 0], rel=1e-12
    )
    assert series(folder, "val/acc")["step"].tolist() == [3, 6]
