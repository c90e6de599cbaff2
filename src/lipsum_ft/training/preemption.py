"""Preemption: SIGTERM or SIGUSR1 (what SLURM sends before it kills or requeues a job) stops the loop
after the current step, once a checkpoint is written, with exit code ``PREEMPTED_EXIT_CODE``.

With several ranks, a signal may reach only some of them; ``stop_vote`` lets all ranks agree on it
each step, on the host, so that asking never waits for the GPU.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later"; a job script requeues on it
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


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


@contextmanager
def preemption_signals() -> Iterator[PreemptionFlag]:
    """Catch SIGTERM/SIGUSR1 for the duration of the block (main thread only; elsewhere a no-op flag)."""
    flag = PreemptionFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {number: signal.signal(number, flag._handle) for number in PREEMPTION_SIGNALS}
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
