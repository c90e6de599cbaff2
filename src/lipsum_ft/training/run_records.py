"""Finished runs of a grid, kept on disk until what was made of them is saved: an interrupted study (a
preempted `dvc repro ablation`, in its grid or while it scores the runs) starts again after its last
finished run instead of from its first.

A record is what the grid keeps of a run, as ``fit`` returned it (the best-on-val trainable state, the
step log, the best step and its validation accuracy, the GPU peak) and how long it trained. It is
written through ``checkpoint.save_checkpoint`` (atomic, checksummed) and stamped with the run's
identity (``loop.run_identity``: recipe, method settings, data and zero-shot head digests), a digest of
this package's source and torch's version. A record written under other settings or by other code, or
one that cannot be read, is not used: the run trains again and replaces it.

Only global rank 0 writes; every rank reads, so with several nodes the folder must be one they share
(as ``finetune``'s checkpoints must).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch

from lipsum_ft.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lipsum_ft.training.cluster import launched_rank
from lipsum_ft.training.loop import TrainResult

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[1]  # src/lipsum_ft


@cache
def source_digest(package: Path = PACKAGE) -> str:
    """A digest of every Python file of the package (path and bytes): a code change retires every record."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def stamp(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` and what else must match for a record to stand in for a run: the code and torch."""
    return {**identity, "code": source_digest(), "torch": torch.__version__}


@dataclass(frozen=True)
class RunRecord:
    """The record of one run of a grid (``path``)."""

    path: Path

    def load(self, identity: dict[str, Any]) -> tuple[TrainResult, float] | None:
        """The finished run and its training seconds, when a usable record of this very run exists."""
        if not self.path.is_file():
            return None
        try:
            saved = load_checkpoint(self.path, stamp(identity))
        except CheckpointError as error:
            log.warning("not using the finished run %s (%s): training it again", self.path, error.reason)
            return None
        result = TrainResult(
            saved["best_state"],
            saved["best_step"],
            saved["best_val_acc"],
            saved["log"],
            saved["peak_memory_gib"],
        )
        return result, saved["seconds"]

    def save(self, identity: dict[str, Any], result: TrainResult, seconds: float) -> None:
        """Keep a finished run (global rank 0 only)."""
        if launched_rank() != 0:
            return
        payload = {
            "best_state": result.best_state,
            "best_step": result.best_step,
            "best_val_acc": result.best_val_acc,
            "log": result.log,
            "peak_memory_gib": result.peak_memory_gib,
            "seconds": seconds,
        }
        save_checkpoint(self.path, payload, stamp(identity), keep_previous=False)


@dataclass(frozen=True)
class RunRecords:
    """The records of one grid: a folder of its own, ``<series>.pt`` per finished run."""

    folder: Path

    def slot(self, series: str) -> RunRecord:
        return RunRecord(self.folder / f"{series}.pt")

    def clear(self) -> None:
        """What was made of the grid's runs is saved: its records go (global rank 0), then the folder if
        nothing else is in it."""
        if launched_rank() != 0 or not self.folder.is_dir():
            return
        for record in self.folder.glob("*.pt"):
            record.unlink()
        if not any(self.folder.iterdir()):
            self.folder.rmdir()
