"""A rank that dies or hangs under torchrun (two processes, gloo on CPU, ``conf/test``).

With ``--max-restarts=1`` torchrun restarts the group after a rank is killed, ``resume=auto``
continues from the checkpoints, the log says what was resumed, and the weights equal an
uninterrupted run's. Without restarts the job ends soon after the fault, never hangs: torchrun names
the killed rank, and a rank waiting on a hung one gives up after ``finetune.process_group_timeout_s``
with an error naming itself and the step.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.kedro_helpers import run_in
from tests.training.rank_helpers import RECIPE, free_port, node_copy, run_in_own_session, weights

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKER = Path(__file__).with_name("rank_fault_worker.py")
AGENT_GRACE_S = 30  # torchrun's wait between SIGTERM and SIGKILL when it stops a worker group


def torchrun(project: Path, fault: str, max_restarts: int, **params) -> tuple[int, str, float]:
    """Two ranks of ``kedro run --pipeline=finetune --env=test``; rank 1 meets ``fault`` right after
    lipsum's step-4 checkpoint. Returns the exit code, the output and when the fault happened."""
    settings = {"resume": "auto", "devices": 2, **RECIPE, **params}
    command = [
        str(BIN / "torchrun"),
        "--nnodes=1",
        "--nproc-per-node=2",
        f"--max-restarts={max_restarts}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{free_port()}",
        "--monitor-interval=1",
        str(WORKER),
        *(fault, "1", "lipsum", "4"),
        "--",
        *("run", "--pipeline=finetune", "--env=test"),
        "--params=" + ",".join(f"finetune.{k}={v}" for k, v in settings.items()),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    env["COLUMNS"] = "400"  # Kedro's rich console would wrap the messages the tests look for
    code, output = run_in_own_session(command, project, env, timeout_s=900)
    faults = re.findall(r"^FAULT \w+ rank 1 after the step-4 checkpoint of lipsum at ([\d.]+)$", output, re.M)
    assert len(faults) == 1, output[-6000:]
    return code, output, float(faults[0])


def test_a_killed_rank_is_restarted_by_torchrun_and_the_run_resumes_to_the_same_weights(chain, tmp_path):
    one = node_copy(chain, tmp_path / "one")
    run_in(one, pipelines=["finetune"], finetune=RECIPE)  # uninterrupted, one process
    project = node_copy(chain, tmp_path / "restarted")
    code, output, _ = torchrun(project, "kill", max_restarts=1)
    assert code == 0, output[-6000:]
    checkpoints = "data/06_models/checkpoints"
    assert f"resuming lipsum from {checkpoints}/lipsum-seed0.pt at step 4 of 8" in output
    assert f"resuming ft from {checkpoints}/ft-seed0.pt at step 8 of 8" in output  # done before the kill
    single, restarted = weights(one), weights(project)
    assert single.keys() == restarted.keys()
    for key in single:
        torch.testing.assert_close(restarted[key], single[key], rtol=1e-5, atol=1e-6)


def test_without_restarts_a_killed_rank_ends_the_job_soon_and_torchrun_names_it(chain, tmp_path):
    code, output, fault_at = torchrun(node_copy(chain, tmp_path / "project"), "kill", max_restarts=0)
    ended_after = time.time() - fault_at
    assert code != 0
    assert re.search(r"rank\s*: 1 \(local_rank: 1\)\s+exitcode\s*: -9", output), output[-6000:]
    assert "Signal 9 (SIGKILL)" in output
    assert ended_after < AGENT_GRACE_S + 30, ended_after


def test_without_restarts_a_hung_rank_makes_the_others_fail_after_the_process_group_timeout(chain, tmp_path):
    timeout_s = 20
    code, output, fault_at = torchrun(
        node_copy(chain, tmp_path / "project"), "stop", max_restarts=0, process_group_timeout_s=timeout_s
    )
    ended_after = time.time() - fault_at
    assert code != 0
    message = re.search(
        r"rank 0 of 2 stopped at step 5 of 8: a collective with the other ranks failed or "
        r"timed out \((.*?)\)\. Another rank died or stopped responding",
        output,
    )
    assert message, output[-6000:]
    assert f"{timeout_s * 1000}ms" in message.group(1)  # gloo waited exactly the configured timeout
    assert f"finetune.process_group_timeout_s={timeout_s} s" in output
    assert "last good checkpoint: data/06_models/checkpoints/lipsum-seed0.pt (step 4)" in output
    assert timeout_s <= ended_after < timeout_s + AGENT_GRACE_S + 30, ended_after
