"""Images without labels: what a label-free model-selection criterion is allowed to read.

Selecting a model by its energy gap on the shift domains is only label-free if the code that computes
it cannot reach a label. ``UnlabelledImages`` keeps a copy of the image set whose labels are replaced
by -1 and exposes nothing but ``len`` and ``eval_batches``: the true labels are not behind it at all.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch

from lipsum_ft.data.images import InMemoryImages, StreamedImages

UNKNOWN_LABEL = -1


class UnlabelledImages:
    """Pixels of an image set, batch by batch, with no way back to its labels."""

    __slots__ = ("_images",)

    def __init__(self, images: InMemoryImages | StreamedImages):
        if not isinstance(images, InMemoryImages | StreamedImages):
            raise TypeError(f"UnlabelledImages takes an image set, got {type(images).__name__}")
        stripped = copy.copy(images)  # shares the pixels (or paths); owns its own label tensor
        stripped.labels = torch.full((len(images),), UNKNOWN_LABEL, dtype=torch.long)
        self._images = stripped

    def __len__(self) -> int:
        return len(self._images)

    def eval_batches(self, batch_size: int, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        """Normalised image batches in a fixed order on ``device`` (the eval transform, no augmentation)."""
        return self._images.eval_batches(batch_size, device)


def without_labels(
    image_sets: dict[str, InMemoryImages | StreamedImages],
) -> dict[str, UnlabelledImages]:
    """Every domain's image set with its labels removed."""
    return {domain: UnlabelledImages(images) for domain, images in image_sets.items()}
