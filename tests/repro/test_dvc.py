"""`dvc repro` on a temporary git repository with conf/test-sized settings in conf/base.

Proves the three promises of dvc.yaml: the whole chain (and the guidance study) runs, a second repro
does nothing (fast), and changing a parameter re-runs exactly what reads it and what follows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.repro.dvc_helpers import DVC, copy_project, sh, stages_run
from tests.scratch import scratch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(reproduced, request, tmp_path_factory) -> Iterator[Path]:
    with scratch(request, tmp_path_factory, "dvc") as folder:
        yield copy_project(reproduced[0], folder / "lipsum-ft")


def test_repro_runs_the_chain_then_does_nothing_then_reruns_only_downstream_of_a_change(reproduced, repo):
    first = reproduced[1]  # the first `dvc repro` of the committed project
    assert stages_run(first) == {
        "data",
        "pretrain",
        "zeroshot",
        "finetune",
        "posthoc",
        "evaluate",
        "guidance",
        "ablation",
        "ablation_report",
    }
    assert (repo / "dvc.lock").is_file() and (repo / "reports/metrics.json").is_file()

    started = time.perf_counter()
    second = sh(DVC + ["repro"], repo)
    assert stages_run(second) == set()
    assert time.perf_counter() - started < 10

    report = repo / "conf/base/parameters_ablation.yml"  # the analysis alone: no study run is repeated
    params = yaml.safe_load(report.read_text())
    params["ablation"]["tolerance"] = 0.02
    report.write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(sh(DVC + ["repro"], repo)) == {"ablation_report"}

    params_file = repo / "conf/base/parameters_finetune.yml"
    params = yaml.safe_load(params_file.read_text())
    params["finetune"]["lipsum"]["lambda"] = 0.5
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(sh(DVC + ["status", "--json", "dvc.yaml"], repo))
    assert set(status) == {
        "finetune",
        "guidance",
        "ablation",
        "ablation_report",
    }  # only the stages that read the key are dirty before they rerun
    # What follows a stage reruns once its outputs changed: `finetune` runs for real, and a dry repro
    # (which stops at stages whose inputs only would change) names the rest. Every stage runs for real in
    # the fixture's repro, and tests/repro/test_dvc_experiments.py reruns finetune -> evaluate.
    assert stages_run(sh(DVC + ["repro", "finetune"], repo)) == {"finetune"}
    after = sh(DVC + ["repro", "--dry"], repo)
    assert stages_run(after) == {"posthoc", "evaluate", "guidance", "ablation", "ablation_report"}


def test_metrics_and_plots_read_the_reports(repo):
    # the JSON is the first line
    metrics = json.loads(sh(DVC + ["metrics", "show", "--json"], repo).splitlines()[0])
    flat = json.dumps(metrics)
    assert "reports/headline.json" in flat and "wise-lipsum" in flat and "fixed_pool.shift_acc_mean" in flat
    assert "front.target_met" in flat and "lipsum-seed0" in flat  # the studies' metrics, a training summary
    assert "lipsum.test.sketch.acc" not in flat  # the full table is an output, not a metric
    out = sh(DVC + ["plots", "show", "--out", str(repo / "plots_html")], repo)
    assert (repo / "plots_html" / "index.html").is_file(), out


def test_bare_dvc_commands_at_the_top_speak_only_of_the_benchmark(repo):
    """envs/domainnet is a DVC project of its own, which the top level skips: none of its stages, paths
    or never-built outputs (formerly "DVC failed to load some metrics") in a bare command's output."""
    assert (repo / "envs/domainnet/dvc.yaml").is_file() and (repo / "envs/domainnet/.dvc").is_dir()
    for command in (["status"], ["metrics", "show"], ["plots", "show", "--json"]):
        said = sh(DVC + command, repo)
        assert "domainnet" not in said and "failed to load" not in said.lower(), (
            f"dvc {command}:\n{said[-3000:]}"
        )
