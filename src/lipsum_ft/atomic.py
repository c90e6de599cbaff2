"""Atomic writes: a reader (or a crash) never sees half a file, and a killed writer is recovered from.

Every temporary carries its writer's process id in its name (``.<name>.<pid>.<random>.tmp`` for a
file, ``.<name>.tmp-<pid>-<random>`` for a staged folder, ``.<name>.old-<pid>`` for a folder being
replaced). ``recover`` uses that id to tell a live writer's temporaries from a dead one's: a dead
writer's are removed, and a folder retired by a swap that was killed between its two renames is
renamed back into place, so the target is never left missing. Files and folders get the user's
umask, not ``mkstemp``'s private 0600/0700.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _grant_umask(path: Path, folder: bool) -> None:
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _leftover_patterns(name: str) -> list[tuple[str, re.Pattern[str]]]:
    n = re.escape(name)
    return [
        ("file", re.compile(rf"^\.{n}\.(\d+)\.[^.]+\.tmp$")),
        ("staged", re.compile(rf"^\.{n}\.tmp-(\d+)-[^/]+$")),
        ("retired", re.compile(rf"^\.{n}\.old-(\d+)$")),
    ]


def recover(target: str | os.PathLike) -> list[Path]:
    """Clean up after writers of ``target`` that died mid-write; returns what was removed or restored.

    A folder retired by an interrupted swap goes back to ``target`` when ``target`` is missing;
    every other temporary of a dead writer is deleted. Live writers' temporaries are left alone.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    touched = []
    patterns = _leftover_patterns(target.name)
    for entry in sorted(target.parent.iterdir()):
        for kind, pattern in patterns:
            match = pattern.match(entry.name)
            if not match or _alive(int(match.group(1))):
                continue
            if kind == "retired" and not target.exists():
                entry.rename(target)  # the swap was killed between its renames: the old output returns
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            touched.append(entry)
    return touched


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    try:
        yield Path(temporary)
        _grant_umask(Path(temporary), folder=False)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by the folder ``staging``; at every instant one of them is at ``target``,
    or (if killed between the renames) the old one waits at ``.<name>.old-<pid>`` for ``recover``.
    """
    retired = None
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(retired, ignore_errors=True)
        target.rename(retired)
    try:
        staging.rename(target)
    except BaseException:
        if retired is not None and not target.exists():
            retired.rename(target)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty sibling folder to fill; on success it replaces ``target`` whole,
    on failure it is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    _grant_umask(staging, folder=True)
    try:
        yield staging
        swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
