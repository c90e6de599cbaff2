"""Preemption: SIGTERM or SIGUSR1 (what SLURM sends before it kills or requeues a job) stops the loop
after the current step, once a checkpoint is written, with exit code ``PREEMPTED_EXIT_CODE``.

With several ranks, a signal may reach only some of them; ``stop_vote`` lets all ranks agree on it
each step, on the host, so that asking never waits for the GPU. Ranks that ``fit`` spawned itself
have a parent that waits for them: ``spawned_ranks`` keeps it alive through the signal and ends it
with ``Preempted`` too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.multiprocessing import ProcessExitedException

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later"; a job script requeues on it
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
log = logging.getLogger(__name__)


class Preempted(SystemExit):
    """The run stopped on a preemption signal after writing its checkpoint; exits with code 75.

    A ``SystemExit`` so that it passes through Kedro's runner and the CLI as the process's exit code.
    """

    def __init__(self, message: str):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PreemptionFlag:
    """Set by the handler; the loop reads it once per step (a plain attribute, no system call)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, number, frame) -> None:
        self.signal = number


class ForwardToChildren(PreemptionFlag):
    """A spawning parent's flag: it passes the signal on to its child processes (the ranks), so that a
    signal sent to the parent alone stops them as one sent to its whole process group does."""

    def _handle(self, number, frame) -> None:
        super()._handle(number, frame)
        for child in multiprocessing.active_children():
            with suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(child.pid, number)


def resume_advice(checkpoint: Path | str | None) -> str:
    """How a preempted run goes on: from its checkpoint, or from its first step when it has none."""
    if checkpoint:
        return f"checkpoint {checkpoint} written; run again with finetune.resume=auto to continue"
    return "no checkpoint path: run again, this run starts from its first step"


def restart_advice(checkpoint: Path | str | None) -> str:
    """How a run preempted before its first step goes on: as it would have, from an earlier checkpoint."""
    if checkpoint:
        return (
            f"run again with finetune.resume=auto to continue from {checkpoint} if an earlier start wrote it"
        )
    return resume_advice(None)


@contextmanager
def preemption_signals(flag_type: type[PreemptionFlag] = PreemptionFlag) -> Iterator[PreemptionFlag]:
    """Catch SIGTERM/SIGUSR1 for the duration of the block (main thread only; elsewhere a no-op flag)."""
    flag = flag_type()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {number: signal.signal(number, flag._handle) for number in PREEMPTION_SIGNALS}
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def spawned_ranks(count: int, checkpoint: Path | str | None) -> Iterator[None]:
    """The spawning parent's side of a preemption, around the launch of its ``count`` ranks.

    A signal to the whole process group (SLURM, GNU ``timeout``) would kill the parent at once, and
    torch's launcher then the ranks, before they wrote the checkpoint: here the parent passes it on
    and keeps waiting while they finish the step and save. A rank's exit with ``PREEMPTED_EXIT_CODE``
    reaches the parent as torch's ``ProcessExitedException``; it becomes ``Preempted``, so that the
    parent exits with that code too and a grid of runs knows it was preempted. So does a rank ended by
    the very signal the parent received: it came while the rank was still starting, before it could
    catch it, and no step of this start was trained.
    """
    with preemption_signals(ForwardToChildren) as flag:
        try:
            yield
        except ProcessExitedException as error:
            if error.exit_code == PREEMPTED_EXIT_CODE:
                message = (
                    f"the {count} spawned ranks were preempted (rank {error.error_index} exited with code "
                    f"{PREEMPTED_EXIT_CODE}; the ranks logged the signal and the step); "
                    f"{resume_advice(checkpoint)}"
                )
            elif flag.requested and error.exit_code == -flag.signal:
                message = (
                    f"the {count} spawned ranks were preempted while starting (rank {error.error_index} "
                    f"ended by {error.signal_name} before it could catch it; no step of this start was "
                    f"trained and nothing was written); {restart_advice(checkpoint)}"
                )
            else:
                raise
            log.warning(message)
            raise Preempted(message) from error


class StopVote:
    """Whether any rank was signalled, the same answer on every rank (ranks must stop at one step).

    The flag is all-reduced on the host over a gloo group: reduced over NCCL it would live on the GPU,
    and reading it back would wait for all of the step's queued work, a host sync every step.
    """

    def __init__(self, group: dist.ProcessGroup | None):
        self.group = group  # None: this process trains alone

    def any(self, preemption: PreemptionFlag) -> bool:
        if self.group is None:
            return preemption.requested
        flag = torch.tensor(float(preemption.requested))  # on the host, whatever the training device
        dist.all_reduce(flag, group=self.group)
        return bool(flag.item() > 0)


@contextmanager
def stop_vote(timeout: timedelta) -> Iterator[StopVote]:
    """The vote of this process's ranks: none when it trains alone, else over a gloo group made for it
    beside the default one (NCCL on GPUs; on CPUs too, so that one path runs everywhere), released at
    the end. Collective: every rank enters it together. A vote waits ``timeout`` for the other ranks,
    as the default group does."""
    if not dist.is_initialized():
        yield StopVote(None)
        return
    group = dist.new_group(backend="gloo", timeout=timeout)
    try:
        yield StopVote(group)
    finally:
        dist.destroy_process_group(group)
