"""A study's grid, interrupted and started again, trains only the runs it had not finished, and gives
what an uninterrupted grid gives: the same weights, the same logs, the same live curves.

Real fits of a tiny CLIP (three runs: FT at two seeds, LP); an interruption is a fit that raises, as a
kill between runs leaves the grid. Records written under other settings, by other code, or damaged
are not used, and only global rank 0 writes one.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from lipsum_ft.clip.backbone import ClipBundle, new_model
from lipsum_ft.data.images import InMemoryImages
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.training import run_records, runs
from lipsum_ft.training.loop import TrainResult
from lipsum_ft.training.preemption import Preempted
from lipsum_ft.training.runs import Run, run_grid, study_params

REPO = Path(__file__).resolve().parents[2]
CLASSES = 4
TIMING = ["images_per_s"]  # columns and series that measure the machine, not the run


@pytest.fixture(scope="module")
def setup():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    g = torch.Generator().manual_seed(3)
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]

    def images(n: int) -> InMemoryImages:
        pixels = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        return InMemoryImages(pixels, torch.arange(n) % CLASSES, mean, std)

    head = {
        "weight": 0.1 * torch.randn(spec.model_cfg["embed_dim"], CLASSES, generator=g),
        "logit_scale": 14.0,
    }
    return ClipBundle(model=model, spec=spec), head, (images(16), images(8))


def params(**override) -> FinetuneParams:
    finetune = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    finetune.update(reference_domain="photo", loader={}, steps=4, batch_size=8, eval_every=2, log_every=2)
    finetune.update(progress=False, **override)
    return parse(FinetuneParams, finetune)


def grid_runs(recipe: FinetuneParams) -> list[Run]:
    return [
        Run("ft/seed0", "ft", study_params(recipe, 0)),
        Run("ft/seed1", "ft", study_params(recipe, 1)),
        Run("lp/seed0", "lp", study_params(recipe, 0)),
    ]


def grid(setup, resume_dir=None, live_dir=None, recipe=None):
    bundle, head, data = setup
    chosen = grid_runs(recipe or params())
    return run_grid(chosen, bundle, head, list("abcd"), data, False, "test grid", live_dir, resume_dir)


class Fits:
    """``runs.fit`` counted, raising KeyboardInterrupt (a kill) on call ``fail_at`` (1-based)."""

    def __init__(self, monkeypatch, fail_at: int | None = None, error: BaseException | None = None):
        self.calls, self.fail_at, self.real = 0, fail_at, runs.fit
        self.error = error or KeyboardInterrupt("the grid is killed here")
        monkeypatch.setattr(runs, "fit", self)

    def __call__(self, *args, **kwargs) -> TrainResult:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        return self.real(*args, **kwargs)


def assert_same_models(got: dict[str, ClipBundle], want: dict[str, ClipBundle]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        ours, theirs = got[name].model.state_dict(), want[name].model.state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name
        assert torch.equal(got[name].head["weight"], want[name].head["weight"]), name
        finetune = {k: v for k, v in got[name].spec.extra["finetune"].items() if k != "seconds"}
        assert finetune == {k: v for k, v in want[name].spec.extra["finetune"].items() if k != "seconds"}


def curves(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        str(p.relative_to(folder)): pd.read_csv(p, sep="\t")
        for p in sorted(folder.rglob("*.tsv"))
        if p.stem not in TIMING
    }


def test_an_interrupted_grid_trains_only_its_unfinished_runs_and_equals_an_uninterrupted_one(
    setup, tmp_path, monkeypatch
):
    want_models, want_log = grid(setup, live_dir=str(tmp_path / "live-once"))
    records = tmp_path / "records"
    live = tmp_path / "live"

    Fits(monkeypatch, fail_at=3)  # two runs finish, the third is killed
    with pytest.raises(KeyboardInterrupt):
        grid(setup, str(records), str(live))
    assert sorted(p.name for p in records.iterdir()) == ["ft-seed0.pt", "ft-seed1.pt"]
    seconds = {
        s: torch.load(records / f"{s}.pt", weights_only=True)["seconds"] for s in ("ft-seed0", "ft-seed1")
    }

    shutil.rmtree(live)  # as `dvc repro` clears a stage's outputs before it runs the stage again
    fits = Fits(monkeypatch)
    models, log = grid(setup, str(records), str(live))
    assert fits.calls == 1  # only lp/seed0 trained
    assert_same_models(models, want_models)
    pd.testing.assert_frame_equal(log.drop(columns=TIMING), want_log.drop(columns=TIMING))
    assert {s: models[s.replace("-", "/")].spec.extra["finetune"]["seconds"] for s in seconds} == seconds
    # the grid leaves its records to its caller, which clears them once it has saved what it made of them
    assert sorted(p.name for p in records.iterdir()) == ["ft-seed0.pt", "ft-seed1.pt", "lp-seed0.pt"]
    run_records.RunRecords(records).clear()
    assert not records.exists()
    got, expected = curves(live), curves(tmp_path / "live-once")
    assert got.keys() == expected.keys() and {k.split("/")[2] for k in got} == {
        "ft-seed0",
        "ft-seed1",
        "lp-seed0",
    }
    for series in expected:
        pd.testing.assert_frame_equal(got[series], expected[series])
    summary = json.loads((live / "metrics.json").read_text())
    assert summary == json.loads((tmp_path / "live-once" / "metrics.json").read_text())


def test_a_preempted_grid_says_how_many_runs_it_kept_and_where(setup, tmp_path, monkeypatch, caplog):
    records = tmp_path / "records"
    Fits(monkeypatch, fail_at=3, error=Preempted("preempted by signal 15 after step 2 of 4"))
    with caplog.at_level(logging.WARNING), pytest.raises(Preempted):
        grid(setup, str(records))
    assert (
        f"test grid: preempted during lp/seed0; 2 of 3 runs finished and kept in {records}: run the same "
        "command again to train the other 1"
    ) in caplog.text


def test_records_from_other_settings_other_code_or_damaged_are_trained_again(
    setup, tmp_path, monkeypatch, caplog
):
    records = tmp_path / "records"
    Fits(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        grid(setup, str(records))

    fits = Fits(monkeypatch, fail_at=3)  # another lr: neither record is this grid's
    with pytest.raises(KeyboardInterrupt):
        grid(setup, str(records), recipe=params(lr=3e-4))
    assert fits.calls == 3  # both finished runs trained again (and their records replaced)

    monkeypatch.setattr(run_records, "source_digest", lambda: "another-version")
    fits = Fits(monkeypatch, fail_at=3)  # other code: the records of the lr=3e-4 grid are not used
    with pytest.raises(KeyboardInterrupt):
        grid(setup, str(records), recipe=params(lr=3e-4))
    assert fits.calls == 3
    monkeypatch.undo()

    damaged = records / "ft-seed1.pt"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    fits = Fits(monkeypatch)
    with caplog.at_level(logging.WARNING):
        grid(setup, str(records))  # lr back at the default: these records are the first grid's
    assert fits.calls == 3  # ft-seed0 (other lr and code) and ft-seed1 (damaged) trained again, and lp
    assert f"not using the finished run {damaged}" in caplog.text


def test_a_record_restores_the_run_exactly_and_only_rank_zero_writes_one(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(5)
    result = TrainResult(
        best_state={"visual.proj": torch.randn(6, 3, generator=g), "head": torch.randn(3, 2, generator=g)},
        best_step=7,
        best_val_acc=0.625,
        log=[{"step": 1, "loss": 2.5, "lr": 1e-4}, {"step": 2, "loss": 1.75, "lr": 2e-4, "val_acc": 0.625}],
        peak_memory_gib=None,
    )
    identity = {"train": {"lr": 1e-4, "seed": 3}, "method": "ft"}
    records = run_records.RunRecords(tmp_path / "grid")
    record = records.slot("ft-seed3")

    monkeypatch.setenv("RANK", "0")
    record.save(identity, result, 12.5)
    restored, seconds = record.load(identity)
    assert seconds == 12.5 and restored.best_step == 7 and restored.best_val_acc == 0.625
    assert restored.log == result.log and restored.peak_memory_gib is None
    assert all(torch.equal(restored.best_state[k], v) for k, v in result.best_state.items())
    assert record.load({**identity, "method": "lp"}) is None  # another run's settings

    monkeypatch.setenv("RANK", "1")
    records.slot("ft-seed4").save(identity, result, 12.5)
    records.clear()
    assert sorted(p.name for p in records.folder.iterdir()) == [
        "ft-seed3.pt"
    ]  # rank 1 wrote and removed nothing

    monkeypatch.setenv("RANK", "0")
    (records.folder / "notes.txt").write_text("kept")
    records.clear()
    assert sorted(p.name for p in records.folder.iterdir()) == ["notes.txt"]  # only records go
