"""Resumable checkpoints: plain tensors and containers only, stamped with the identity of the run.

A checkpoint is loaded with ``torch.load(weights_only=True)``, so a file received from someone else
cannot run code. It carries the values of every setting that shapes training (``identity``); a resume
under other values is refused with the differing keys named, so a stale checkpoint never continues
as, or stands in for, a run with other settings. Tensors are checked finite before they are written,
so the checkpoint a later error points to is always usable.

Every checkpoint carries a sha256 of its contents (each tensor's dtype, shape and bytes, and every
other value, in a fixed order), verified on load: a truncated or corrupted file is refused with its
path and the reason. The two last checkpoints are kept, ``<name>.pt`` and ``<name>.prev.pt``
(``previous_path``), rotated by renames, so ``resume_checkpoint`` falls back to the previous one when
the last cannot be trusted, and says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from lipsum_ft.atomic import atomic_path

CHECKPOINT_FORMAT = 3  # 1: unstamped pickles; 2: no checksum (both refused)
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: unreadable, unsafe, corrupt, from another run, or non-finite.

    ``reason`` is the message without the file's path (what a list of refused files shows).
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class StaleCheckpointError(CheckpointError):
    """The checkpoint was written under other settings; the message names the keys that differ."""


class NonFiniteCheckpointError(CheckpointError, FloatingPointError):
    """The state to checkpoint holds NaN/inf; nothing was written (the previous checkpoint stays)."""


_FRESH_START = "set finetune.resume=false to start afresh (the file is then overwritten)"


def _refused(path: str | Path, reason: str, advice: str = "") -> CheckpointError:
    return CheckpointError(f"refusing checkpoint {path}: {reason}{advice}", reason)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"dotted.key": JSON value}`` (tuples become lists), so they compare as JSON."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.loads(json.dumps(value, default=str))
    return flat


def identity_digest(identity: Mapping[str, Any]) -> str:
    """A short hash of the identity values (what a log line or a file listing can show)."""
    text = json.dumps(flatten(identity), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def identity_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: saved -> current`` for every key whose value differs (or exists on one side only)."""
    saved, current = flatten(saved), flatten(current)
    missing = object()
    return [
        f"{key}: {saved.get(key, '<absent>')!r} -> {current.get(key, '<absent>')!r}"
        for key in sorted(saved.keys() | current.keys())
        if saved.get(key, missing) != current.get(key, missing)
    ]


def _leaves(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of nested dicts, lists and tuples with its dotted name (tensors are leaves)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{where}[{i}]")
    else:
        yield where, value


def _tensors(value: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The tensors among ``value``'s leaves, with their dotted names."""
    return ((name, leaf) for name, leaf in _leaves(value) if isinstance(leaf, torch.Tensor))


def checksum(payload: Mapping[str, Any]) -> str:
    """sha256 over every value of ``payload`` but its ``checksum``: each tensor's dtype, shape and
    bytes and every other value's type and repr, in the order of the leaves' names.
    """
    digest = hashlib.sha256()
    leaves = sorted(_leaves({k: v for k, v in payload.items() if k != "checksum"}), key=lambda kv: kv[0])
    for name, value in leaves:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{name}:tensor:{value.dtype}:{tuple(value.shape)}\n".encode())
            digest.update(tensor.view(torch.uint8).numpy())
        else:
            digest.update(f"{name}:{type(value).__name__}:{value!r}\n".encode())
    return digest.hexdigest()


def previous_path(path: str | Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``<stem>.prev<suffix>`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def non_finite(state: Any) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold NaN or inf."""
    return [
        name for name, t in _tensors(state) if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


def save_checkpoint(
    path: str | Path, payload: dict[str, Any], identity: Mapping[str, Any], keep_previous: bool = True
) -> None:
    """Write ``payload`` (tensors, containers, numbers, strings) stamped with ``identity`` and its
    checksum, atomically (temporary, fsync, rename).

    With ``keep_previous`` the file it replaces becomes ``previous_path(path)``; without, the
    previous file stays as it is (the caller knows ``path`` is not a good checkpoint of this run).
    Refuses (``NonFiniteCheckpointError``) when a tensor holds NaN/inf, leaving both files; a failed
    write (a full disk) raises ``lipsum_ft.atomic.OutputWriteError`` naming ``path``, leaving both.
    """
    bad = non_finite(payload)
    if bad:
        raise NonFiniteCheckpointError(
            f"not writing checkpoint {path} at step {payload.get('step')}: non-finite values in "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
        )
    stamped = {
        "format": CHECKPOINT_FORMAT,
        "identity": flatten(identity),
        "digest": identity_digest(identity),
        **payload,
    }
    stamped["checksum"] = checksum(stamped)
    previous = previous_path(path) if keep_previous else None
    # into a Python file: a failed write surfaces as an OSError (torch's own writer only says it failed)
    with atomic_path(path, previous) as temporary, open(temporary, "wb") as handle:
        torch.save(stamped, handle)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The stamped payload of ``path``, its checksum verified; refuses (``CheckpointError``, naming
    the path and the reason) a file that is unreadable, truncated, corrupt, of another format, or
    that holds more than tensors and containers.
    """
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(error))
        detail_text = detail.group(1).split(". ")[0].strip() if detail else type(error).__name__
        raise _refused(
            path,
            "it holds objects other than tensors, numbers, strings, lists and dicts (or its pickle is "
            f"corrupt), and loading them could run code ({detail_text[:200]})",
            f". Delete it if you did not write it, or {_FRESH_START}.",
        ) from None
    except Exception as error:  # torch.load of a damaged file raises many types (OSError, RuntimeError, ...)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise _refused(
            path, f"cannot read it, truncated or corrupt ({type(error).__name__}: {first[:200]})"
        ) from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise _refused(
            path,
            f"it is not a stamped checkpoint of format {CHECKPOINT_FORMAT} (written by an earlier "
            "version, or not by this project)",
            f"; delete it or {_FRESH_START}",
        )
    if saved.get("checksum") != checksum(saved):
        raise _refused(path, "its contents do not match its checksum (the file is corrupt)")
    return saved


def load_checkpoint(path: str | Path, identity: Mapping[str, Any]) -> dict[str, Any]:
    """``read_checkpoint``, then refuse it unless it was written under exactly ``identity``."""
    saved = read_checkpoint(path)
    differences = identity_differences(saved["identity"], identity)
    if differences:
        raise StaleCheckpointError(
            f"refusing to resume from {path}: it was written under other settings "
            f"(saved -> current):\n  " + "\n  ".join(differences) + "\nRestore those settings to "
            f"continue that run, or {_FRESH_START}.",
            "written under other settings: " + "; ".join(differences[:5]),
        )
    bad = non_finite({k: v for k, v in saved.items() if k != "identity"})
    if bad:
        raise _refused(path, f"non-finite values in {', '.join(bad[:5])}")
    return saved


def resume_checkpoint(path: str | Path, identity: Mapping[str, Any]) -> tuple[dict[str, Any], Path] | None:
    """The checkpoint to resume ``path``'s run from, and its file; None when neither ``path`` nor
    ``previous_path(path)`` exists.

    ``path`` is used when it is good. When it is missing, truncated, corrupt, unsafe or non-finite,
    the previous one is used with a warning naming both files. A checkpoint written under other
    settings is refused at once (``StaleCheckpointError``): that is a decision for the user, not a
    fault to route around. When files exist but none is usable, ``CheckpointError`` names each file
    and its reason: a bad file is never silently replaced by a fresh start.
    """
    path = Path(path)
    reasons: dict[Path, str] = {}
    for candidate in (path, previous_path(path)):
        if not candidate.is_file():
            reasons[candidate] = "missing"
            continue
        try:
            saved = load_checkpoint(candidate, identity)
        except CheckpointError as error:
            if isinstance(error, StaleCheckpointError) and candidate == path:
                raise
            reasons[candidate] = error.reason
            continue
        if candidate != path:
            log.warning(
                "checkpoint %s cannot be used (%s); resuming from the previous checkpoint %s (step %d)",
                path,
                reasons[path],
                candidate,
                saved["step"],
            )
        return saved, candidate
    if not any(candidate.is_file() for candidate in reasons):
        return None
    listed = [f"{candidate}: {reason}" for candidate, reason in reasons.items()]
    raise CheckpointError(
        "no usable checkpoint to resume from (a bad checkpoint is never replaced by a fresh start):\n  "
        + "\n  ".join(listed)
        + "\nDelete them, or set finetune.resume=false to start afresh (the files are then overwritten).",
        "; ".join(listed),
    )
