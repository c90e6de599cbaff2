"""One real run of the whole chain on ``conf/test``, shared by the pipeline tests of this folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

REPO = Path(__file__).resolve().parents[2]


def copy_project(target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(REPO / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()
    (target / "src").mkdir()
    return target


def run_in(project: Path, pipelines: list[str] | None = None, **runtime_params):
    """``kedro run --env=test`` inside ``project`` (relative catalog paths resolve there)."""
    previous = os.getcwd()
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env="test", runtime_params=runtime_params or None) as session:
            return session.run(pipeline_names=pipelines)
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def chain(tmp_path_factory) -> Path:
    """A project folder after ``kedro run --env=test`` (data -> pretrain -> zeroshot -> finetune -> posthoc -> evaluate)."""
    project = copy_project(tmp_path_factory.mktemp("chain") / "project")
    run_in(project)
    return project
