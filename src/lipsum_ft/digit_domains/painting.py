"""The painting style: a blurry, colour-jittered digit on a blotchy canvas with brush-stroke texture."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lipsum_ft.digit_domains.canvas import (
    GLYPH_ALPHA_GAIN,
    blend,
    hsv,
    luminance,
    scaled,
    smooth_field,
)

PAINTING_GRID = 3
PAINTING_STROKE_SIGMA = (0.6, 3.5)  # anisotropic blur turning noise into brush streaks
PAINTING_STROKE_WEIGHT = 0.08  # brush streak amplitude (in units of intensity)
PAINTING_STROKE_TINT = 0.5  # per-channel share of the streak noise (colour streaks)
PAINTING_GLYPH_BLUR = 1.0
PAINTING_FINAL_BLUR = 0.6
PAINTING_GAIN_JITTER = 0.15  # per-channel colour gain jitter
PAINTING_GAMMA_RANGE = (0.8, 1.25)  # global tone jitter
PAINTING_MIN_CONTRAST = 0.25  # min luma gap between paint and canvas, else the paint is pushed
PAINTING_CONTRAST_PUSH = 0.3  # factor pulling the paint towards black (or white)


def _brush_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Streaky noise (blurred along one axis) that reads as brush strokes."""
    sigma = tuple(scaled(s, size) for s in PAINTING_STROKE_SIGMA)
    if rng.random() < 0.5:
        sigma = sigma[::-1]  # vertical instead of horizontal strokes
    # Mostly shared across channels (light/dark streaks) with a little colour variation.
    noise = rng.normal(0, 1, (size, size, 1)) + PAINTING_STROKE_TINT * rng.normal(0, 1, (size, size, 3))
    streaks = ndimage.gaussian_filter(noise, (*sigma, 0))
    return streaks / max(streaks.std(), 1e-9)


def render(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Blurry, colour-jittered digit over a blotchy canvas with brush-stroke texture."""
    hue = rng.random()
    canvas = hsv(hue, rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.85))
    canvas = canvas + 0.5 * (smooth_field(rng, size, PAINTING_GRID) - 0.5)  # +-0.25 blotches
    brush = _brush_texture(rng, size)
    paint = hsv(hue + rng.uniform(0.35, 0.65), rng.uniform(0.7, 1.0), rng.uniform(0.5, 1.0))
    # Keep the digit's value far from the canvas's so it stays legible after blurring.
    canvas_luma = luminance(canvas).mean()
    if abs(luminance(paint) - canvas_luma) < PAINTING_MIN_CONTRAST:
        push = PAINTING_CONTRAST_PUSH
        paint = paint * push if canvas_luma > 0.5 else 1 - (1 - paint) * push
    alpha = np.clip(ndimage.gaussian_filter(ink, scaled(PAINTING_GLYPH_BLUR, size)) * GLYPH_ALPHA_GAIN, 0, 1)
    image = blend(canvas, paint, alpha) + PAINTING_STROKE_WEIGHT * brush
    gain = 1 + rng.uniform(-PAINTING_GAIN_JITTER, PAINTING_GAIN_JITTER, 3)
    image = np.clip(image * gain, 0, 1) ** rng.uniform(*PAINTING_GAMMA_RANGE)
    return ndimage.gaussian_filter(image, (scaled(PAINTING_FINAL_BLUR, size),) * 2 + (0,))
