"""benchmarks/device_wheels.py picks the wheels a registry-less GPU machine needs: the project's runtime
closure as installed here, without what the image has, the torch stack, Kedro-Viz or the dev extra."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.script_loader import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def script(monkeypatch):
    return load_script(monkeypatch, REPO / "benchmarks/device_wheels.py")


def test_the_closure_holds_what_the_pipelines_import_and_leaves_out_viewer_and_dev_tools(script):
    closure = script.runtime_closure("lipsum-ft", script.LEFT_OUT)
    # direct requirements, a dependency two levels down (dvclive -> dvc -> dvc-data), and packages that
    # only an extra brings in (torch -> cuda-toolkit[curand] -> nvidia-curand)
    assert {"kedro", "open-clip-torch", "great-expectations", "dvclive", "dvc-data"} <= set(closure)
    assert "nvidia-curand" in closure
    assert "kedro-viz" not in closure and "fastapi" not in closure  # fastapi: only Kedro-Viz wants it
    assert "pytest" not in closure and "ruff" not in closure  # the 'dev' extra is not walked
    assert "lipsum-ft" not in closure
    assert closure["kedro"] == script.metadata.version("kedro")  # the versions installed here


def test_image_packages_read_one_canonical_name_per_line(script, tmp_path):
    listing = tmp_path / "image.txt"
    listing.write_text("# the image\nPyYAML\nruamel.yaml  # a comment\n\ntyping_extensions\n")
    assert script.image_packages(listing) == {"pyyaml", "ruamel-yaml", "typing-extensions"}
    committed = script.image_packages(REPO / "benchmarks/device_image_packages.txt")
    assert {"torch", "numpy", "pandas", "pytest"} <= committed and "kedro" not in committed
