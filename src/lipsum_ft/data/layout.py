"""Read a DomainNet-layout dataset folder into a manifest table.

The layout is DomainNet's: images under ``<root>/<domain>/<class>/<file>`` and one split file per
(domain, split) whose lines read ``<domain>/<class>/<file> <label>``. The embedded DigitDomains
dataset is written in the same layout, so one reader serves both.

Split files are read strictly (README "Data"): UTF-8, with an optional byte-order mark at the start;
lines end in LF or CRLF; path and label are separated by spaces or tabs, and spaces and tabs around
them are ignored; the label is ASCII digits (``3``, not ``3.0``, ``+3`` or ``٣``); a line that repeats
an earlier one (same file after normalisation, same label) is dropped with a warning, one that gives
the same file another label is refused. Anything else (bytes that are not UTF-8, control characters,
a lone CR) stops the read with ``DataInputError`` naming the file and the line.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from lipsum_ft.data.errors import DataInputError

MANIFEST_COLUMNS = ("path", "label", "class_name", "domain", "split", "source")
log = logging.getLogger(__name__)
# What a split file may not hold: C0/C1 control characters other than tab and the line end, DEL,
# Unicode line and paragraph separators, a byte-order mark after the start, and a CR not before LF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff]|\r(?!\n)")


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
    """One split-file line -> (relative path, label); ``where`` ('file:line') goes into the error.

    The label is the last field after a run of spaces or tabs, and must be ASCII digits; spaces and
    tabs around the line and between the fields are ignored (a path may hold single spaces inside).
    """
    stripped = line.strip(" \t")
    cut = max(stripped.rfind(" "), stripped.rfind("\t"))
    relative, label_text = stripped[:cut].rstrip(" \t"), stripped[cut + 1 :]
    if cut < 0 or not relative:
        raise DataInputError(f"{where}: expected '<relative/path> <label>', got {line!r}")
    if not (label_text.isascii() and label_text.isdigit()):
        raise DataInputError(
            f"{where}: label {label_text!r} is not an integer (a label is written in ASCII digits, like 3)"
        )
    return relative, int(label_text)


def split_file_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a split file, line ends removed, a leading byte-order mark dropped.

    Bytes that are not UTF-8 and characters no split file holds (``_FORBIDDEN``) raise
    ``DataInputError`` naming the file and line when the reader gets there, so the first bad line
    of any kind is the one reported.
    """
    raw = path.read_bytes()
    raw = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    bad: tuple[int, str] | None = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        text = raw[:line_start].decode("utf-8")  # the lines before the bad one
        bad = (
            raw.count(b"\n", 0, error.start) + 1,
            f"not UTF-8 text (byte 0x{raw[error.start]:02x} at byte {error.start - line_start + 1} of "
            "the line); split files are UTF-8",
        )
    forbidden = _FORBIDDEN.search(text)
    if forbidden:  # before the undecodable line, if any (text stops there)
        bad = (
            text.count("\n", 0, forbidden.start()) + 1,
            f"character {forbidden.group()!r} has no place in a split file "
            "(lines are '<relative/path> <label>', ended by LF or CRLF)",
        )
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if bad is not None and number == bad[0]:
            break
        yield number, line
    if bad is not None:
        raise DataInputError(f"{path}:{bad[0]}: {bad[1]}")


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
    rows, root, seen, repeats = [], str(layout.root), {}, []
    real_root, realpath = os.path.realpath(root), RealPaths()
    # String operations, not pathlib: a Path per line made 600k DomainNet lines cost over a minute.
    for number, line in split_file_lines(path):
        if not line.strip(" \t"):
            continue
        where = f"{path}:{number}"
        relative, label = parse_split_line(line, where)
        image = confined_path(root, relative, where, real_root, realpath)
        parts = os.path.relpath(image, root).split(os.sep)
        if len(parts) < 2:
            raise DataInputError(f"{where}: path {relative!r} has no class folder")
        if image in seen:
            first, first_label = seen[image]
            if first_label != label:
                raise DataInputError(
                    f"{where}: {relative!r} is labelled {label}, but line {first} gave the same file "
                    f"label {first_label}"
                )
            repeats.append(f"{number} (= line {first})")
            continue
        seen[image] = (number, label)
        rows.append((image, label, parts[-2], domain, split, where))
    if repeats:
        log.warning(
            "%s: %d repeated line(s) dropped, each file is listed once: line %s",
            path,
            len(repeats),
            ", ".join(repeats[:10]) + (" ..." if len(repeats) > 10 else ""),
        )
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
