"""Read a DomainNet-layout dataset folder into a manifest table.

The layout is DomainNet's: images under ``<root>/<domain>/<class>/<file>`` and one split file per
(domain, split) whose lines read ``<domain>/<class>/<file> <label>``. The embedded DigitDomains
dataset is written in the same layout, so one reader serves both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from lipsum_ft.data.errors import DataInputError

MANIFEST_COLUMNS = ("path", "label", "class_name", "domain", "split", "source")


@dataclass(frozen=True)
class FolderLayout:
    """Where a DomainNet-layout dataset lives and how its split files and class names are found."""

    root: Path
    domains: tuple[str, ...]
    splits: tuple[str, ...]
    split_file: str = "{domain}_{split}.txt"
    classnames_from: Literal["file", "folders"] = "file"
    classnames_file: str = "classnames.txt"

    def split_path(self, domain: str, split: str) -> Path:
        return self.root / self.split_file.format(domain=domain, split=split)


def read_classnames(layout: FolderLayout) -> list[str]:
    """Class names in label order: from a names file, or the sorted class folders (DomainNet's order)."""
    if not layout.root.is_dir():
        raise DataInputError(f"dataset root {layout.root} does not exist or is not a folder")
    if layout.classnames_from == "file":
        path = layout.root / layout.classnames_file
        if not path.is_file():
            raise DataInputError(f"class-name file {path} is missing (layout.classnames_from: file)")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif layout.classnames_from == "folders":
        names = sorted(
            {
                p.name
                for domain in layout.domains
                if (layout.root / domain).is_dir()
                for p in (layout.root / domain).iterdir()
                if p.is_dir()
            }
        )
    else:
        raise DataInputError(
            f"layout.classnames_from must be 'file' or 'folders', got {layout.classnames_from!r}"
        )
    if not names:
        raise DataInputError(
            f"no class names found under {layout.root} (layout.classnames_from: {layout.classnames_from})"
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataInputError(f"class names repeat in {layout.root}: {duplicates[:5]}")
    return names


def parse_split_line(line: str, where: str) -> tuple[str, int]:
    """One split-file line -> (relative path, label); ``where`` ('file:line') goes into the error."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) != 2:
        raise DataInputError(f"{where}: expected '<relative/path> <label>', got {line!r}")
    relative, label_text = parts
    try:
        label = int(label_text)
    except ValueError:
        raise DataInputError(f"{where}: label {label_text!r} is not an integer") from None
    return relative, label


class RealPaths:
    """``os.path.realpath`` for many files in few folders: each folder is resolved once.

    A file that is not itself a symlink resolves to its resolved folder plus its name, so only the
    file's own ``lstat`` remains per row (two full realpaths per row made 600k rows cost ~50 s).
    """

    def __init__(self):
        self._folders: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        if os.path.islink(path):
            return os.path.realpath(path)
        folder, name = os.path.split(path)
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        return os.path.join(real, name)


def confined_path(
    root: str, relative: str, where: str, real_root: str | None = None, realpath=os.path.realpath
) -> str:
    """``root / relative`` normalised, refused unless it stays inside ``root``, symlinks resolved too.

    Normalising makes ``a/../b/x.png`` and ``b/x.png`` one path, so the leakage check compares files,
    not spellings; resolving catches a symlink under the root that points out of it.
    """
    if os.path.isabs(relative):
        raise DataInputError(f"{where}: path {relative!r} is absolute; split files list paths under the root")
    joined = os.path.normpath(os.path.join(root, relative))
    if os.path.relpath(joined, root).split(os.sep)[0] == os.pardir:
        raise DataInputError(f"{where}: path {relative!r} leaves the dataset root {root}")
    real_root = real_root or os.path.realpath(root)
    real = realpath(joined)
    if os.path.commonpath([real_root, real]) != real_root:
        raise DataInputError(
            f"{where}: path {relative!r} resolves to {real}, outside the dataset root {real_root} "
            "(a symlink pointing out of the root)"
        )
    return joined


def read_split_file(layout: FolderLayout, domain: str, split: str) -> pd.DataFrame:
    """Rows of one (domain, split); class_name is the image's parent folder, as in DomainNet."""
    path = layout.split_path(domain, split)
    if not path.is_file():
        raise DataInputError(f"split file {path} is missing (domain {domain!r}, split {split!r})")
    rows, root = [], str(layout.root)
    real_root, realpath = os.path.realpath(root), RealPaths()
    # String operations, not pathlib: a Path per line made 600k DomainNet lines cost over a minute.
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        relative, label = parse_split_line(line, where)
        image = confined_path(root, relative, where, real_root, realpath)
        parts = os.path.relpath(image, root).split(os.sep)
        if len(parts) < 2:
            raise DataInputError(f"{where}: path {relative!r} has no class folder")
        rows.append((image, label, parts[-2], domain, split, where))
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def read_manifest(layout: FolderLayout) -> pd.DataFrame:
    """Every (domain, split) of the layout as one table with columns ``MANIFEST_COLUMNS``."""
    if not layout.root.is_dir():
        raise DataInputError(f"dataset root {layout.root} does not exist or is not a folder")
    frames = [read_split_file(layout, d, s) for d in layout.domains for s in layout.splits]
    manifest = pd.concat(frames, ignore_index=True)
    return manifest.astype({"label": "int64"})


def layout_from_params(params: dict, keys: Sequence[str] = ("root", "domains", "splits")) -> FolderLayout:
    """Build a ``FolderLayout`` from the ``data.layout`` parameters, naming any missing key."""
    missing = [k for k in keys if k not in params]
    if missing:
        raise DataInputError(f"data.layout is missing key(s) {missing}")
    return FolderLayout(
        root=Path(params["root"]),
        domains=tuple(params["domains"]),
        splits=tuple(params["splits"]),
        split_file=params.get("split_file", "{domain}_{split}.txt"),
        classnames_from=params.get("classnames_from", "file"),
        classnames_file=params.get("classnames_file", "classnames.txt"),
    )
