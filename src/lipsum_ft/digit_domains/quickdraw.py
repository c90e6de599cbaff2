"""The quickdraw style: thresholded pure black strokes on pure white, like QuickDraw doodles."""

from __future__ import annotations

import numpy as np

QUICKDRAW_THRESHOLD_RANGE = (0.42, 0.55)  # higher = thinner strokes, but faint strokes break


def render(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Thresholded pure black strokes on pure white, like QuickDraw doodles."""
    strokes = ink > rng.uniform(*QUICKDRAW_THRESHOLD_RANGE)
    return np.repeat((~strokes).astype(np.float64)[..., None], 3, axis=2)
