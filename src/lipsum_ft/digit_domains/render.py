"""Turns one source digit into one domain image: the domain -> style table and the per-image generator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lipsum_ft.digit_domains.canvas import jittered_glyph
from lipsum_ft.digit_domains.clipart import render as render_clipart
from lipsum_ft.digit_domains.config import DOMAINS, IMAGE_STREAM
from lipsum_ft.digit_domains.infograph import render as render_infograph
from lipsum_ft.digit_domains.painting import render as render_painting
from lipsum_ft.digit_domains.photo import render as render_photo
from lipsum_ft.digit_domains.quickdraw import render as render_quickdraw
from lipsum_ft.digit_domains.sketch import render as render_sketch

Renderer = Callable[[np.ndarray, np.random.Generator, int], np.ndarray]
"""A domain style: (ink map, rng, size) -> float RGB image in [0, 1]."""

RENDERERS: dict[str, Renderer] = {
    "photo": render_photo,
    "sketch": render_sketch,
    "clipart": render_clipart,
    "painting": render_painting,
    "infograph": render_infograph,
    "quickdraw": render_quickdraw,
}


def render_image(digit: np.ndarray, domain: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Render one source digit (8x8, values 0..16) in ``domain`` as a (size, size, 3) uint8 image."""
    if domain not in RENDERERS:
        raise ValueError(f"unknown domain {domain!r}; valid domains: {', '.join(DOMAINS)}")
    ink = jittered_glyph(digit, domain, rng, size)
    rgb = RENDERERS[domain](ink, rng, size)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def image_rng(seed: int, domain: str, digit_index: int) -> np.random.Generator:
    """Independent generator per image, so output never depends on iteration order."""
    entropy = [IMAGE_STREAM, int(seed), DOMAINS.index(domain), int(digit_index)]
    return np.random.default_rng(np.random.SeedSequence(entropy))
