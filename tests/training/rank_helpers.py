"""What the multi-rank tests share: a free port, a recipe that makes rank counts comparable, a project
copy without fine-tuning outputs (a node that pulled its inputs), and the fine-tuned weights."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import torch
from safetensors.torch import load_file

FINETUNE_OUTPUTS = (
    "data/06_models/finetuned",
    "data/08_reporting/finetune_log.csv",
    "data/06_models/checkpoints",
    "dvclive/finetune",  # the live curves
)
# Adam with a larger eps keeps every update proportional to its gradient, so all-reduce order noise
# cannot flip parameters whose gradient vanishes (as in tests/training/test_training.py's DDP test).
RECIPE = {"eps": 1e-3, "lr": 1e-2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_copy(chain: Path, target: Path) -> Path:
    """The prepared project without any fine-tuning output: a node that pulled the inputs."""
    shutil.copytree(chain, target)
    for relative in FINETUNE_OUTPUTS:
        path = target / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return target


def weights(project: Path) -> dict[str, torch.Tensor]:
    files = sorted((project / "data/06_models/finetuned").rglob("*.safetensors"))
    assert files, f"no fine-tuned weights under {project}"
    return {f"{f.relative_to(project)}:{k}": v for f in files for k, v in load_file(f).items()}


def run_in_own_session(
    command: list[str], cwd: Path, env: dict[str, str], timeout_s: float
) -> tuple[int, str]:
    """Run ``command`` in a session of its own (a signal to its process group reaches nothing of pytest's)
    and return its exit code and output; a run past ``timeout_s`` has its group killed, then fails."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = process.communicate(timeout=timeout_s)[0]
    finally:
        if process.poll() is None:  # a hang: end the group we started, then fail
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return process.returncode, output
