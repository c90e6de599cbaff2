"""dvc.yaml lists, for each stage, every project source file its pipeline imports (directly or not).

A file missing from a stage's deps is a change DVC would not notice: `dvc repro` would call stale
results up to date. The import graph is read from the source (no import side effects).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.import_graph import imports_of

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def module_path(name: str) -> Path | None:
    """The file of module ``name`` inside the project package, if it is one."""
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """``lipsum_ft`` modules ``path`` imports anywhere (top level or inside functions)."""
    return {n for n in imports_of(path) if n.startswith("lipsum_ft")}


def source_closure(module: str) -> set[Path]:
    """Every project file reachable by imports from ``module``; docstring-only ``__init__`` files left out."""
    seen, todo = set(), [module]
    while todo:
        path = module_path(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(imported_modules(path))
    return {p for p in seen if p.name != "__init__.py" or "pipelines" in p.parts or holds_code(p)}


def holds_code(path: Path) -> bool:
    """True when a file has statements beyond its docstring (a package ``__init__`` that re-exports)."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body)


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_cover_every_imported_source_file(stage):
    spec = STAGES[stage]
    pipeline = re.search(r"--pipeline=(\w+)", spec["cmd"]).group(1)
    deps = [d.rstrip("/") for d in spec["deps"]]
    files = source_closure(f"lipsum_ft.pipelines.{pipeline}")
    assert files, f"no sources found for pipeline {pipeline}"
    relative = sorted(p.relative_to(REPO).as_posix() for p in files)
    missing = [f for f in relative if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert not missing, f"dvc.yaml stage {stage!r} does not list these files its pipeline imports: {missing}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_list_no_source_file_the_pipeline_does_not_import(stage):
    """A listed file the pipeline never imports re-runs the stage for nothing when it changes."""
    spec = STAGES[stage]
    pipeline = re.search(r"--pipeline=(\w+)", spec["cmd"]).group(1)
    relative = {p.relative_to(REPO).as_posix() for p in source_closure(f"lipsum_ft.pipelines.{pipeline}")}
    python_deps = [d.rstrip("/") for d in spec["deps"] if d.startswith("src/") and "model_configs" not in d]
    unused = [d for d in python_deps if not any(f == d or f.startswith(d + "/") for f in relative)]
    assert not unused, f"dvc.yaml stage {stage!r} lists sources its pipeline does not import: {unused}"


@pytest.mark.parametrize("pipeline", ["data", "pretrain", "zeroshot"])
def test_stages_before_fine_tuning_do_not_depend_on_its_parameters(pipeline):
    """Adding a fine-tuning parameter must not re-run data, pretraining or the zero-shot head."""
    files = {p.relative_to(SRC).as_posix() for p in source_closure(f"lipsum_ft.pipelines.{pipeline}")}
    assert "lipsum_ft/params/finetune.py" not in files
    assert "lipsum_ft/params/registry.py" not in files
    assert f"lipsum_ft/params/{pipeline}.py" in files  # the closure is read at all
