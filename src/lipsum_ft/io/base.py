"""The shared shape of this project's datasets: one path on disk, described by that path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class PathDataset(AbstractDataset):
    """A dataset stored at ``filepath`` (a file or a folder);
    subclasses say how to load, save and check it.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
