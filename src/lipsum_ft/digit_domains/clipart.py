"""The clipart style: a flat saturated fill with a dark outline on a flat background colour."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lipsum_ft.digit_domains.canvas import hsv, scaled

CLIPART_THRESHOLD = 0.42  # ink level that becomes the flat-filled digit
CLIPART_OUTLINE = (0.05, 0.05, 0.08)  # near-black outline colour


def render(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Flat saturated fill with a dark outline on a flat background colour."""
    mask = ink > CLIPART_THRESHOLD
    width = max(1, round(scaled(1.0, size)))
    outline = ndimage.binary_dilation(mask, iterations=width) & ~mask
    hue = rng.random()
    background = hsv(hue, rng.uniform(0.55, 1.0), rng.uniform(0.6, 1.0))
    fill = hsv(hue + rng.uniform(0.3, 0.7), rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0))
    image = np.broadcast_to(background, (size, size, 3)).copy()
    image[mask] = fill
    image[outline] = CLIPART_OUTLINE
    return image
