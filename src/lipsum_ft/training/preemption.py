"""Preemption: SIGTERM or SIGUSR1 (what SLURM sends before it kills or requeues a job) stops the loop
after the current step, once a checkpoint is written, with exit code ``PREEMPTED_EXIT_CODE``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
