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
    assert set(script.image_pins(listing)) == {"pyyaml", "ruamel-yaml", "typing-extensions"}
    committed = set(script.image_pins(REPO / "benchmarks/device_image_packages.txt"))
    assert {"torch", "numpy", "pandas", "pytest"} <= committed and "kedro" not in committed


def test_image_pins_read_versions_where_the_listing_gives_them(script, tmp_path):
    listing = tmp_path / "image.txt"
    listing.write_text("Torch==2.11.0  # the image's own build\nPyYAML\nhuggingface_hub==1.33.0\n")
    assert script.image_pins(listing) == {"torch": "2.11.0", "pyyaml": None, "huggingface-hub": "1.33.0"}
    assert set(script.image_pins(listing)) == {"torch", "pyyaml", "huggingface-hub"}
    committed = script.image_pins(REPO / "benchmarks/device_image_packages.txt")
    assert committed["torch"] == "2.11.0" and committed["torchvision"] == "0.26.0"


def test_the_rehearsal_stands_in_for_the_image_with_its_versions_and_nothing_it_lacks(script):
    closure = {"kedro": "1.7.0", "torch": "2.14.1", "pandas": "2.3.3", "nvidia-curand": "10.4", "yarl": "1.9"}
    pins = {"torch": "2.11.0", "pandas": None, "nvidia-curand": "10.3", "pytest": None, "jax": "0.11.2"}
    assert script.rehearsal_requirements(closure, pins) == ["pandas", "pytest", "torch==2.11.0"]
    # the image's torch, not the project's pin; kedro and yarl come as wheels; jax is not needed;
    # pytest is what the check runs; torch's CUDA libraries come with torch
