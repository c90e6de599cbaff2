"""The benchmark scripts run (tiny settings on CPU); their figures belong in notes, not in assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_gpu_step_runs_on_cpu_with_a_tiny_batch(tmp_path):
    out = tmp_path / "gpu_step.json"
    command = [
        sys.executable,
        str(REPO / "benchmarks/gpu_step.py"),
        "--device",
        "cpu",
        "--model",
        "TinyCLIP-ViT-P8-32",
        "--batch",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--output",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    for name in ("bare", "ft", "lipsum"):
        assert figures[f"{name}_images_per_s"] > 0
    assert figures["precision"] == "32-true" and figures["gpu"] is None
