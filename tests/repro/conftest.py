"""One `dvc repro` of the embedded benchmark at conf/test sizes, shared by the DVC tests: each test
module works on its own copy, so none pays for the chain again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.repro.dvc_helpers import DVC, fresh_project, sh


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> tuple[Path, str]:
    """A committed fresh project after its first `dvc repro`, and what that repro printed."""
    root = fresh_project(tmp_path_factory.mktemp("reproduced") / "lipsum-ft")
    started = time.perf_counter()
    output = sh(DVC + ["repro"], root)
    print(f"dvc repro (embedded benchmark, conf/test sizes): {time.perf_counter() - started:.1f} s")
    return root, output
