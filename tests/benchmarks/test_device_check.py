"""benchmarks/device_check.sh, the one prepared command of a lent GPU machine: what it runs, in which
order, with which budgets, and which exit status it gives. A stand-in ``python3`` first on PATH logs
each call and answers as told, so the script's own logic runs here in seconds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$FAKE_LOG"
case "$1" in
    -) cat > /dev/null; echo "python 3.12.3 torch 2.11.0+cu130" ;;
    -c) echo h100 ;;
    -m) [ "$2" = pytest ] && exit "${FAKE_PYTEST_RC:-0}"
        while [ $# -gt 0 ]; do [ "$1" = --target ] && mkdir -p "$2"; shift; done ;;  # pip install
    benchmarks/gpu_chain.py) sleep "${FAKE_CHAIN_S:-0}"; exit "${FAKE_CHAIN_RC:-0}" ;;
    benchmarks/gpu_step.py) exit "${FAKE_STEP_RC:-0}" ;;
    benchmarks/eval_held.py) exit "${FAKE_HELD_RC:-0}" ;;
esac
"""


@pytest.fixture
def check(tmp_path):
    """Run the script in a copy of its folder layout, with the stand-in python3; (rc, calls, out)."""
    project = tmp_path / "project"
    (project / "benchmarks").mkdir(parents=True)
    shutil.copy(REPO / "benchmarks/device_check.sh", project / "benchmarks/device_check.sh")
    (project / ".device/wheels").mkdir(parents=True)
    (project / ".device/wheels/kedro-1.7.0-py3-none-any.whl").touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(FAKE_PYTHON)
    (bin_dir / "python3").chmod(0o755)
    out, log = tmp_path / "out", tmp_path / "calls.log"

    def run(mode: str, **env: str) -> tuple[int, list[str], Path]:
        log.write_text("")
        environment = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "OUT": str(out),
            "FAKE_LOG": str(log),
            **env,
        }
        done = subprocess.run(
            ["bash", str(project / "benchmarks/device_check.sh"), mode],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode, log.read_text().splitlines(), out

    return run


def budget_of(call: str) -> int:
    return int(re.search(r"--budget-s (-?\d+)", call).group(1))


def test_all_runs_the_chain_first_then_the_tests_and_the_step_in_what_is_left(check):
    rc, calls, out = check("all", BUDGET_S="500", STEP_RESERVE_S="150")
    assert rc == 0
    assert calls[0].startswith("-m pip install --quiet --no-index --no-deps --target .device-site")
    scripts = [c for c in calls if c.startswith(("benchmarks/", "-m pytest"))]
    assert [c.split()[0] if c.startswith("b") else c.split()[1] for c in scripts] == [
        "benchmarks/gpu_chain.py",
        "pytest",
        "benchmarks/gpu_step.py",
    ]
    chain, tests, step = scripts
    assert chain.startswith(f"benchmarks/gpu_chain.py --device cuda --output {out}/gpu_chain_h100.json")
    assert 348 <= budget_of(chain) <= 350  # 500 - 150 for the step, less the seconds already spent
    assert tests.endswith("tests/training/test_host_sync.py tests/clip/test_inference.py")
    assert step.startswith(f"benchmarks/gpu_step.py --compile --output {out}/gpu_step_h100.json")
    assert 498 <= budget_of(step) <= 500
    assert (out / "environment_h100.txt").read_text() == "python 3.12.3 torch 2.11.0+cu130\n"
    assert (out / "pytest_h100.txt").is_file()


def test_the_wheels_are_installed_once_per_machine(check):
    check("chain")
    rc, calls, _ = check("chain")
    assert rc == 0 and not [c for c in calls if "pip install" in c]


def test_a_failure_anywhere_is_the_exit_status_and_does_not_stop_what_follows(check):
    rc, calls, _ = check("all", FAKE_CHAIN_RC="3")
    assert rc == 3 and any(c.startswith("benchmarks/gpu_step.py") for c in calls)
    assert check("all", FAKE_STEP_RC="4")[0] == 4  # passing tests do not hide a failed benchmark
    rc, calls, _ = check("all", FAKE_PYTEST_RC="1")
    assert rc == 1 and any(c.startswith("benchmarks/gpu_step.py") for c in calls)  # the benchmark still runs


def test_all_skips_the_step_and_says_so_when_the_chain_leaves_under_a_minute(check):
    rc, calls, out = check("all", BUDGET_S="61", FAKE_CHAIN_S="2.1")
    assert rc == 0
    assert [c.split()[0] for c in calls if c.startswith("benchmarks/")] == ["benchmarks/gpu_chain.py"]
    assert not [c for c in calls if c.startswith("-m pytest")]
    assert re.fullmatch(
        r"step skipped: 5[89] s of BUDGET_S=61 left after the chain\n", (out / "step_skipped.txt").read_text()
    )


def test_on_a_cpu_it_runs_the_tiny_sizes_and_names_the_files_cpu(check):
    rc, calls, out = check("step", DEVICE="cpu")
    assert rc == 0 and not [c for c in calls if c.startswith("-c")]  # no GPU name asked for
    (step,) = [c for c in calls if c.startswith("benchmarks/gpu_step.py")]
    assert step.startswith("benchmarks/gpu_step.py --device cpu --model TinyCLIP-ViT-P8-32 --batch 8")
    assert f"--output {out}/gpu_step_cpu.json" in step
    rc, calls, out = check("chain", DEVICE="cpu")
    assert [c for c in calls if c.startswith("benchmarks/")][0].startswith(
        "benchmarks/gpu_chain.py --device cpu"
    )


def test_held_measures_evaluation_alone_at_the_published_model_and_tiny_on_a_cpu(check):
    rc, calls, out = check("held")
    assert rc == 0
    assert [c for c in calls if c.startswith(("benchmarks/", "-m pytest"))] == [
        "benchmarks/eval_held.py --device cuda --model ViT-B-16 --classes 40 --test-per-class 10 --workers 8 "
        f"--batch 256 --output {out}/eval_held_h100.json"
    ]
    rc, calls, out = check("held", DEVICE="cpu", FAKE_HELD_RC="3")
    (held,) = [c for c in calls if c.startswith("benchmarks/")]
    assert rc == 3 and held.startswith("benchmarks/eval_held.py --device cpu --classes 2")
    assert held.endswith(f"--output {out}/eval_held_cpu.json")


def test_an_unknown_check_is_refused(check):
    rc, calls, _ = check("steps")
    assert rc == 2 and not [c for c in calls if c.startswith("benchmarks/")]
