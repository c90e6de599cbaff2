"""Images from a manifest as tensors, and the train/eval transforms.

Small datasets (DigitDomains) are decoded once into a uint8 tensor and augmented a whole batch
at a time (no per-sample Python work in the loop); large ones stream through ``ManifestImages``
in DataLoader workers.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm


def decode_images(paths: Sequence[str], size: int, progress: bool = True, desc: str = "decode") -> torch.Tensor:
    """uint8 tensor (N, 3, size, size); images of another size are resized bicubically."""
    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=not progress, mininterval=1.0)):
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BICUBIC)
            out[i] = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return out


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 or [0,1] float batch -> CLIP-normalised float batch."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


def random_resized_crop_flip(
    images: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> torch.Tensor:
    """Per-sample RandomResizedCrop (+ horizontal flip) of a float batch at its own size, in one grid_sample.

    Crop area is drawn uniformly in ``scale`` of the image, the aspect ratio log-uniformly in
    ``ratio`` (torchvision's distribution, clamped to fit instead of retried).
    """
    n = images.shape[0]
    u = torch.rand((n, 5), generator=generator)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r)
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (1 - width) * (2 * u[:, 2] - 1)
    cy = (1 - height) * (2 * u[:, 3] - 1)
    sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros((n, 2, 3))
    theta[:, 0, 0] = width * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = height
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class ManifestImages(Dataset):
    """(image tensor, label) pairs read lazily from manifest paths; decoding happens in DataLoader workers."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform):
        self.paths = list(paths)
        self.labels = list(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), self.labels[index]


def split_images(manifest, split: str, size: int, progress: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Decoded images and labels of one split, per domain (in the manifest's domain order)."""
    rows = manifest[manifest["split"] == split]
    if rows.empty:
        raise ValueError(f"the manifest has no rows in split {split!r}")
    out = {}
    for domain in rows["domain"].unique():
        part = rows[rows["domain"] == domain]
        out[domain] = (
            decode_images(part["path"].tolist(), size, progress=progress, desc=f"decode {split}/{domain}"),
            torch.tensor(part["label"].to_numpy(), dtype=torch.long),
        )
    return out
