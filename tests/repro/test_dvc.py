"""`dvc repro` on a temporary git repository with conf/test-sized settings in conf/base.

Proves the three promises of dvc.yaml: the whole chain (and the guidance study) runs, a second repro
does nothing (fast), and changing one fine-tuning parameter re-runs exactly what reads it and what follows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
DVC = [sys.executable, "-m", "dvc"]
pytestmark = pytest.mark.slow


def sh(args: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def small_base(conf: Path) -> None:
    """Fold conf/test into conf/base (the stages run --env=base) so the chain takes about a minute."""
    for test_file in (conf / "test").glob("parameters_*.yml"):
        base_file = conf / "base" / test_file.name
        merged = OmegaConf.merge(OmegaConf.load(base_file), OmegaConf.load(test_file))
        base_file.write_text(OmegaConf.to_yaml(merged))
    study = conf / "base" / "parameters_guidance.yml"  # two short runs are enough to prove the stage
    small = {"guidance_study": {"strategies": ["random_tokens", "fixed_pool"], "seeds": [0], "baselines": []}}
    study.write_text(OmegaConf.to_yaml(OmegaConf.merge(OmegaConf.load(study), small)))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dvc") / "lipsum-ft"
    root.mkdir()
    for name in ("pyproject.toml", "dvc.yaml", ".dvcignore", ".gitignore", ".telemetry"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / ".venv").symlink_to(Path(sys.executable).parents[1])
    small_base(root / "conf")
    sh(["git", "init", "-q"], root)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], root)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)
    sh(DVC + ["init", "-q"], root)
    return root


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_repro_runs_the_chain_then_does_nothing_then_reruns_only_downstream_of_a_change(repo):
    first = sh(DVC + ["repro"], repo)
    assert stages_run(first) == {
        "data",
        "pretrain",
        "zeroshot",
        "finetune",
        "posthoc",
        "evaluate",
        "guidance",
    }
    assert (repo / "dvc.lock").is_file() and (repo / "reports/metrics.json").is_file()

    started = time.perf_counter()
    second = sh(DVC + ["repro"], repo)
    assert stages_run(second) == set()
    assert time.perf_counter() - started < 10

    params_file = repo / "conf/base/parameters_finetune.yml"
    params = yaml.safe_load(params_file.read_text())
    params["finetune"]["lipsum"]["lambda"] = 0.5
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(sh(DVC + ["status", "--json"], repo))
    assert set(status) == {
        "finetune",
        "guidance",
    }  # only the stages that read the key are dirty before they rerun
    third = sh(DVC + ["repro"], repo)
    assert stages_run(third) == {"finetune", "posthoc", "evaluate", "guidance"}


def test_metrics_and_plots_read_the_reports(repo):
    if not (repo / "dvc.lock").exists():
        sh(DVC + ["repro"], repo)
    metrics = json.loads(sh(DVC + ["metrics", "show", "--json"], repo))
    flat = json.dumps(metrics)
    assert "lipsum.test.sketch.acc" in flat and "zeroshot" in flat and "fixed_pool.shift_acc_mean" in flat
    out = sh(DVC + ["plots", "show", "--out", str(repo / "plots_html")], repo)
    assert (repo / "plots_html" / "index.html").is_file(), out
