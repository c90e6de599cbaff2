"""Bootstrap over test images: intervals for means, paired differences and rank correlations.

Images are resampled with replacement within each domain (the domains keep their sizes), and the same
resample serves every candidate, so paired differences and correlations keep their pairing. A
resample is a vector of counts per image; a resampled mean is then one matrix product.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def resample_counts(domain_sizes: Mapping[str, int], samples: int, seed: int) -> dict[str, np.ndarray]:
    """Per domain, a (samples x images) matrix: how often each image is drawn in each resample."""
    rng = np.random.default_rng(seed)
    return {
        domain: rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)
        for domain, n in domain_sizes.items()
    }


def resampled_means(matrix: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(samples x candidates) means of a (candidates x images) matrix under each resample."""
    return counts @ matrix.astype(np.float64).T / counts.shape[1]


def interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of bootstrap draws (NaN draws, e.g. an undefined correlation, dropped)."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def covers_zero(bounds: tuple[float, float]) -> bool:
    return bounds[0] <= 0 <= bounds[1]


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as Spearman needs."""
    frame = pd.DataFrame(np.atleast_2d(values))
    ranked = frame.rank(axis=1, method="average").to_numpy()
    return ranked if values.ndim > 1 else ranked[0]


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation along the last axis: the Pearson correlation of average ranks.

    NaN where either side is constant.
    """
    rx, ry = ranks(np.asarray(x, dtype=np.float64)), ranks(np.asarray(y, dtype=np.float64))
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=-1) / denominator, np.nan)
