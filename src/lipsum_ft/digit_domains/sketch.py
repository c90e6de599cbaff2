"""The sketch style: a pencil outline with light hatching on off-white paper (edges, not fills)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lipsum_ft.digit_domains.canvas import blend, grid, scaled

SKETCH_PAPER_RANGE = (0.88, 0.95)  # off-white paper brightness (never pure white)
SKETCH_PAPER_NOISE = 0.015
SKETCH_PENCIL_RANGE = (0.15, 0.35)  # graphite grey
SKETCH_HATCH_PERIOD = 3.0  # reference px between hatch lines
SKETCH_HATCH_STRENGTH = 0.45  # hatch darkness relative to the outline
SKETCH_INK_THRESHOLD = 0.45  # where the digit "body" is, for hatching
SKETCH_LINE_BLUR = 0.6  # smooths the ink before taking edges, so outlines are continuous
SKETCH_EDGE_GAIN = 1.6  # edge strength (relative to the image's max) that becomes full darkness
SKETCH_HATCH_DUTY = 0.4  # fraction of each hatch period that is a pencil line


def render(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Pencil outline plus light hatching on off-white paper: edges, not filled strokes."""
    yy, xx = grid(size)
    smooth = ndimage.gaussian_filter(ink, scaled(SKETCH_LINE_BLUR, size))
    gy, gx = np.gradient(smooth)
    edges = np.hypot(gx, gy)
    edges = np.clip(edges / max(edges.max(), 1e-9) * SKETCH_EDGE_GAIN, 0, 1)
    angle = rng.uniform(np.pi / 6, np.pi / 3) * rng.choice([-1, 1])  # 30..60 deg diagonal hatching
    phase = (np.cos(angle) * xx + np.sin(angle) * yy) / scaled(SKETCH_HATCH_PERIOD, size)
    hatch = (np.mod(phase + rng.random(), 1.0) < SKETCH_HATCH_DUTY) * (smooth > SKETCH_INK_THRESHOLD)
    strokes = np.maximum(edges, SKETCH_HATCH_STRENGTH * hatch)
    strokes *= rng.uniform(0.75, 1.0, strokes.shape)  # uneven pencil pressure
    paper_level = rng.uniform(*SKETCH_PAPER_RANGE)
    paper = np.array([paper_level, paper_level * 0.99, paper_level * 0.96])  # warm tint
    paper = paper + rng.normal(0, SKETCH_PAPER_NOISE, (size, size, 1))
    pencil = np.full(3, rng.uniform(*SKETCH_PENCIL_RANGE))
    return blend(paper, pencil, strokes)
