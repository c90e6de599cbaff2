"""What a rank-fault test gives torchrun to start on every rank: ``kedro run`` in which one rank, in
the first attempt only (``TORCHELASTIC_RESTART_COUNT`` 0), kills itself with SIGKILL (a dead rank) or
stops itself with SIGSTOP (a hung one) right after a checkpoint was written and every rank passed
the barrier behind it.

usage: rank_fault_worker.py <kill|stop> <rank> <method> <step> -- <kedro arguments>
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> int:
    fault, rank, method, step = sys.argv[1:5]
    kedro_arguments = sys.argv[sys.argv.index("--") + 1 :]
    from lipsum_ft.training import loop

    save = loop._RankTrainer.save

    def save_then_fault(self, done: int) -> None:
        save(self, done)
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if (
            first_attempt
            and os.environ.get("RANK") == rank
            and self.module.name == method
            and done == int(step)
        ):
            print(
                f"FAULT {fault} rank {rank} after the step-{done} checkpoint of {method} at {time.time():.3f}"
            )
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL if fault == "kill" else signal.SIGSTOP)

    loop._RankTrainer.save = save_then_fault
    from kedro.framework.cli import main as kedro

    sys.argv = ["kedro", *kedro_arguments]
    return kedro()


if __name__ == "__main__":
    sys.exit(main())
