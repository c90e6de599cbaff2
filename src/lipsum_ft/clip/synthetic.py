"""DigitDomains: a small, embedded multi-domain image dataset in the spirit of DomainNet.

Why it exists: robust fine-tuning experiments need several visual *domains* that share
one label space, so that a model fine-tuned on one domain can be evaluated under
distribution shift on the others. Downloading DomainNet is too heavy for a reproducible,
offline project, so this module renders scikit-learn's bundled 8x8 handwritten digits in
six styles (photo, sketch, clipart, painting, infograph, quickdraw) and writes them in the
DomainNet on-disk layout (``<domain>/<class>/<file>.png`` plus ``<domain>_<split>.txt``).

Everything is seeded: each image's random generator is derived from
``(seed, domain index, digit index)``, so the same configuration always produces
byte-identical files regardless of iteration order. A source digit (one person's
handwriting sample) is assigned to exactly one split, so all its renderings share it.

This module deliberately depends only on numpy, scipy, PIL, scikit-learn and tqdm (no Kedro),
so it can be used from tests, notebooks and pipeline nodes alike.
"""

from __future__ import annotations

import colorsys
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from sklearn.datasets import load_digits
from tqdm import tqdm

CLASS_NAMES: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
"""Label ``i`` is the digit ``i``; its class folder and text-prompt name is ``CLASS_NAMES[i]``."""

DOMAINS: tuple[str, ...] = ("photo", "sketch", "clipart", "painting", "infograph", "quickdraw")
"""All domains, in canonical order; the order fixes each domain's seed stream index."""

FORMAT_VERSION = 1
"""Bump whenever rendering or layout changes, so stale trees on disk get regenerated."""

STAMP_FILE = "digit_domains.json"
CLASSNAMES_FILE = "classnames.txt"

# --- source digits ----------------------------------------------------------------------
DIGIT_MAX_VALUE = 16.0  # load_digits() pixel values run 0..16
DIGIT_PAD = 2  # zero border added before resampling so strokes touching the 8x8 edge fade out
SELECTION_STREAM = 1  # SeedSequence entropy suffix for the digit shuffle (distinct from splits)
IMAGE_STREAM = 2  # SeedSequence entropy prefix for per-image generators

# --- geometry: rendering constants are tuned at 32 px and scaled with the image size ----
REFERENCE_SIZE = 32
JITTER_SHIFT_PX = 1.5  # max centre shift (reference px) for full-size domains
JITTER_ROTATION_DEG = 10.0  # max absolute rotation
FULL_SCALE_RANGE = (0.86, 1.0)  # fraction of the image side covered by the 8x8 digit box
INFOGRAPH_SCALE_RANGE = (0.5, 0.6)  # 16..19 px tall at 32 px: small but legible
INFOGRAPH_MARGIN_PX = 1.0  # keep the small digit this far inside the border

# --- photo ---------------------------------------------------------------------------
PHOTO_NOISE_STD = 0.05  # per-pixel sensor-like noise
PHOTO_TEXTURE_WEIGHT = 0.3  # weight of the blotchy low-frequency colour field
PHOTO_GLYPH_BLUR = 0.7  # soft (defocused) digit edge
PHOTO_GRID = 4  # coarse grid size of the blotchy colour field
PHOTO_SATURATION = (0.25, 0.75)  # photos are less saturated than paintings and clipart
PHOTO_VALUE = (0.35, 0.95)
GLYPH_ALPHA_GAIN = 1.4  # blurred ink maps peak below 1; this restores a fully opaque stroke core

# --- sketch --------------------------------------------------------------------------
SKETCH_PAPER_RANGE = (0.88, 0.95)  # off-white paper brightness (never pure white)
SKETCH_PAPER_NOISE = 0.015
SKETCH_PENCIL_RANGE = (0.15, 0.35)  # graphite grey
SKETCH_HATCH_PERIOD = 3.0  # reference px between hatch lines
SKETCH_HATCH_STRENGTH = 0.45  # hatch darkness relative to the outline
SKETCH_INK_THRESHOLD = 0.45  # where the digit "body" is, for hatching
SKETCH_LINE_BLUR = 0.6  # smooths the ink before taking edges, so outlines are continuous
SKETCH_EDGE_GAIN = 1.6  # edge strength (relative to the image's max) that becomes full darkness
SKETCH_HATCH_DUTY = 0.4  # fraction of each hatch period that is a pencil line

# --- clipart -------------------------------------------------------------------------
CLIPART_THRESHOLD = 0.42  # ink level that becomes the flat-filled digit
CLIPART_OUTLINE = (0.05, 0.05, 0.08)  # near-black outline colour

# --- painting ------------------------------------------------------------------------
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

# --- infograph -----------------------------------------------------------------------
INFOGRAPH_ITEMS = (5, 9)  # clutter items per image (inclusive low, exclusive high)
INFOGRAPH_HALO_PX = 1  # background ring kept clear around the digit so it stays legible
INFOGRAPH_INK_THRESHOLD = 0.3

# --- quickdraw -----------------------------------------------------------------------
QUICKDRAW_THRESHOLD_RANGE = (0.42, 0.55)  # higher = thinner strokes, but faint strokes break

Rgb = tuple[float, float, float]
Renderer = Callable[[np.ndarray, np.random.Generator, int], np.ndarray]


# =====================================================================================
# Configuration
# =====================================================================================
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _validate_domains(domains: tuple[str, ...]) -> None:
    """Reject unknown or repeated domains early, naming the offender."""
    if not domains:
        raise ValueError(f"domains must not be empty; valid domains: {', '.join(DOMAINS)}")
    for name in domains:
        if name not in DOMAINS:
            raise ValueError(f"unknown domain {name!r}; valid domains: {', '.join(DOMAINS)}")
    if len(set(domains)) != len(domains):
        raise ValueError(f"domains must not repeat: {list(domains)}")


def _validate_split_fractions(fractions: Mapping[str, float]) -> None:
    """Fractions must be positive and sum to one, so every split gets images."""
    if not fractions:
        raise ValueError("split_fractions must name at least one split")
    for name, value in fractions.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name):
            raise ValueError(f"split name {name!r} must match {_SPLIT_NAME.pattern}")
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"split fraction {name!r}={value!r} must be > 0")
    total = float(sum(fractions.values()))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {total!r} from {dict(fractions)}")


@dataclass(frozen=True)
class DigitDomainsConfig:
    """Everything that determines the generated tree; equal configs give identical bytes."""

    root: Path
    domains: tuple[str, ...]
    split_fractions: Mapping[str, float] = field(hash=False)
    image_size: int = 32
    seed: int = 0
    max_digits: int | None = None

    def __post_init__(self) -> None:
        # Normalise inputs from YAML/Kedro params (lists, str paths) into the declared types.
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "domains", tuple(str(d) for d in self.domains))
        object.__setattr__(
            self, "split_fractions", {str(k): float(v) for k, v in self.split_fractions.items()}
        )
        _validate_domains(self.domains)
        _validate_split_fractions(self.split_fractions)
        if int(self.image_size) != self.image_size or self.image_size < 8:
            raise ValueError(f"image_size={self.image_size!r} must be an integer >= 8")
        if self.max_digits is not None and self.max_digits < 1:
            raise ValueError(f"max_digits={self.max_digits!r} must be >= 1 or None")

    def to_stamp(self) -> dict:
        """JSON-able identity of the tree (root excluded, so a moved tree is still valid)."""
        return {
            "domains": list(self.domains),
            "split_fractions": dict(self.split_fractions),
            "image_size": int(self.image_size),
            "seed": int(self.seed),
            "max_digits": None if self.max_digits is None else int(self.max_digits),
        }


# =====================================================================================
# Source digits and splits
# =====================================================================================
@lru_cache(maxsize=1)
def _source_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled sklearn digits (images 0..16, labels), loaded once per process."""
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _select_digits(seed: int, max_digits: int | None) -> np.ndarray:
    """Sorted source indices to use: all, or the first N of a seeded shuffle (tiny trees)."""
    _, labels = _source_digits()
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
    _validate_split_fractions(split_fractions)
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


# =====================================================================================
# Small drawing helpers
# =====================================================================================
@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
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


def _smooth_field(rng: np.random.Generator, size: int, cells: int, channels: int = 3) -> np.ndarray:
    """Random low-frequency field in [0, 1]: cheap 'blotchy' texture for photo and painting."""
    coarse = rng.random((channels, cells, cells))
    weights = _interp_matrix(size, cells)
    return np.moveaxis(weights @ coarse @ weights.T, 0, -1)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV (hue wraps) to an RGB float array, for readable colour choices."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _scaled(px: float, size: int) -> float:
    """Convert a reference-size (32 px) length to the current image size."""
    return px * size / REFERENCE_SIZE


def _blend(base: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite a flat colour (or image) over ``base`` with a (H, W) alpha map."""
    a = alpha[..., None]
    return base * (1.0 - a) + colour * a


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma, used to pick contrasting digit colours."""
    return rgb @ np.array([0.299, 0.587, 0.114])


# =====================================================================================
# Glyph: the digit's ink map, upsampled smoothly with per-image jitter
# =====================================================================================
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


def _jittered_glyph(digit: np.ndarray, domain: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Random shift / rotation / scale so no two images are identical; infograph is small."""
    angle = rng.uniform(-JITTER_ROTATION_DEG, JITTER_ROTATION_DEG)
    mid = (size - 1) / 2.0
    if domain == "infograph":
        scale = rng.uniform(*INFOGRAPH_SCALE_RANGE)
        # Digit box half-extent, so the small digit stays inside the frame wherever it goes.
        reach = mid - scale * size / 2.0 - _scaled(INFOGRAPH_MARGIN_PX, size)
        centre = (mid + rng.uniform(-reach, reach), mid + rng.uniform(-reach, reach))
    else:
        scale = rng.uniform(*FULL_SCALE_RANGE)
        shift = _scaled(JITTER_SHIFT_PX, size)
        centre = (mid + rng.uniform(-shift, shift), mid + rng.uniform(-shift, shift))
    return _place_glyph(digit, size, scale, angle, centre)


# =====================================================================================
# Domain renderers: (ink map, rng, size) -> float RGB image in [0, 1]
# =====================================================================================
def _render_photo(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth grey digit on a colourful gradient + blotches + sensor noise (a 'photo')."""
    yy, xx = _grid(size)
    theta = rng.uniform(0, 2 * np.pi)
    t = (np.cos(theta) * xx + np.sin(theta) * yy) / size
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    c0 = _hsv(rng.random(), rng.uniform(*PHOTO_SATURATION), rng.uniform(*PHOTO_VALUE))
    c1 = _hsv(rng.random(), rng.uniform(*PHOTO_SATURATION), rng.uniform(*PHOTO_VALUE))
    background = c0 * (1 - t[..., None]) + c1 * t[..., None]
    blotches = _smooth_field(rng, size, PHOTO_GRID) - 0.5
    background = np.clip(background + PHOTO_TEXTURE_WEIGHT * blotches, 0, 1)
    # Grey digit that contrasts with the background (light on dark, dark on light).
    dark_bg = _luminance(background).mean() < 0.5
    grey = rng.uniform(0.8, 0.97) if dark_bg else rng.uniform(0.03, 0.22)
    alpha = np.clip(ndimage.gaussian_filter(ink, _scaled(PHOTO_GLYPH_BLUR, size)) * GLYPH_ALPHA_GAIN, 0, 1)
    image = _blend(background, np.full(3, grey), alpha)
    return image + rng.normal(0.0, PHOTO_NOISE_STD, image.shape)


def _render_sketch(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Pencil outline plus light hatching on off-white paper: edges, not filled strokes."""
    yy, xx = _grid(size)
    smooth = ndimage.gaussian_filter(ink, _scaled(SKETCH_LINE_BLUR, size))
    gy, gx = np.gradient(smooth)
    edges = np.hypot(gx, gy)
    edges = np.clip(edges / max(edges.max(), 1e-9) * SKETCH_EDGE_GAIN, 0, 1)
    angle = rng.uniform(np.pi / 6, np.pi / 3) * rng.choice([-1, 1])  # 30..60 deg diagonal hatching
    phase = (np.cos(angle) * xx + np.sin(angle) * yy) / _scaled(SKETCH_HATCH_PERIOD, size)
    hatch = (np.mod(phase + rng.random(), 1.0) < SKETCH_HATCH_DUTY) * (smooth > SKETCH_INK_THRESHOLD)
    strokes = np.maximum(edges, SKETCH_HATCH_STRENGTH * hatch)
    strokes *= rng.uniform(0.75, 1.0, strokes.shape)  # uneven pencil pressure
    paper_level = rng.uniform(*SKETCH_PAPER_RANGE)
    paper = np.array([paper_level, paper_level * 0.99, paper_level * 0.96])  # warm tint
    paper = paper + rng.normal(0, SKETCH_PAPER_NOISE, (size, size, 1))
    pencil = np.full(3, rng.uniform(*SKETCH_PENCIL_RANGE))
    return _blend(paper, pencil, strokes)


def _render_clipart(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Flat saturated fill with a dark outline on a flat background colour."""
    mask = ink > CLIPART_THRESHOLD
    width = max(1, round(_scaled(1.0, size)))
    outline = ndimage.binary_dilation(mask, iterations=width) & ~mask
    hue = rng.random()
    background = _hsv(hue, rng.uniform(0.55, 1.0), rng.uniform(0.6, 1.0))
    fill = _hsv(hue + rng.uniform(0.3, 0.7), rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0))
    image = np.broadcast_to(background, (size, size, 3)).copy()
    image[mask] = fill
    image[outline] = CLIPART_OUTLINE
    return image


def _brush_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Streaky noise (blurred along one axis) that reads as brush strokes."""
    sigma = tuple(_scaled(s, size) for s in PAINTING_STROKE_SIGMA)
    if rng.random() < 0.5:
        sigma = sigma[::-1]  # vertical instead of horizontal strokes
    # Mostly shared across channels (light/dark streaks) with a little colour variation.
    noise = rng.normal(0, 1, (size, size, 1)) + PAINTING_STROKE_TINT * rng.normal(0, 1, (size, size, 3))
    streaks = ndimage.gaussian_filter(noise, (*sigma, 0))
    return streaks / max(streaks.std(), 1e-9)


def _render_painting(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Blurry, colour-jittered digit over a blotchy canvas with brush-stroke texture."""
    hue = rng.random()
    canvas = _hsv(hue, rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.85))
    canvas = canvas + 0.5 * (_smooth_field(rng, size, PAINTING_GRID) - 0.5)  # +-0.25 blotches
    brush = _brush_texture(rng, size)
    paint = _hsv(hue + rng.uniform(0.35, 0.65), rng.uniform(0.7, 1.0), rng.uniform(0.5, 1.0))
    # Keep the digit's value far from the canvas's so it stays legible after blurring.
    canvas_luma = _luminance(canvas).mean()
    if abs(_luminance(paint) - canvas_luma) < PAINTING_MIN_CONTRAST:
        push = PAINTING_CONTRAST_PUSH
        paint = paint * push if canvas_luma > 0.5 else 1 - (1 - paint) * push
    alpha = np.clip(ndimage.gaussian_filter(ink, _scaled(PAINTING_GLYPH_BLUR, size)) * GLYPH_ALPHA_GAIN, 0, 1)
    image = _blend(canvas, paint, alpha) + PAINTING_STROKE_WEIGHT * brush
    gain = 1 + rng.uniform(-PAINTING_GAIN_JITTER, PAINTING_GAIN_JITTER, 3)
    image = np.clip(image * gain, 0, 1) ** rng.uniform(*PAINTING_GAMMA_RANGE)
    return ndimage.gaussian_filter(image, (_scaled(PAINTING_FINAL_BLUR, size),) * 2 + (0,))


def _clutter_colour(rng: np.random.Generator) -> np.ndarray:
    """Bright chart colours, deliberately lighter than the dark digit."""
    return _hsv(rng.random(), rng.uniform(0.45, 0.9), rng.uniform(0.7, 1.0))


def _draw_bars(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A little bar chart standing on the bottom or top edge."""
    width = max(1, round(_scaled(rng.uniform(1.5, 3.0), size)))
    count = int(rng.integers(2, 5))
    x0 = int(rng.integers(0, max(1, size - count * (width + 1))))
    colour = _clutter_colour(rng)
    from_top = rng.random() < 0.3
    for i in range(count):
        height = max(1, round(_scaled(rng.uniform(3, 10), size)))
        x = x0 + i * (width + 1)
        rows = slice(0, height) if from_top else slice(size - height, size)
        image[rows, x : x + width] = colour


def _draw_block(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A small filled rectangle (legend swatch / icon)."""
    h = max(1, round(_scaled(rng.uniform(2, 6), size)))
    w = max(1, round(_scaled(rng.uniform(2, 7), size)))
    y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    image[y : y + h, x : x + w] = _clutter_colour(rng)


def _draw_line(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A thin horizontal rule or text-like dash, in grey."""
    length = max(2, round(_scaled(rng.uniform(5, 14), size)))
    y, x = int(rng.integers(0, size)), int(rng.integers(0, size - length + 1))
    image[y, x : x + length] = rng.uniform(0.3, 0.6)


def _draw_disc(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A small coloured dot (pie / marker)."""
    yy, xx = _grid(size)
    radius = _scaled(rng.uniform(1.5, 3.5), size)
    cy, cx = rng.uniform(0, size, 2)
    image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = _clutter_colour(rng)


_CLUTTER: tuple[Callable[[np.ndarray, np.random.Generator, int], None], ...] = (
    _draw_bars,
    _draw_block,
    _draw_line,
    _draw_disc,
)


def _render_infograph(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Small dark digit among chart clutter; a clear halo keeps the digit itself legible."""
    background = _hsv(rng.random(), rng.uniform(0.0, 0.12), rng.uniform(0.93, 1.0))
    image = np.broadcast_to(background, (size, size, 3)).copy()
    for _ in range(int(rng.integers(*INFOGRAPH_ITEMS))):
        _CLUTTER[int(rng.integers(len(_CLUTTER)))](image, rng, size)
    body = ink > INFOGRAPH_INK_THRESHOLD
    halo = ndimage.binary_dilation(body, iterations=max(1, round(_scaled(INFOGRAPH_HALO_PX, size))))
    image[halo] = background
    digit_colour = _hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.15, 0.45))
    return _blend(image, digit_colour, np.clip(ink * GLYPH_ALPHA_GAIN, 0, 1))


def _render_quickdraw(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Thresholded pure black strokes on pure white, like QuickDraw doodles."""
    strokes = ink > rng.uniform(*QUICKDRAW_THRESHOLD_RANGE)
    return np.repeat((~strokes).astype(np.float64)[..., None], 3, axis=2)


_RENDERERS: dict[str, Renderer] = {
    "photo": _render_photo,
    "sketch": _render_sketch,
    "clipart": _render_clipart,
    "painting": _render_painting,
    "infograph": _render_infograph,
    "quickdraw": _render_quickdraw,
}


def render_image(digit: np.ndarray, domain: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Render one source digit (8x8, values 0..16) in ``domain`` as a (size, size, 3) uint8 image."""
    if domain not in _RENDERERS:
        raise ValueError(f"unknown domain {domain!r}; valid domains: {', '.join(DOMAINS)}")
    ink = _jittered_glyph(digit, domain, rng, size)
    rgb = _RENDERERS[domain](ink, rng, size)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _image_rng(seed: int, domain: str, digit_index: int) -> np.random.Generator:
    """Independent generator per image, so output never depends on iteration order."""
    entropy = [IMAGE_STREAM, int(seed), DOMAINS.index(domain), int(digit_index)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


# =====================================================================================
# Writing the DomainNet-style tree
# =====================================================================================
def _image_relpath(domain: str, label: int, digit_index: int) -> str:
    """DomainNet-style relative path: ``<domain>/<class>/<domain>_<index>.png``."""
    return f"{domain}/{CLASS_NAMES[label]}/{domain}_{digit_index:04d}.png"


def _iter_jobs(config: DigitDomainsConfig, indices: np.ndarray) -> Iterator[tuple[str, int]]:
    """All (domain, source index) pairs to render, domain-major for tidy progress."""
    for domain in config.domains:
        for index in indices:
            yield domain, int(index)


def _stamp_matches(config: DigitDomainsConfig) -> bool:
    """True when the tree on disk was made from this exact config and format version."""
    stamp_path = config.root / STAMP_FILE
    if not stamp_path.is_file():
        return False
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if stamp.get("format_version") != FORMAT_VERSION or stamp.get("config") != config.to_stamp():
        return False
    return all(
        (config.root / f"{d}_{s}.txt").is_file() for d in config.domains for s in config.split_fractions
    )


def _summary(config: DigitDomainsConfig, num_images: int, regenerated: bool) -> dict:
    """The return value of :func:`write_digit_domains`."""
    return {
        "root": str(config.root),
        "domains": list(config.domains),
        "splits": list(config.split_fractions),
        "classnames": list(CLASS_NAMES),
        "num_images": int(num_images),
        "regenerated": regenerated,
    }


def _render_tree(config: DigitDomainsConfig, target: Path, progress: bool) -> int:
    """Render every image, split file, class list and stamp into ``target``; returns #images."""
    images, labels = _source_digits()
    indices = _select_digits(config.seed, config.max_digits)
    splits = assign_splits(labels[indices], config.split_fractions, config.seed)
    split_of = dict(zip(indices.tolist(), splits.tolist()))
    for domain in config.domains:
        for name in CLASS_NAMES:
            (target / domain / name).mkdir(parents=True, exist_ok=True)

    lines: dict[tuple[str, str], list[str]] = {
        (d, s): [] for d in config.domains for s in config.split_fractions
    }
    total = len(config.domains) * len(indices)
    for domain, index in tqdm(
        _iter_jobs(config, indices), total=total, disable=not progress, desc="DigitDomains", unit="img"
    ):
        label = int(labels[index])
        rel = _image_relpath(domain, label, index)
        pixels = render_image(images[index], domain, _image_rng(config.seed, domain, index), config.image_size)
        Image.fromarray(pixels, mode="RGB").save(target / rel, format="PNG")
        lines[(domain, split_of[index])].append(f"{rel} {label}")

    for (domain, split), entries in lines.items():
        (target / f"{domain}_{split}.txt").write_text("\n".join(sorted(entries)) + "\n", encoding="utf-8")
    (target / CLASSNAMES_FILE).write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    counts = {
        domain: {split: len(lines[(domain, split)]) for split in config.split_fractions}
        for domain in config.domains
    }
    stamp = {
        "format_version": FORMAT_VERSION,
        "config": config.to_stamp(),
        "num_images": total,
        "num_source_digits": len(indices),
        "counts": counts,
    }
    # Written last: a stamp only ever describes a complete tree.
    (target / STAMP_FILE).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return total


_TREE_ENTRY = re.compile(
    rf"^(({'|'.join(DOMAINS)})(_[A-Za-z0-9][A-Za-z0-9_-]*\.txt)?"
    rf"|{re.escape(CLASSNAMES_FILE)}|{re.escape(STAMP_FILE)})$"
)  # what write_digit_domains puts directly under a root


def _check_replaceable(root: Path) -> None:
    """Refuse to replace a root holding anything but DigitDomains output (a mistyped root
    such as ``data/01_raw`` must never be deleted by the swap)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise FileExistsError(f"DigitDomains root {root} exists and is not a directory")
    foreign = sorted(p.name for p in root.iterdir() if not _TREE_ENTRY.match(p.name))
    if foreign:
        raise FileExistsError(
            f"refusing to replace {root}: it holds entries that DigitDomains did not write "
            f"({', '.join(foreign[:5])}); choose an empty or dedicated root folder"
        )


def _swap_into_place(staged: Path, root: Path) -> None:
    """Replace ``root`` by ``staged`` with renames, restoring the old tree if the swap fails."""
    retired = root.with_name(f"{root.name}.old-{secrets.token_hex(4)}")
    had_old = root.exists()
    if had_old:
        os.replace(root, retired)
    try:
        os.replace(staged, root)
    except BaseException:
        if had_old:
            os.replace(retired, root)
        raise
    if had_old:
        shutil.rmtree(retired, ignore_errors=True)


def write_digit_domains(config: DigitDomainsConfig, progress: bool = True) -> dict:
    """Write (or reuse) the DigitDomains tree at ``config.root``, atomically.

    Rendering happens in a temporary sibling folder that replaces the root only when
    complete, so readers never see a half-written tree and a failure leaves the old one.
    """
    if _stamp_matches(config):
        stamp = json.loads((config.root / STAMP_FILE).read_text(encoding="utf-8"))
        return _summary(config, stamp.get("num_images", 0), regenerated=False)
    root = config.root
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staged = root.with_name(f"{root.name}.tmp-{secrets.token_hex(4)}")
    staged.mkdir()
    try:
        num_images = _render_tree(config, staged, progress)
        _swap_into_place(staged, root)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return _summary(config, num_images, regenerated=True)


def preview_grid(config: DigitDomainsConfig, per_domain: int = 10) -> np.ndarray:
    """One row per domain of the first ``per_domain`` digits, for READMEs and reports."""
    images, _ = _source_digits()
    indices = _select_digits(config.seed, config.max_digits)[:per_domain]
    size = config.image_size
    rows = [
        np.concatenate(
            [render_image(images[i], d, _image_rng(config.seed, d, int(i)), size) for i in indices],
            axis=1,
        )
        for d in config.domains
    ]
    return np.concatenate(rows, axis=0)
