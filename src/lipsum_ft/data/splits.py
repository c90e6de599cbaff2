"""Carve a validation split out of a training split, per domain, stratified by label.

DomainNet ships only ``train`` and ``test`` split files; model selection needs held-out rows that
are not the test set, so a seeded, class-balanced slice of ``train`` is relabelled ``val``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lipsum_ft.data.errors import DataInputError

MIN_ROWS_TO_SPLIT = 2  # a class needs this many rows before one can leave ``from_split``
ROUND_HALF_UP = 0.5  # added before ``floor``: 0.5 rounds up, unlike Python's banker's ``round``


def rows_to_carve(count: int, fraction: float) -> int:
    """How many of a class's ``count`` rows move: ``floor(fraction * count + 0.5)``, capped at ``count - 1``.

    Round-half-up (not banker's rounding) so that a class whose share ``fraction * count`` reaches
    0.5 gets at least one held-out row; the cap keeps at least one row in the source split, and a
    class with fewer than ``MIN_ROWS_TO_SPLIT`` rows keeps all of them.
    """
    if count < MIN_ROWS_TO_SPLIT:
        return 0
    return min(count - 1, math.floor(fraction * count + ROUND_HALF_UP))


def carve_validation(
    manifest: pd.DataFrame,
    domain: str,
    from_split: str = "train",
    to_split: str = "val",
    fraction: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """Move a seeded, label-stratified ``fraction`` of ``domain``'s ``from_split`` rows into ``to_split``.

    Per label, ``rows_to_carve(count, fraction)`` rows move (see there for the rounding); which ones
    is drawn from a generator seeded by ``(seed, label)``, so the pick of one class does not depend
    on the others and the result is identical for the same manifest and seed. Only ``split`` and
    ``source`` of the moved rows change (``source`` keeps its split-file line and says it was
    carved); all other rows, the index and the row order are untouched. Returns a new frame.
    """
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise DataInputError(
            f"carve_validation: fraction must lie in (0, 1), got {fraction!r} (domain {domain!r})"
        )
    if seed < 0:
        raise DataInputError(f"carve_validation: seed must be >= 0, got {seed}")
    if from_split == to_split:
        raise DataInputError(
            f"carve_validation: from_split and to_split are both {from_split!r} (domain {domain!r})"
        )
    in_domain = (manifest["domain"] == domain).to_numpy()
    positions = np.flatnonzero(in_domain & (manifest["split"] == from_split).to_numpy())
    if len(positions) == 0:
        raise DataInputError(f"carve_validation: domain {domain!r} has no rows in split {from_split!r}")
    if (in_domain & (manifest["split"] == to_split).to_numpy()).any():
        raise DataInputError(f"carve_validation: domain {domain!r} already has rows in split {to_split!r}")
    labels = manifest["label"].to_numpy()[positions]
    if (labels < 0).any():
        raise DataInputError(f"carve_validation: domain {domain!r} split {from_split!r} has negative labels")

    moved: list[int] = []
    for label in np.unique(labels):  # positions, not index labels: works for any index
        rows = positions[labels == label]
        count = rows_to_carve(len(rows), fraction)
        if count:
            rng = np.random.default_rng([seed, int(label)])
            moved.extend(rows[np.sort(rng.permutation(len(rows))[:count])])

    carved = manifest.copy()
    split_col, source_col = carved.columns.get_loc("split"), carved.columns.get_loc("source")
    carved.iloc[moved, split_col] = to_split
    carved.iloc[moved, source_col] = (
        carved.iloc[moved, source_col].astype(str) + f" (carved into {to_split!r}, seed {seed})"
    )
    return carved
