"""Shared fixtures: small real dataset trees and an isolated copy of the Kedro project."""

from __future__ import annotations

import os
import shutil
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
def chain(tmp_path_factory) -> Path:
    """A project folder after ``kedro run --env=test``
    (data -> pretrain -> zeroshot -> finetune -> posthoc -> evaluate).
    """
    from tests.kedro_helpers import copy_project, run_in

    project = copy_project(tmp_path_factory.mktemp("chain") / "project")
    run_in(project)
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
