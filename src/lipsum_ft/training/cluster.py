"""Where this process sits in a job that an external launcher (torchrun, SLURM's srun) started.

torchrun exports ``WORLD_SIZE``/``RANK``; srun exports ``SLURM_NTASKS``/``SLURM_PROCID``. Lightning
Fabric reads the same variables (its torchelastic and SLURM cluster environments); these helpers let
code outside the training loop (the Kedro hook that keeps non-zero ranks from saving) agree with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def launched_world_size(environ: Mapping[str, str] = os.environ) -> int:
    """How many processes the launcher started for this job (1 when none did)."""
    for name in ("WORLD_SIZE", "SLURM_NTASKS"):
        if environ.get(name):
            return int(environ[name])
    return 1


def launched_rank(environ: Mapping[str, str] = os.environ) -> int:
    """This process's global rank among the launcher's processes (0 when no launcher started it)."""
    for name in ("RANK", "SLURM_PROCID"):
        if environ.get(name):
            return int(environ[name])
    return 0
