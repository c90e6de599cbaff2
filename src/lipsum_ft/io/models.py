"""Kedro datasets for models: an open_clip model folder (config JSON + safetensors) and tensor files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lipsum_ft.atomic import atomic_path, staged_folder
from lipsum_ft.clip.backbone import ClipBundle, load_bundle, save_bundle, write_bundle
from lipsum_ft.io.base import PathDataset
from lipsum_ft.on_demand import OnDemand


class ClipModelDataset(PathDataset):
    """An open_clip ``local-dir`` folder: loads as a ready model (plus its classification head, if any)."""

    def load(self) -> ClipBundle:
        return load_bundle(self._filepath)

    def save(self, data: ClipBundle) -> None:
        save_bundle(data, self._filepath)

    def _exists(self) -> bool:
        return (self._filepath / "open_clip_config.json").is_file()


class TensorsDataset(PathDataset):
    """A dict of named tensors as one safetensors file, written atomically."""

    def load(self) -> dict[str, torch.Tensor]:
        return load_file(str(self._filepath))

    def save(self, data: dict[str, torch.Tensor]) -> None:
        with atomic_path(self._filepath) as temporary:
            save_file({k: v.detach().cpu().contiguous() for k, v in data.items()}, str(temporary))


class ClipModelCollectionDataset(PathDataset):
    """Several named models (e.g. one per fine-tuning method) as sub-folders, replaced as a whole.

    The collection is written into a staging folder and swapped in at once, so a run never leaves a
    mix of new models and stale ones from an earlier run.
    """

    def load(self) -> dict[str, ClipBundle]:
        folders = sorted(p for p in self._filepath.iterdir() if (p / "open_clip_config.json").is_file())
        return {p.name: load_bundle(p) for p in folders}

    def save(self, data: dict[str, ClipBundle]) -> None:
        with staged_folder(self._filepath) as staging:
            for name, bundle in data.items():
                (staging / name).mkdir()
                write_bundle(bundle, staging / name)

    def _exists(self) -> bool:
        return self._filepath.is_dir() and any(
            (p / "open_clip_config.json").is_file() for p in self._filepath.iterdir()
        )


class SafetensorsState(OnDemand[torch.Tensor]):
    """One ``.safetensors`` file as a read-only mapping: each tensor is read when it is asked for and
    is not kept.

    A consumer that loads the states of a collection one at a time (``load_state_dict`` reads each key
    once) then holds one state in memory, not the whole WiSE grid.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            with safe_open(str(path), framework="pt") as handle:
                names = list(handle.keys())
        except Exception as error:  # safetensors' errors do not say which file
            raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
        super().__init__(names, self._read)

    def _read(self, name: str) -> torch.Tensor:
        with safe_open(str(self.path), framework="pt") as handle:
            return handle.get_tensor(name)

    def __repr__(self) -> str:
        return f"SafetensorsState({str(self.path)!r}, {len(self)} tensors)"


class TensorCollectionDataset(PathDataset):
    """Named tensor dicts (e.g. one classifier state per WiSE alpha) as ``<name>.safetensors`` in one folder.

    Written into a staging folder and swapped in whole, like ``ClipModelCollectionDataset``. Saved one
    state at a time (each read from ``data`` once: the ``posthoc`` node makes its WiSE states as they are
    written) and loaded as ``SafetensorsState`` mappings, read when used: the grid is never in memory.
    """

    def load(self) -> dict[str, SafetensorsState]:
        return {p.stem: SafetensorsState(p) for p in sorted(self._filepath.glob("*.safetensors"))}

    def save(self, data: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        with staged_folder(self._filepath) as staging:
            for name, tensors in data.items():
                save_file(
                    {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                    str(staging / f"{name}.safetensors"),
                )

    def _exists(self) -> bool:
        return self._filepath.is_dir()
