"""Resumable checkpoints: plain tensors and containers only, stamped with the identity of the run.

A checkpoint is loaded with ``torch.load(weights_only=True)``, so a file received from someone else
cannot run code. It carries the values of every setting that shapes training (``identity``); a resume
under other values is refused with the differing keys named, so a stale checkpoint never continues
as, or stands in for, a run with other settings. Tensors are checked finite before they are written,
so the checkpoint a later error points to is always usable.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from lipsum_ft.atomic import atomic_path

CHECKPOINT_FORMAT = 2  # 1: unstamped pickles of earlier versions (refused)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: unreadable, unsafe, from another run, or non-finite."""


class StaleCheckpointError(CheckpointError):
    """The checkpoint was written under other settings; the message names the keys that differ."""


class NonFiniteCheckpointError(CheckpointError, FloatingPointError):
    """The state to checkpoint holds NaN/inf; nothing was written (the previous checkpoint stays)."""


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


def _tensors(value: Any, where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _tensors(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{where}[{i}]")


def non_finite(state: Any) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold NaN or inf."""
    return [
        name for name, t in _tensors(state) if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


def save_checkpoint(path: str | Path, payload: dict[str, Any], identity: Mapping[str, Any]) -> None:
    """Write ``payload`` (tensors, containers, numbers, strings) stamped with ``identity``, atomically.

    Refuses (``NonFiniteCheckpointError``) when a tensor holds NaN/inf, leaving the previous file.
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
    with atomic_path(path) as temporary:
        torch.save(stamped, temporary)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The stamped payload of ``path``; refuses any file that holds more than tensors and containers."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"refusing checkpoint {path}: it holds objects other than tensors, numbers, strings, "
            f"lists and dicts, and loading them could run code ({first}). Delete it if you did not "
            "write it, or set finetune.resume=false to start afresh (the file is then overwritten)."
        ) from None
    except (OSError, RuntimeError, EOFError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"refusing checkpoint {path}: it is not a stamped checkpoint of format {CHECKPOINT_FORMAT} "
            "(written by an earlier version, or not by this project); delete it or set "
            "finetune.resume=false to start afresh"
        )
    return saved


def load_checkpoint(path: str | Path, identity: Mapping[str, Any]) -> dict[str, Any]:
    """``read_checkpoint``, then refuse it unless it was written under exactly ``identity``."""
    saved = read_checkpoint(path)
    differences = identity_differences(saved["identity"], identity)
    if differences:
        raise StaleCheckpointError(
            f"refusing to resume from {path}: it was written under other settings "
            f"(saved -> current):\n  " + "\n  ".join(differences) + "\nRestore those settings to "
            "continue that run, or set finetune.resume=false to start afresh (the file is then overwritten)."
        )
    bad = non_finite({k: saved[k] for k in ("trainable", "optimizer", "best_state") if k in saved})
    if bad:
        raise CheckpointError(f"refusing checkpoint {path}: non-finite values in {', '.join(bad[:5])}")
    return saved
