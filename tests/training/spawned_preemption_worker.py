"""What the spawned-ranks preemption test runs, in a process group of its own: ``fit`` with two ranks
spawned on this machine (gloo on CPU) over the tiny setup, in which, while a given step is drawn,
rank 0 sends SIGTERM to the whole process group (``group``: as SLURM and GNU ``timeout`` do) or rank 1
sends it to itself alone (``rank1``: a signal that reached one rank); or (``starting``) the parent sends
it to the whole group as soon as the ranks exist, while they are still starting. It prints the
``Preempted`` message and exits with its code.

usage: python -m tests.training.spawned_preemption_worker <0-based step> <checkpoint> [group|rank1|starting]
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time


class SignalWhileDrawing:
    """Training images that send SIGTERM while step ``at`` is drawn: from rank 0 to the whole process
    group (``group``), or from rank 1 to itself alone (``rank1``)."""

    def __init__(self, data, at: int, target: str):
        self.data, self.at, self.target = data, at, target
        self.labels = data.labels

    def train_batches(self, start, batch_size, augment, rank=0, world=1, device="cpu"):
        batches = self.data.train_batches(start, batch_size, augment, rank, world, device)
        for step, batch in enumerate(batches, start):
            if step == self.at and (self.target, rank) == ("group", 0):
                os.killpg(os.getpgrp(), signal.SIGTERM)
            elif step == self.at and (self.target, rank) == ("rank1", 1):
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch


def signal_the_group_once_ranks_exist() -> None:
    """From a thread of the parent: SIGTERM to the whole group within ms of the ranks' start, seconds
    before they import torch and catch it."""
    while not multiprocessing.active_children():
        time.sleep(0.005)
    print("SIGNALLED while the ranks were starting", flush=True)
    os.killpg(os.getpgrp(), signal.SIGTERM)


def main() -> int:
    at, checkpoint = int(sys.argv[1]), sys.argv[2]
    target = sys.argv[3] if len(sys.argv) > 3 else "group"
    if target not in ("group", "rank1", "starting"):  # a mistyped one would signal nothing
        raise SystemExit(f"target {target!r}: use group, rank1 or starting\n{__doc__}")
    if target == "starting":
        threading.Thread(target=signal_the_group_once_ranks_exist, daemon=True).start()
    from lipsum_ft.training.loop import fit
    from lipsum_ft.training.preemption import Preempted
    from tests.training.loop_helpers import config, make, tiny_setup

    setup = tiny_setup()
    settings = config(devices=2, checkpoint_every=4, checkpoint_path=checkpoint, resume="auto")
    try:
        fit(make(setup), SignalWhileDrawing(setup[3], at, target), setup[4], settings)
    except Preempted as preempted:
        print(f"PREEMPTED {preempted}", flush=True)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
