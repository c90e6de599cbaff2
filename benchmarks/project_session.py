"""A Kedro session on a project folder, for the benchmark scripts that run or read a project.

Importing this module turns Kedro's, GX's and DVC's telemetry off for the process (scripts are run
directly, not through `make`, which exports the same variables).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

for variable, value in {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(variable, value)


def project_copy(folder: Path, project: Path) -> Path:
    """A project folder of its own: ``project``'s pyproject, telemetry consent and conf (without
    ``local``), an empty ``src`` (Kedro insists on it; the package is installed). Runs write there."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / "pyproject.toml", folder / "pyproject.toml")
    if (project / ".telemetry").is_file():
        shutil.copy(project / ".telemetry", folder / ".telemetry")
    shutil.copytree(project / "conf", folder / "conf", ignore=shutil.ignore_patterns("local"))
    (folder / "conf" / "local").mkdir()
    (folder / "src").mkdir()
    return folder


@contextmanager
def project_session(
    project: Path, env: str = "base", runtime_params: dict[str, Any] | None = None
) -> Iterator:
    """A session of ``project``, with ``project`` as the working directory meanwhile: the catalog's
    paths, and the manifest's image paths, are relative to the project folder."""
    from kedro.framework.session import KedroSession  # after the telemetry variables are set
    from kedro.framework.startup import bootstrap_project

    previous = os.getcwd()
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env, runtime_params=runtime_params) as session:
            yield session
    finally:
        os.chdir(previous)
