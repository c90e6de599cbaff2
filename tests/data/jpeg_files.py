"""JPEG files for the image-loading tests: smooth (so resampling is well defined), of chosen sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # CLIP's


def smooth_jpeg(path, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(path, quality=92)


def jpegs(
    folder: Path,
    count: int,
    first: int = 0,
    base: tuple[int, int] = (90, 140),
    step: tuple[int, int] = (13, -7),
) -> list[str]:
    """``count`` JPEGs ``<i>.jpg`` (i from ``first``), image i of height ``base[0] + step[0] * i`` and
    width ``base[1] + step[1] * i``: different, non-square sizes, so the eval transform resizes and crops
    each differently."""
    paths = []
    for i in range(first, first + count):
        paths.append(str(folder / f"{i}.jpg"))
        smooth_jpeg(paths[-1], base[0] + step[0] * i, base[1] + step[1] * i, seed=i)
    return paths
