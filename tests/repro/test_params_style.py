"""The parameter files are written as DVC writes them back, so `dvc exp run -S key=value` changes the
value's line alone (DVC rewrites a file through ruamel: flow lists become block lists, null becomes
empty, quotes go where YAML needs none). Uses DVC's own writer (``apply_overrides``), fast."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "conf" / "base").glob("parameters_*.yml"))


def scalar_leaves(tree, prefix: str = ""):
    """Dotted keys of the numbers and words in ``tree`` (bools left out), depth first, with a new value."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from scalar_leaves(value, dotted + ".")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield dotted, value + 1
        elif isinstance(value, str) and value.isidentifier():
            yield dotted, value + "_changed"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_one_value_set_by_dvc_changes_one_line(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    leaves = list(scalar_leaves(yaml.safe_load(path.read_text())))
    assert leaves, f"{path.name} has no value to set"
    key, value = leaves[-1]
    apply_overrides(copy, [f"{key}={value}"])
    changed = [
        line
        for line in difflib.unified_diff(path.read_text().splitlines(), copy.read_text().splitlines(), n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert len(changed) == 2, f"{path.name}: setting {key} rewrote more than its line:\n" + "\n".join(changed)
