"""Drawing helpers shared by every domain style, and the jittered ink map of the digit they all paint."""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
from scipy import ndimage

DIGIT_MAX_VALUE = 16.0  # load_digits() pixel values run 0..16
DIGIT_PAD = 2  # zero border added before resampling so strokes touching the 8x8 edge fade out

# Rendering constants are tuned at 32 px and scaled with the image size.
REFERENCE_SIZE = 32
JITTER_SHIFT_PX = 1.5  # max centre shift (reference px) for full-size domains
JITTER_ROTATION_DEG = 10.0  # max absolute rotation
FULL_SCALE_RANGE = (0.86, 1.0)  # fraction of the image side covered by the 8x8 digit box
INFOGRAPH_SCALE_RANGE = (0.5, 0.6)  # 16..19 px tall at 32 px: small but legible
INFOGRAPH_MARGIN_PX = 1.0  # keep the small digit this far inside the border
GLYPH_ALPHA_GAIN = 1.4  # blurred ink maps peak below 1; this restores a fully opaque stroke core


# --- small drawing helpers ------------------------------------------------------------
@lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), cached because every renderer needs them."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    return yy, xx


@lru_cache(maxsize=16)
def _interp_matrix(size: int, cells: int) -> np.ndarray:
    """(size, cells) linear-interpolation weights, to upsample a coarse grid by two matmuls."""
    pos = (np.arange(size) + 0.5) / size * (cells - 1)
    low = np.clip(np.floor(pos).astype(int), 0, cells - 2)
    frac = pos - low
    weights = np.zeros((size, cells))
    weights[np.arange(size), low] = 1.0 - frac
    weights[np.arange(size), low + 1] = frac
    return weights


def smooth_field(rng: np.random.Generator, size: int, cells: int, channels: int = 3) -> np.ndarray:
    """Random low-frequency field in [0, 1]: cheap 'blotchy' texture for photo and painting."""
    coarse = rng.random((channels, cells, cells))
    weights = _interp_matrix(size, cells)
    return np.moveaxis(weights @ coarse @ weights.T, 0, -1)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV (hue wraps) to an RGB float array, for readable colour choices."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def scaled(px: float, size: int) -> float:
    """Convert a reference-size (32 px) length to the current image size."""
    return px * size / REFERENCE_SIZE


def blend(base: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite a flat colour (or image) over ``base`` with a (H, W) alpha map."""
    a = alpha[..., None]
    return base * (1.0 - a) + colour * a


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma, used to pick contrasting digit colours."""
    return rgb @ np.array([0.299, 0.587, 0.114])


# --- glyph: the digit's ink map, upsampled smoothly with per-image jitter ---------------
def _place_glyph(
    digit: np.ndarray, size: int, scale: float, angle_deg: float, centre: tuple[float, float]
) -> np.ndarray:
    """Resample the 8x8 digit into a (size, size) ink map in [0, 1] with one affine warp.

    ``scale`` is the fraction of the image side covered by the digit box and ``centre`` the
    output (y, x) position of the digit's centre; cubic splines keep the strokes smooth.
    """
    ink = np.pad(np.asarray(digit, dtype=np.float64) / DIGIT_MAX_VALUE, DIGIT_PAD)
    box = np.asarray(digit).shape[0]
    step = box / (scale * size)  # input pixels per output pixel
    theta = np.deg2rad(angle_deg)
    matrix = step * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre_in = np.array(ink.shape, dtype=np.float64) / 2.0 - 0.5
    offset = centre_in - matrix @ np.asarray(centre, dtype=np.float64)
    warped = ndimage.affine_transform(
        ink, matrix, offset=offset, output_shape=(size, size), order=3, mode="constant", cval=0.0
    )
    return np.clip(warped, 0.0, 1.0)


def jittered_glyph(digit: np.ndarray, domain: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Random shift / rotation / scale so no two images are identical; infograph is small."""
    angle = rng.uniform(-JITTER_ROTATION_DEG, JITTER_ROTATION_DEG)
    mid = (size - 1) / 2.0
    if domain == "infograph":
        scale = rng.uniform(*INFOGRAPH_SCALE_RANGE)
        # Digit box half-extent, so the small digit stays inside the frame wherever it goes.
        reach = mid - scale * size / 2.0 - scaled(INFOGRAPH_MARGIN_PX, size)
        centre = (mid + rng.uniform(-reach, reach), mid + rng.uniform(-reach, reach))
    else:
        scale = rng.uniform(*FULL_SCALE_RANGE)
        shift = scaled(JITTER_SHIFT_PX, size)
        centre = (mid + rng.uniform(-shift, shift), mid + rng.uniform(-shift, shift))
    return _place_glyph(digit, size, scale, angle, centre)
