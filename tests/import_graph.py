"""The modules a source file imports, read with ``ast`` (no import side effects): the one reader of
the import graph for the layer rules (``test_layers.py``) and the DVC deps (``repro/test_dvc_deps.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top level or inside functions; ``from pkg import name``
    counts both ``pkg`` and ``pkg.name`` (``name`` may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names
