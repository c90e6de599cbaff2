"""Source digits (sklearn's bundled 8x8 set), the seeded subset to render, and their stratified splits."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from lipsum_ft.digit_domains.config import SELECTION_STREAM, validate_split_fractions


@lru_cache(maxsize=1)
def source_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled sklearn digits (images 0..16, labels), loaded once per process. sklearn is imported
    here, not at the top: it takes about a second, which every `kedro run` would pay for the one
    pipeline (data) that renders the digits."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def select_digits(seed: int, max_digits: int | None) -> np.ndarray:
    """Sorted source indices to use: all, or the first N of a seeded shuffle (tiny trees)."""
    _, labels = source_digits()
    if max_digits is None or max_digits >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(np.random.SeedSequence([seed, SELECTION_STREAM]))
    return np.sort(rng.permutation(len(labels))[:max_digits])


def _split_counts(n: int, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Largest-remainder counts for one class, each split >= 1 whenever n allows it."""
    quota = n * fractions
    counts = np.floor(quota).astype(np.int64)
    remainder = quota - counts
    # Ties (and near-ties) are broken at random so no split is systematically favoured.
    order = np.lexsort((rng.random(len(fractions)), -np.round(remainder, 9)))
    counts[order[: n - counts.sum()]] += 1
    if n >= len(fractions):
        for empty in np.flatnonzero(counts == 0):
            counts[np.argmax(counts)] -= 1
            counts[empty] += 1
    return counts


def assign_splits(labels: np.ndarray, split_fractions: Mapping[str, float], seed: int) -> np.ndarray:
    """One split name per source digit, stratified by class and seeded.

    Splitting source digits (not images) keeps one person's handwriting out of two splits.
    """
    validate_split_fractions(split_fractions)
    labels = np.asarray(labels)
    names = sorted(split_fractions)  # key order must not change the assignment (stamps compare dicts)
    fractions = np.array([split_fractions[n] for n in names], dtype=np.float64)
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=object)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        counts = _split_counts(len(members), fractions, rng)
        out[members] = np.repeat(np.array(names, dtype=object), counts)
    return out.astype(str)
