"""benchmarks/calibrate_benchmark.py: its grid and config handling, and the study at conf/test size.

The test-size figures mean nothing (a model pretrained for 10 steps); what is checked is that every
configuration is measured on val, judged by the committed criterion, and written out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lipsum_ft.studies.calibration import CalibrationFigures, Criterion, meets_criterion
from tests.benchmarks.script_loader import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks/calibrate_benchmark.py"


@pytest.fixture
def script(monkeypatch):
    return load_script(monkeypatch, SCRIPT)


def test_the_grid_expands_in_the_files_order_and_groups_by_pretrained_model(script):
    grid = {"pretrain.caption_noise": [0.0, 0.3], "finetune.steps": [4, 8], "finetune.lr": [1e-4]}
    configurations = script.expand_grid(grid)
    assert [tuple(c.values()) for c in configurations] == [
        (0.0, 4, 1e-4),
        (0.0, 8, 1e-4),
        (0.3, 4, 1e-4),
        (0.3, 8, 1e-4),
    ]
    groups = script.by_upstream(configurations)
    assert [[order for order, _ in group] for group in groups] == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    ("grid", "message"),
    [({"finetun.steps": [4]}, r"'finetun\.steps'"), ({"finetune.steps": []}, r"finetune\.steps.*non-empty")],
)
def test_a_bad_grid_is_refused_by_key(script, grid, message):
    with pytest.raises(ValueError, match=message):
        script.expand_grid(grid)


def test_dotted_knobs_nest_and_merge_key_by_key(script):
    knobs = {"pretrain.domain_shares.photo": 0.0, "pretrain.steps": 10}
    assert script.nested(knobs) == {"pretrain": {"domain_shares": {"photo": 0.0}, "steps": 10}}
    base = {"pretrain": {"steps": 1000, "lr": 1e-3, "domain_shares": {}}}
    merged = script.deep_update(base, script.nested(knobs))
    assert merged == {"pretrain": {"steps": 10, "lr": 1e-3, "domain_shares": {"photo": 0.0}}}
    assert base["pretrain"]["steps"] == 1000  # the base is not changed


def test_an_envs_sections_replace_the_base_ones_and_the_criterion_stays(script):
    base, test = script.load_config(REPO, "base"), script.load_config(REPO, "test")
    assert test["criterion"] == base["criterion"]
    assert test["grid"] != base["grid"] and "pretrain.cross_domain_weight" not in test["grid"]


def test_a_later_rounds_grid_is_searched_by_name_and_a_missing_one_is_named(script):
    first, widened = script.load_config(REPO, "base"), script.load_config(REPO, "base", "widened_grid")
    raw = yaml.safe_load((REPO / "conf/base/calibration.yml").read_text())["calibration"]
    assert (first["grid"], first["grid_name"]) == (raw["grid"], "grid")
    assert (widened["grid"], widened["grid_name"]) == (raw["widened_grid"], "widened_grid")
    assert widened["criterion"] == first["criterion"]  # one criterion for every round
    with pytest.raises(ValueError, match=r"calibration\.third_grid is missing"):
        script.load_config(REPO, "base", "third_grid")


@pytest.mark.slow
def test_the_study_runs_at_test_size_on_val_only(tmp_path):
    output, workdir = tmp_path / "out", tmp_path / "work"
    command = [
        sys.executable,
        str(SCRIPT),
        "--env",
        "test",
        "--output",
        str(output),
        "--workdir",
        str(workdir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(output / "table.csv")
    assert table["config"].tolist() == [0, 1, 2, 3]
    assert table[["pretrain.caption_noise", "finetune.steps"]].values.tolist() == [
        [0.0, 4], [0.0, 8], [0.3, 4], [0.3, 8]
    ]  # fmt: skip
    config = yaml.safe_load((REPO / "conf/base/calibration.yml").read_text())["calibration"]
    criterion = Criterion.from_mapping(config["criterion"])
    fields = list(CalibrationFigures.__dataclass_fields__)
    for _, row in table.iterrows():
        conditions = meets_criterion(CalibrationFigures(**{f: float(row[f]) for f in fields}), criterion)
        for name, condition in conditions.items():
            assert row[f"margin_{name}"] == pytest.approx(condition.margin)
            assert bool(row[f"pass_{name}"]) == condition.passed
        assert 0 <= row["zeroshot_ref_val"] <= 1 and row["make_run_s"] > 0
    chosen = json.loads((output / "chosen.json").read_text())
    assert chosen["env"] == "test" and (chosen["chosen"] is None) == (not table["passes"].any())
    assert (output / "calibration.png").stat().st_size > 0
    assert "Calibration of the embedded benchmark" in (output / "table.md").read_text()
    assert "calibration" in done.stderr and "config" in done.stderr  # the progress bar over configurations
    # one scratch project (one data setting), scored on val: no test metrics, no fine-tuned model saved
    (project,) = workdir.iterdir()
    metrics = json.loads((project / "data/08_reporting/zeroshot_metrics.json").read_text())
    assert metrics["split"] == "val"
    assert not (project / "reports").exists() and not (project / "data/06_models/finetuned_clip").exists()
