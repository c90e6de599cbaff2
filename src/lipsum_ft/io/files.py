"""JSON, CSV, Parquet, text and figure datasets with atomic saves
(Kedro-datasets' versions write in place).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from lipsum_ft.atomic import atomic_path
from lipsum_ft.io.base import PathDataset


class AtomicJSONDataset(PathDataset):
    """A JSON document on disk, written atomically, pretty-printed for diffs and DVC metrics."""

    def load(self) -> Any:
        return json.loads(self._filepath.read_text(encoding="utf-8"))

    def save(self, data: Any) -> None:
        with atomic_path(self._filepath) as temporary:
            temporary.write_text(
                json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8"
            )


class AtomicParquetDataset(PathDataset):
    """A pandas table as Parquet, written atomically."""

    def load(self) -> pd.DataFrame:
        return pd.read_parquet(self._filepath)

    def save(self, data: pd.DataFrame) -> None:
        with atomic_path(self._filepath) as temporary:
            data.to_parquet(temporary, index=False)


class AtomicCSVDataset(PathDataset):
    """A pandas table as CSV without the index, written atomically (logs and result tables people open)."""

    def load(self) -> pd.DataFrame:
        return pd.read_csv(self._filepath)

    def save(self, data: pd.DataFrame) -> None:
        with atomic_path(self._filepath) as temporary:
            data.to_csv(temporary, index=False)


class AtomicTextDataset(PathDataset):
    """A UTF-8 text file (a Markdown table), written atomically."""

    def load(self) -> str:
        return self._filepath.read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        with atomic_path(self._filepath) as temporary:
            temporary.write_text(data, encoding="utf-8")


class FigureDataset(PathDataset):
    """A matplotlib figure saved as PNG, atomically; loading returns the file's path (figures are outputs)."""

    def __init__(self, filepath: str, dpi: int = 120, metadata: dict[str, Any] | None = None):
        super().__init__(filepath, metadata)
        self._dpi = dpi

    def load(self) -> Path:
        return self._filepath

    def save(self, data: Any) -> None:
        with atomic_path(self._filepath) as temporary:
            data.savefig(temporary, format="png", dpi=self._dpi)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dpi": self._dpi}
