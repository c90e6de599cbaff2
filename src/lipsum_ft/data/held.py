"""Streamed image sets decoded once and held in memory while many models read them.

Evaluation scores every variant (zero-shot, fine-tuned, each WiSE alpha, TPGM; hundreds of candidates
in the ablation study) on the same test images. Streamed, each variant decodes every JPEG again: on
the ImageNet family about 4.5 M decodes, which the DataLoader workers, not the GPU, set the pace of.
Held, each image is decoded once, by the same workers and the same eval transform, and every variant
reads the same uint8 pixels, so its features are the ones streaming would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import torch
from tqdm.auto import tqdm

from lipsum_ft.data.images import ImageSet, InMemoryImages, StreamedImages

Key = TypeVar("Key")
GIB = 2**30


def held_bytes(images: StreamedImages) -> int:
    """What holding ``images`` costs: one uint8 (3, size, size) tensor per image."""
    return len(images) * 3 * images.size * images.size


def decoded_once(
    images: StreamedImages, batch_size: int, progress: bool = False, desc: str = "hold"
) -> InMemoryImages:
    """Every image of ``images`` through its eval transform, once, in its loader's workers: an
    in-memory set whose ``eval_batches`` equal the streamed ones."""
    pixels = torch.empty((len(images), 3, images.size, images.size), dtype=torch.uint8)
    start = 0
    batches = images.eval_loader(batch_size)
    for batch, _ in tqdm(batches, desc=desc, unit="batch", disable=not progress, leave=False):
        pixels[start : start + len(batch)] = batch
        start += len(batch)
    return InMemoryImages(pixels, images.labels.clone(), images.mean, images.std)


def hold_decoded(
    sets: Mapping[Key, ImageSet], budget_gib: float, batch_size: int, progress: bool = False
) -> dict[Key, ImageSet]:
    """``sets`` with each streamed set decoded once and held, in order, while the held ones fit
    ``budget_gib``; a set that does not fit keeps streaming (one decode per model that reads it), and
    later, smaller ones may still be held. In-memory sets pass through as they are."""
    left = budget_gib * GIB
    out: dict[Key, ImageSet] = {}
    for key, images in sets.items():
        if isinstance(images, StreamedImages) and held_bytes(images) <= left:
            out[key] = decoded_once(images, batch_size, progress, desc=f"hold {key}")
            left -= held_bytes(images)
        else:
            out[key] = images
    return out
