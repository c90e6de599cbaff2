"""The tiny model and images of the loop tests (``test_training``, ``test_checkpoint``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.data.images import InMemoryImages


@pytest.fixture(scope="module")
def setup():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(1)), dim=0)
    g = torch.Generator().manual_seed(2)
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    train = InMemoryImages(
        torch.randint(0, 256, (24, 3, 32, 32), generator=g, dtype=torch.uint8),
        torch.arange(24) % 4,
        mean,
        std,
    )
    val = InMemoryImages(
        torch.randint(0, 256, (8, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(8) % 4, mean, std
    )
    return model.eval(), spec, head, train, val
