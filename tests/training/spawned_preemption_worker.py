"""What the spawned-ranks preemption test runs, in a process group of its own: ``fit`` with two ranks
spawned on this machine (gloo on CPU) over the tiny setup, in which rank 0 sends SIGTERM to the whole
process group (as SLURM and GNU ``timeout`` do) while it draws a given step. It prints the
``Preempted`` message and exits with its code.

usage: python -m tests.training.spawned_preemption_worker <0-based step> <checkpoint>
"""

from __future__ import annotations

import os
import signal
import sys


class SignalGroupFromRankZero:
    """Training images whose rank 0 sends SIGTERM to its process group while step ``at`` is drawn."""

    def __init__(self, data, at: int):
        self.data, self.at = data, at
        self.labels = data.labels

    def train_batches(self, start, batch_size, augment, rank=0, world=1, device="cpu"):
        batches = self.data.train_batches(start, batch_size, augment, rank, world, device)
        for step, batch in enumerate(batches, start):
            if step == self.at and rank == 0:
                os.killpg(os.getpgrp(), signal.SIGTERM)
            yield batch


def main() -> int:
    at, checkpoint = int(sys.argv[1]), sys.argv[2]
    from lipsum_ft.training.loop import fit
    from lipsum_ft.training.preemption import Preempted
    from tests.training.loop_helpers import config, make, tiny_setup

    setup = tiny_setup()
    settings = config(devices=2, checkpoint_every=4, checkpoint_path=checkpoint, resume="auto")
    try:
        fit(make(setup), SignalGroupFromRankZero(setup[3], at), setup[4], settings)
    except Preempted as preempted:
        print(f"PREEMPTED {preempted}", flush=True)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
