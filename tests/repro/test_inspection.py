"""Inspection tools on a real run: the results notebook executes headless, Kedro-Viz builds offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_results_notebook_runs_on_the_test_environment(chain, monkeypatch):
    monkeypatch.setenv("LIPSUM_FT_PROJECT", str(chain))
    monkeypatch.setenv("LIPSUM_FT_ENV", "test")
    notebook = nbformat.read(REPO / "notebooks" / "results.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "notebooks")}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "| lipsum |" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # the WiSE curve and three saved plots


def test_kedro_viz_builds_a_static_site_offline(chain):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "viz", "build", "--include-hooks"],
        cwd=chain,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    api = chain / "build" / "api"
    assert (chain / "build" / "index.html").is_file()
    registered = {p.stem for p in (api / "pipelines").glob("*")}
    assert {
        "data",
        "pretrain",
        "zeroshot",
        "finetune",
        "posthoc",
        "evaluate",
        "guidance",
        "__default__",
    } <= registered
