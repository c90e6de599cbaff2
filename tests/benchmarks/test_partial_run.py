"""benchmarks/partial_run.py: a benchmark JSON that survives a kill, and the budget that skips what would
not fit; and gpu_chain.py keeping its stages when a later one fails."""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.benchmarks.script_loader import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def partial(monkeypatch):
    return load_script(monkeypatch, REPO / "benchmarks/partial_run.py")


def test_the_json_holds_every_update_at_once_and_is_complete_only_at_the_end(partial, tmp_path):
    out = tmp_path / "figures.json"
    report = partial.JsonReport(out, digits=1)
    report.update(device="cpu")
    assert json.loads(out.read_text()) == {"complete": False, "device": "cpu"}
    report.update(ft_step_ms=12.345, stages={"data": 1})
    assert json.loads(out.read_text()) == {
        "complete": False,
        "device": "cpu",
        "ft_step_ms": 12.3,  # through the script's own rounding
        "stages": {"data": 1},
    }
    text = report.finish()
    assert json.loads(out.read_text()) == json.loads(text)
    assert json.loads(text)["complete"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]  # no temporary left beside it


def test_a_failure_is_named_and_what_was_measured_stays(partial, tmp_path):
    out = tmp_path / "figures.json"
    report = partial.JsonReport(out, digits=4)
    report.update(stages={"data": 3.5})
    report.fail(RuntimeError("evaluate: CUDA out of memory"))
    on_disk = json.loads(out.read_text())
    assert on_disk == {
        "complete": False,
        "stages": {"data": 3.5},
        "error": "RuntimeError: evaluate: CUDA out of memory",
    }


def test_no_output_path_writes_nothing_and_still_returns_the_text(partial, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = partial.JsonReport(None, digits=4)
    report.update(device="cuda")
    assert json.loads(report.finish()) == {"complete": True, "device": "cuda"}
    assert not list(tmp_path.iterdir())


def test_the_budget_skips_only_what_would_run_past_it(partial):
    now = [100.0]
    budget = partial.Budget(60.0, clock=lambda: now[0])
    now[0] = 130.0  # 30 s used, 30 left
    assert budget.skip_reason("the compiled run", 29.0) is None
    assert budget.skip_reason("the compiled run", 30.0) is None  # exactly fits
    reason = budget.skip_reason("the compiled run", 31.0)
    assert reason == (
        "skipped: the compiled run needs about 31 s and 30 s of the 60 s budget (--budget-s) were used"
    )
    unlimited = partial.Budget(None, clock=lambda: now[0])
    now[0] = 10_000.0
    assert unlimited.skip_reason("anything", 1e9) is None


def test_the_chain_keeps_its_finished_stages_when_a_later_one_fails(monkeypatch, tmp_path):
    """A stage that fails (as one killed at a time limit stops) leaves the JSON with the tree and the
    seconds of every stage before it, "complete": false and the error, and the scratch folder gone."""
    script = load_script(monkeypatch, REPO / "benchmarks/gpu_chain.py")
    ran = []

    class Session:
        def run(self, pipeline_names):
            (name,) = pipeline_names
            if name == "posthoc":
                raise RuntimeError("posthoc: no space left on device")
            ran.append(name)

    @contextmanager
    def session(project, env, params):
        assert env == "domainnet" and params["finetune"]["methods"] == ["ft", "lipsum"]
        yield Session()

    monkeypatch.setattr(script, "project_session", session)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the scratch folder, under the test's
    out = tmp_path / "chain.json"
    with pytest.raises(RuntimeError, match="no space left"):
        script.main(["--device", "cpu", "--output", str(out), "--tree-workers", "1"])
    assert ran == ["data", "pretrain", "zeroshot", "finetune"]
    figures = json.loads(out.read_text())
    assert figures["complete"] is False
    assert figures["error"] == "RuntimeError: posthoc: no space left on device"
    assert list(figures["stages"]) == ran and all(s >= 0 for s in figures["stages"].values())
    assert figures["device"] == "cpu" and figures["tree"]["images"] > 0
    assert "train" not in figures and "scored" not in figures  # nothing is made up for what never ran
    assert not list(tmp_path.glob("gpu-chain-*"))
