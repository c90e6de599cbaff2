"""The photo style: a soft grey digit on a colourful gradient with blotches and sensor noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lipsum_ft.digit_domains.canvas import (
    GLYPH_ALPHA_GAIN,
    blend,
    grid,
    hsv,
    luminance,
    scaled,
    smooth_field,
)

PHOTO_NOISE_STD = 0.05  # per-pixel sensor-like noise
PHOTO_TEXTURE_WEIGHT = 0.3  # weight of the blotchy low-frequency colour field
PHOTO_GLYPH_BLUR = 0.7  # soft (defocused) digit edge
PHOTO_GRID = 4  # coarse grid size of the blotchy colour field
PHOTO_SATURATION = (0.25, 0.75)  # photos are less saturated than paintings and clipart
PHOTO_VALUE = (0.35, 0.95)


def render(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth grey digit on a colourful gradient + blotches + sensor noise (a 'photo')."""
    yy, xx = grid(size)
    theta = rng.uniform(0, 2 * np.pi)
    t = (np.cos(theta) * xx + np.sin(theta) * yy) / size
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    c0 = hsv(rng.random(), rng.uniform(*PHOTO_SATURATION), rng.uniform(*PHOTO_VALUE))
    c1 = hsv(rng.random(), rng.uniform(*PHOTO_SATURATION), rng.uniform(*PHOTO_VALUE))
    background = c0 * (1 - t[..., None]) + c1 * t[..., None]
    blotches = smooth_field(rng, size, PHOTO_GRID) - 0.5
    background = np.clip(background + PHOTO_TEXTURE_WEIGHT * blotches, 0, 1)
    # Grey digit that contrasts with the background (light on dark, dark on light).
    dark_bg = luminance(background).mean() < 0.5
    grey = rng.uniform(0.8, 0.97) if dark_bg else rng.uniform(0.03, 0.22)
    alpha = np.clip(ndimage.gaussian_filter(ink, scaled(PHOTO_GLYPH_BLUR, size)) * GLYPH_ALPHA_GAIN, 0, 1)
    image = blend(background, np.full(3, grey), alpha)
    return image + rng.normal(0.0, PHOTO_NOISE_STD, image.shape)
