"""A dataset wrapper for the ranks of a multi-node job that must not write: global rank 0 saves.

Every rank of a torchrun/srun job runs the same ``kedro run``. The non-zero ranks read the same
inputs as rank 0 but keep what they would save in memory: the files on a shared filesystem are
written once, by one process, and a later node on a non-zero rank still finds its inputs.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset

_UNSAVED = object()


class RankLocalDataset(AbstractDataset):
    """Loads through ``inner``; saves stay in this process's memory, never on disk."""

    def __init__(self, inner: AbstractDataset, rank: int):
        self._inner = inner
        self._rank = rank
        self._kept: Any = _UNSAVED

    def _load(self) -> Any:
        return self._inner.load() if self._kept is _UNSAVED else self._kept

    def _save(self, data: Any) -> None:
        self._kept = data

    def _exists(self) -> bool:
        return self._kept is not _UNSAVED or self._inner.exists()

    def _describe(self) -> dict[str, Any]:
        return {
            "rank": self._rank,
            "saves": "kept in memory (only global rank 0 writes)",
            "inner": self._inner,
        }
