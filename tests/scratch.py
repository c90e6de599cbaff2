"""Scratch folders for module-scoped fixtures, removed when the module's tests have all passed.

A whole-project copy weighs 100 MB to 1 GB. Pytest keeps every ``mktemp`` folder until the session
ends, so without this the suite's peak disk use is the sum of all of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def scratch(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A fresh ``factory.mktemp(name)``, deleted on exit unless a test failed meanwhile (kept to debug)."""
    failed_before = request.session.testsfailed
    folder = factory.mktemp(name)
    yield folder
    if request.session.testsfailed == failed_before:
        shutil.rmtree(folder, ignore_errors=True)
