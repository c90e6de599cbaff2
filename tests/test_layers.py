"""The library's layers point down: pipelines only wire the library and never import each other,
benchmarks import the library and no pipeline, the library imports nothing from Kedro, and the
model, training, data and post-hoc layers import nothing from ``io`` (Kedro's datasets).
Read from the source with ``ast`` (no import side effects)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.import_graph import imports_of

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "lipsum_ft"


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_imports_of_reads_function_level_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from lipsum_ft.pipelines.data import nodes\n")
    assert "lipsum_ft.pipelines.data.nodes" in imports_of(probe)


@pytest.mark.parametrize(
    "pipeline",
    sorted(p.name for p in (PACKAGE / "pipelines").iterdir() if p.is_dir() and p.name != "__pycache__"),
)
def test_a_pipeline_imports_no_other_pipeline(pipeline):
    own = f"lipsum_ft.pipelines.{pipeline}"
    foreign = {
        (path.relative_to(REPO).as_posix(), name)
        for path in files_under(PACKAGE / "pipelines" / pipeline)
        for name in imports_of(path)
        if name.startswith("lipsum_ft.pipelines")
        and name != "lipsum_ft.pipelines"
        and not name.startswith(own)
    }
    assert not foreign, f"pipeline {pipeline} imports other pipelines: {sorted(foreign)}"


def test_benchmarks_import_no_pipeline():
    found = {
        (path.name, name)
        for path in files_under(REPO / "benchmarks")
        for name in imports_of(path)
        if name.startswith("lipsum_ft.pipelines")
    }
    assert not found, f"benchmarks import pipeline nodes: {sorted(found)}"


LIBRARY = [p for p in files_under(PACKAGE) if p.relative_to(PACKAGE).parts[0] not in ("pipelines", "io")]
LIBRARY = [
    p
    for p in LIBRARY
    if p.name not in ("__main__.py", "hooks.py", "settings.py", "pipeline_registry.py", "readme.py")
]


def test_the_library_imports_nothing_from_kedro():
    found = {
        (path.relative_to(PACKAGE).as_posix(), name)
        for path in LIBRARY
        for name in imports_of(path)
        if name.split(".")[0] in ("kedro", "kedro_datasets")
    }
    assert LIBRARY and not found, f"library modules import Kedro: {sorted(found)}"


@pytest.mark.parametrize(
    "layer", ["clip", "training", "data", "posthoc", "digit_domains", "evaluation", "studies", "params"]
)
def test_lower_layers_import_nothing_from_io(layer):
    found = {
        (path.relative_to(PACKAGE).as_posix(), name)
        for path in files_under(PACKAGE / layer)
        for name in imports_of(path)
        if name.startswith("lipsum_ft.io")
    }
    assert files_under(PACKAGE / layer) and not found, f"{layer}/ imports io/: {sorted(found)}"


LONGEST_FUNCTION = 70  # lines, decorators and docstring included


def test_no_function_in_the_package_is_longer_than_the_limit():
    """Long bodies hide several jobs in one (the loop's once held seven); split them by job."""
    long = [
        f"{path.relative_to(PACKAGE).as_posix()}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in files_under(PACKAGE)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    assert not long, f"functions over {LONGEST_FUNCTION} lines: {long}"
