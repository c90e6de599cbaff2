"""Shared fixtures: small real dataset trees, the project's chain run once (by `dvc repro`), and an
isolated copy of the Kedro project."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DVC_STUDIO_OFFLINE", "1")  # DVCLive never posts live metrics to Studio
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def digit_tree(tmp_path: Path):
    """A small real DigitDomains tree (two domains, 70 digits: every class in every split), and its layout."""
    from lipsum_ft.data.layout import FolderLayout
    from lipsum_ft.digit_domains import DigitDomainsConfig, write_digit_domains

    root = tmp_path / "digits"
    write_digit_domains(
        DigitDomainsConfig(
            root=root,
            domains=("photo", "sketch"),
            split_fractions={"train": 0.5, "test": 0.5},
            max_digits=70,
        ),
        progress=False,
    )
    return FolderLayout(root=root, domains=("photo", "sketch"), splits=("train", "test"))


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> tuple[Path, str]:
    """A committed fresh project after its first `dvc repro` at conf/test sizes, and what that repro
    printed. DVC tests work on copies of it; ``chain`` takes its pipelines' outputs from it."""
    from tests.repro.dvc_helpers import DVC, fresh_project, sh

    root = fresh_project(tmp_path_factory.mktemp("reproduced") / "lipsum-ft")
    started = time.perf_counter()
    output = sh(DVC + ["repro"], root)
    print(f"dvc repro (embedded benchmark, conf/test sizes): {time.perf_counter() - started:.1f} s")
    return root, output


# What the reproduced project holds beside the outputs of `kedro run`: its code, configuration and
# environment (the chain takes the checkout's own, through copy_project), git's and DVC's files (at any
# depth: DVC writes a .gitignore beside its outputs).
PROJECT_FILES = shutil.ignore_patterns(
    ".git", ".dvc", ".venv", ".dvcignore", ".gitignore", ".telemetry", "dvc.yaml", "dvc.lock",
    "pyproject.toml", "src", "conf", "envs",
)  # fmt: skip


@pytest.fixture(scope="session")
def chain(reproduced, tmp_path_factory) -> Path:
    """A project folder as ``kedro run --env=test`` leaves it
    (data -> pretrain -> zeroshot -> finetune -> posthoc -> evaluate).

    `dvc repro` at conf/test sizes has run those six pipelines with the same parameters (conf/test folded
    into conf/base; tests/repro/test_dvc_stages.py holds dvc.yaml to kedro's chain), so the suite runs the
    chain once: this copies their outputs beside the checkout's conf/ and drops what the studies wrote.
    """
    import yaml

    from lipsum_ft.pipeline_registry import CHAIN
    from tests.kedro_helpers import copy_project

    root, _ = reproduced
    project = copy_project(tmp_path_factory.mktemp("chain") / "project")
    shutil.copytree(root, project, ignore=PROJECT_FILES, dirs_exist_ok=True, symlinks=True)
    for name, stage in yaml.safe_load((root / "dvc.yaml").read_text())["stages"].items():
        if name not in CHAIN:  # each stage is named after its pipeline (test_dvc_stages)
            for out in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
                path = project / (out if isinstance(out, str) else next(iter(out)))
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    return project


@pytest.fixture
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away copy of the project's configuration, run from its own folder so outputs stay there."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(REPO / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()
    monkeypatch.chdir(project)
    return project
