"""Load a script of ``benchmarks/`` as a module, as running it does: the benchmark tests share this."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def load_script(monkeypatch: pytest.MonkeyPatch, script: Path) -> ModuleType:
    """``script`` imported under its stem, with its folder first on sys.path (its helpers sit beside it)
    and the module in sys.modules (its dataclasses look it up there); both undone after the test."""
    monkeypatch.syspath_prepend(str(script.parent))
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, script.stem, module)
    spec.loader.exec_module(module)
    return module
