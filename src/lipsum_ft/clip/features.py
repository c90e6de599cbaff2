"""Batched, no-grad image features: computed once per model and domain, then reused by every metric."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@torch.inference_mode()
def encode_images(
    encode: Callable[[torch.Tensor], torch.Tensor],
    images,
    batch_size: int = 512,
    progress: bool = True,
    desc: str = "features",
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """L2-normalised features of an image set (``InMemoryImages`` or ``StreamedImages``), batch by batch,
    returned on the CPU: they stay on ``device`` until the last batch (one read back, not one per batch)."""
    chunks = []
    total = -(-len(images) // batch_size)
    for batch in tqdm(
        images.eval_batches(batch_size, device),
        total=total,
        desc=desc,
        unit="batch",
        disable=not progress,
        leave=False,
    ):
        chunks.append(F.normalize(encode(batch).float(), dim=-1))
    return torch.cat(chunks).cpu() if chunks else torch.empty(0)
