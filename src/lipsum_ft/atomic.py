"""Atomic writes: a reader (or a crash) never sees half a file, and a killed writer is recovered from.

Every temporary carries its writer's process id in its name (``.<name>.<pid>.<random>.tmp`` for a
file, ``.<name>.tmp-<pid>-<random>`` for a staged folder, ``.<name>.old-<pid>`` for a folder being
replaced). ``recover`` uses that id to tell a live writer's temporaries from a dead one's: a dead
writer's are removed, and a folder retired by a swap that was killed between its two renames is
renamed back into place, so the target is never left missing. Files and folders get the user's
umask, not ``mkstemp``'s private 0600/0700.

A write that fails (a full disk, a quota, an I/O error, while writing or at the ``fsync`` before
the rename) removes its temporary and raises ``OutputWriteError``, an ``OSError`` with the same
errno whose message names the target; the previous target is left as it was.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


class OutputWriteError(OSError):
    """Writing ``target`` failed; the previous ``target`` is unchanged and no temporary is left."""

    def __init__(self, code: int | None, message: str, target: Path):
        super().__init__(code, message)
        self.target = target


# Native writers (safetensors' Rust, torch's C++ zip writer on a path) report a failed write as a
# RuntimeError-like exception whose text is all that is left of the errno.
_NATIVE_WRITE_FAILURES = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Input/output error": errno.EIO,
}


def write_failure(error: BaseException) -> tuple[int | None, str] | None:
    """(errno, reason) when ``error`` is, or was caused by, a failed write; None for other errors.

    An ``OSError`` anywhere in its chain counts (torch's writer wraps the ``OSError`` of a Python
    file object's ``write`` in a ``RuntimeError``), and so does a native writer's text of one.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            code = current.errno
            return code, current.strerror or str(current) or (os.strerror(code) if code else "I/O error")
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    text = str(error)
    for reason, code in _NATIVE_WRITE_FAILURES.items():
        if reason in text:
            return code, reason
    return None


def _named(error: BaseException, target: Path, kept: str) -> BaseException:
    """``error`` as an ``OutputWriteError`` naming ``target`` when it is a failed write, else itself."""
    if isinstance(error, OutputWriteError):
        return error
    failure = write_failure(error)
    if failure is None:
        return error
    code, reason = failure
    hint = (
        " (the filesystem is full: free space or write elsewhere)"
        if code in (errno.ENOSPC, errno.EDQUOT)
        else ""
    )
    return OutputWriteError(code, f"cannot write {target}: {reason}{hint}; {kept}", target)


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to the disk: a full disk or an I/O error surfaces here,
    before the rename, rather than after it (NFS and quotas report a failed write only at fsync/close).
    """
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_folder_quietly(folder: Path) -> None:
    """Make a rename in ``folder`` durable where the filesystem allows it; the new file is already in
    place, so a folder that cannot be synced (EINVAL on some filesystems) is not an error of the write.
    """
    with suppress(OSError):
        fsync_path(folder)


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
def atomic_path(target: str | os.PathLike, previous: str | os.PathLike | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary is fsynced before the rename. With ``previous``, the current ``target`` (if any)
    is first renamed to ``previous``, so the two last versions are kept; were the final rename to
    fail, it is renamed back. A failed write raises ``OutputWriteError`` naming ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    kept = f"the previous {target.name} is unchanged and the temporary {temporary.name} was removed"
    try:
        yield temporary
        fsync_path(temporary)
        _grant_umask(temporary, folder=False)
        _rename_keeping(temporary, target, Path(previous) if previous is not None else None)
    except BaseException as error:
        named = _named(error, target, kept)
        if named is error:
            raise
        raise named from error
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_folder_quietly(target.parent)


def _rename_keeping(temporary: Path, target: Path, previous: Path | None) -> None:
    """``temporary`` onto ``target``; the old ``target`` onto ``previous`` when one is given.

    The old file is first hard-linked beside it, so ``target`` exists at every instant and a failed
    rename leaves both old files; where hard links are not supported it is renamed aside instead (and
    renamed back should the final rename fail).
    """
    if previous is None or not target.exists():
        os.replace(temporary, target)
        return
    link = target.with_name(f".{target.name}.{os.getpid()}.prev.tmp")  # a temporary ``recover`` knows
    try:
        link.unlink(missing_ok=True)
        os.link(target, link)
    except OSError:
        os.replace(target, previous)
        try:
            os.replace(temporary, target)
        except BaseException:
            if not target.exists():
                os.replace(previous, target)
            raise
        return
    try:
        os.replace(temporary, target)
        os.replace(link, previous)
    finally:
        link.unlink(missing_ok=True)


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
    kept = f"the previous {target.name} is unchanged and the staging folder {staging.name} was removed"
    try:
        yield staging
        for folder, _, files in os.walk(staging):
            for name in files:
                fsync_path(Path(folder) / name)
            fsync_path(Path(folder))
        swap_in(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        named = _named(error, target, kept)
        if named is error:
            raise
        raise named from error
    _fsync_folder_quietly(target.parent)
