"""The infograph style: a small dark digit among chart clutter, kept legible by a clear halo."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from lipsum_ft.digit_domains.canvas import GLYPH_ALPHA_GAIN, blend, grid, hsv, scaled

INFOGRAPH_ITEMS = (5, 9)  # clutter items per image (inclusive low, exclusive high)
INFOGRAPH_HALO_PX = 1  # background ring kept clear around the digit so it stays legible
INFOGRAPH_INK_THRESHOLD = 0.3


def _clutter_colour(rng: np.random.Generator) -> np.ndarray:
    """Bright chart colours, deliberately lighter than the dark digit."""
    return hsv(rng.random(), rng.uniform(0.45, 0.9), rng.uniform(0.7, 1.0))


def _draw_bars(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A little bar chart standing on the bottom or top edge."""
    width = max(1, round(scaled(rng.uniform(1.5, 3.0), size)))
    count = int(rng.integers(2, 5))
    x0 = int(rng.integers(0, max(1, size - count * (width + 1))))
    colour = _clutter_colour(rng)
    from_top = rng.random() < 0.3
    for i in range(count):
        height = max(1, round(scaled(rng.uniform(3, 10), size)))
        x = x0 + i * (width + 1)
        rows = slice(0, height) if from_top else slice(size - height, size)
        image[rows, x : x + width] = colour


def _draw_block(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A small filled rectangle (legend swatch / icon)."""
    h = max(1, round(scaled(rng.uniform(2, 6), size)))
    w = max(1, round(scaled(rng.uniform(2, 7), size)))
    y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    image[y : y + h, x : x + w] = _clutter_colour(rng)


def _draw_line(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A thin horizontal rule or text-like dash, in grey."""
    length = max(2, round(scaled(rng.uniform(5, 14), size)))
    y, x = int(rng.integers(0, size)), int(rng.integers(0, size - length + 1))
    image[y, x : x + length] = rng.uniform(0.3, 0.6)


def _draw_disc(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A small coloured dot (pie / marker)."""
    yy, xx = grid(size)
    radius = scaled(rng.uniform(1.5, 3.5), size)
    cy, cx = rng.uniform(0, size, 2)
    image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = _clutter_colour(rng)


_CLUTTER: tuple[Callable[[np.ndarray, np.random.Generator, int], None], ...] = (
    _draw_bars,
    _draw_block,
    _draw_line,
    _draw_disc,
)


def render(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Small dark digit among chart clutter; a clear halo keeps the digit itself legible."""
    background = hsv(rng.random(), rng.uniform(0.0, 0.12), rng.uniform(0.93, 1.0))
    image = np.broadcast_to(background, (size, size, 3)).copy()
    for _ in range(int(rng.integers(*INFOGRAPH_ITEMS))):
        _CLUTTER[int(rng.integers(len(_CLUTTER)))](image, rng, size)
    body = ink > INFOGRAPH_INK_THRESHOLD
    halo = ndimage.binary_dilation(body, iterations=max(1, round(scaled(INFOGRAPH_HALO_PX, size))))
    image[halo] = background
    digit_colour = hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.15, 0.45))
    return blend(image, digit_colour, np.clip(ink * GLYPH_ALPHA_GAIN, 0, 1))
