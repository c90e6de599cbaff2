"""Preemption of ranks that ``fit`` spawned itself (``finetune.devices > 1`` on one machine).

A SIGTERM to the whole process group (SLURM, GNU ``timeout``) lets the ranks finish the step and write
the checkpoint; the parent then ends with ``Preempted`` (exit code 75, what a job script requeues on),
naming the checkpoint, instead of dying at once (143) and taking the ranks with it before they wrote
it. A signal to the parent alone is passed on to the ranks; a rank's other failures pass through.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.multiprocessing import ProcessExitedException

from lipsum_ft.training.preemption import (
    PREEMPTED_EXIT_CODE,
    ForwardToChildren,
    Preempted,
    preemption_signals,
    spawned_ranks,
)
from tests.training.rank_helpers import run_in_own_session

REPO = Path(__file__).resolve().parents[2]
WORKER = "tests.training.spawned_preemption_worker"
WORKER_TIMEOUT_S = 120  # a hang (the parent waiting on ranks that never end) fails instead of blocking


def run_worker(at: int, checkpoint: Path, target: str = "group") -> tuple[int, str]:
    """Run the worker in a session of its own (its group signal reaches nothing of pytest's); its exit
    code and output."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", WORKER, str(at), str(checkpoint), target]
    return run_in_own_session(command, REPO, env, WORKER_TIMEOUT_S)


def assert_preempted(code: int, output: str, message: str) -> None:
    """The worker exited 75 and printed one ``Preempted`` message, matching the pattern ``message``."""
    assert code == PREEMPTED_EXIT_CODE, output[-6000:]
    messages = re.findall(r"^PREEMPTED (.*)$", output, re.M)
    assert len(messages) == 1 and re.fullmatch(message, messages[0]), output[-6000:]


def written_message(checkpoint) -> str:
    """The parent's message (a pattern) when the ranks stopped after a step and wrote ``checkpoint``."""
    return (
        r"the 2 spawned ranks were preempted \(rank [01] exited with code 75; the ranks logged the signal "
        rf"and the step\); checkpoint {re.escape(str(checkpoint))} written; run again with "
        r"finetune.resume=auto to continue"
    )


@pytest.mark.slow
def test_a_group_signalled_during_spawned_ranks_writes_the_checkpoint_and_exits_75(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    code, output = run_worker(at=2, checkpoint=checkpoint)  # signalled while step 3 is drawn
    assert_preempted(code, output, written_message(checkpoint))
    assert f"preempted by signal {int(signal.SIGTERM)} after step 3 of 6" in output  # the ranks' own words
    assert torch.load(checkpoint, weights_only=True)["step"] == 3  # the step in flight was finished


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_both_after_the_same_step_and_each_says_why(tmp_path):
    """Rank 1 alone is signalled while step 3 is drawn: the vote stops rank 0 after the same step, and
    each rank says what stopped it."""
    checkpoint = tmp_path / "ckpt.pt"
    code, output = run_worker(at=2, checkpoint=checkpoint, target="rank1")
    assert_preempted(code, output, written_message(checkpoint))
    assert f"preempted by signal {int(signal.SIGTERM)} after step 3 of 6" in output  # rank 1
    assert "preempted: another rank was signalled after step 3 of 6" in output  # rank 0, by the vote
    assert torch.load(checkpoint, weights_only=True)["step"] == 3


@pytest.mark.slow
def test_a_group_signalled_while_spawned_ranks_start_exits_75_and_writes_nothing(tmp_path):
    """The signal comes before the ranks could catch it (they end by it, -15): still a preemption, not
    a crash, so that a job script requeues it; no step was trained, so no checkpoint is claimed."""
    checkpoint = tmp_path / "ckpt.pt"
    code, output = run_worker(at=2, checkpoint=checkpoint, target="starting")
    assert "SIGNALLED while the ranks were starting" in output, output[-6000:]
    assert_preempted(
        code,
        output,
        r"the 2 spawned ranks were preempted while starting \(rank [01] ended by SIGTERM before it could "
        r"catch it; no step of this start was trained and nothing was written\); run again with "
        rf"finetune.resume=auto to continue from {re.escape(str(checkpoint))} if an earlier start wrote it",
    )
    assert "preempted by signal" not in output  # no rank got as far as catching it
    assert not checkpoint.exists()


def test_a_rank_ended_by_the_signal_its_parent_received_is_a_preemption():
    ended = ProcessExitedException("process 1 terminated with signal SIGUSR1", 1, 4242, -10, "SIGUSR1")
    with pytest.raises(Preempted) as caught, spawned_ranks(2, None):
        os.kill(os.getpid(), signal.SIGUSR1)  # the parent's handler passes it on (no children here)
        raise ended
    assert caught.value.code == PREEMPTED_EXIT_CODE and caught.value.__cause__ is ended
    assert str(caught.value) == (
        "the 2 spawned ranks were preempted while starting (rank 1 ended by SIGUSR1 before it could catch "
        "it; no step of this start was trained and nothing was written); no checkpoint path: run again, "
        "this run starts from its first step"
    )


@pytest.mark.parametrize(
    ("received", "exit_code", "name"),
    [
        (None, -15, "SIGTERM"),  # a rank killed by someone else, the parent never signalled: a crash
        (signal.SIGTERM, -9, "SIGKILL"),  # signalled, but the rank was killed otherwise (OOM killer)
        (signal.SIGUSR1, -15, "SIGTERM"),  # signalled with one signal, the rank ended by another
    ],
)
def test_a_rank_ended_by_another_signal_than_the_parents_passes_through(received, exit_code, name):
    ended = ProcessExitedException(f"process 0 terminated with signal {name}", 0, 4242, exit_code, name)
    with pytest.raises(ProcessExitedException) as caught, spawned_ranks(2, None):
        if received is not None:
            os.kill(os.getpid(), received)
        raise ended
    assert caught.value is ended


def test_a_signal_to_the_spawning_parent_alone_reaches_its_children():
    child = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    child.start()
    previous = signal.getsignal(signal.SIGTERM)
    with preemption_signals(ForwardToChildren) as flag:
        os.kill(os.getpid(), signal.SIGTERM)
        child.join(timeout=30)
    assert flag.signal == signal.SIGTERM  # the parent itself goes on
    assert child.exitcode == -signal.SIGTERM, child.exitcode  # the child got it (no handler: it ended)
    assert signal.getsignal(signal.SIGTERM) == previous


def test_a_rank_exiting_75_ends_the_parent_with_preempted_naming_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    exited = ProcessExitedException("process 1 terminated with exit code 75", 1, 4242, PREEMPTED_EXIT_CODE)
    with pytest.raises(Preempted) as caught, spawned_ranks(2, checkpoint):
        raise exited
    assert caught.value.code == PREEMPTED_EXIT_CODE and caught.value.__cause__ is exited
    assert str(caught.value) == (
        "the 2 spawned ranks were preempted (rank 1 exited with code 75; the ranks logged the signal and "
        f"the step); checkpoint {checkpoint} written; run again with finetune.resume=auto to continue"
    )


def test_a_rank_failing_otherwise_passes_through_unchanged():
    killed = ProcessExitedException("process 0 terminated with signal SIGKILL", 0, 4242, -9, "SIGKILL")
    with pytest.raises(ProcessExitedException) as caught, spawned_ranks(2, None):
        raise killed
    assert caught.value is killed
