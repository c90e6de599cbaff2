"""Batched, no-grad image features: computed once per model and domain, then reused by every metric."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lipsum_ft.clip.images import normalize


@torch.inference_mode()
def encode_images(
    encode: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 512,
    progress: bool = True,
    desc: str = "features",
) -> torch.Tensor:
    """L2-normalised features of a uint8 image tensor, ``batch_size`` images at a time."""
    chunks = []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
        chunks.append(F.normalize(encode(normalize(images[start : start + batch_size], mean, std)).float(), dim=-1))
    return torch.cat(chunks) if chunks else torch.empty(0)
