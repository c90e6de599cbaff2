"""Helpers to run the Kedro project for real in a throw-away copy of its configuration."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

REPO = Path(__file__).resolve().parents[1]


def copy_project(target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(REPO / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()
    (target / "src").mkdir()
    return target


ZEROSHOT_INPUTS = (  # what finetune reads: the data, the zero-shot model and its head
    "data/01_raw",
    "data/02_intermediate",
    "data/06_models/pretrained_clip",
    "data/06_models/zeroshot_head.safetensors",
)


def linked_after_zeroshot(chain: Path, target: Path) -> Path:
    """A fresh project whose data and zero-shot model are links to ``chain``'s: a run from finetune on
    writes only into ``target``, without paying for data and pretraining again."""
    project = copy_project(target)
    for relative in ZEROSHOT_INPUTS:
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).symlink_to(chain / relative)
    return project


def run_in(project: Path, pipelines: list[str] | None = None, env: str = "test", **runtime_params):
    """``kedro run --env=<env>`` inside ``project`` (relative catalog paths resolve there)."""
    previous = os.getcwd()
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(
            project_path=project, env=env, runtime_params=runtime_params or None
        ) as session:
            return session.run(pipeline_names=pipelines)
    finally:
        os.chdir(previous)
