"""The zero-shot head: class-prompt text features, averaged over templates, as in CLIP and WiSE-FT.

Logits are ``scale * F(x) @ W`` with ``F(x)`` the L2-normalised image features; the scale stays
apart from ``W`` (as in the official Lipsum-FT code) so WiSE and TPGM interpolate ``W`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lipsum_ft.clip.prompts import Template, fill


@torch.inference_mode()
def build_zeroshot_weights(
    model: nn.Module,
    tokenizer,
    classnames: Sequence[str],
    templates: Sequence[Template],
    classes_per_batch: int = 10,
) -> torch.Tensor:
    """W (embed_dim x K): for each class, mean of normalised prompt features, renormalised."""
    device = next(model.parameters()).device
    columns = []
    for start in range(0, len(classnames), classes_per_batch):
        names = classnames[start : start + classes_per_batch]
        tokens = tokenizer([fill(t, c) for c in names for t in templates]).to(device)
        features = F.normalize(model.encode_text(tokens), dim=-1).reshape(len(names), len(templates), -1)
        columns.append(F.normalize(features.mean(dim=1), dim=-1))
    return torch.cat(columns).T.contiguous()


class ClipClassifier(nn.Module):
    """Image tower + linear head: what fine-tuning trains and evaluation scores."""

    def __init__(self, visual: nn.Module, head_weight: torch.Tensor, logit_scale: float):
        super().__init__()
        self.visual = visual
        self.head = nn.Parameter(head_weight.detach().clone())
        self.register_buffer("logit_scale", torch.tensor(float(logit_scale)))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image features F(x)."""
        return F.normalize(self.visual(images), dim=-1)

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * features @ self.head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.features(images))


def classifier_for(model: nn.Module, head: dict[str, torch.Tensor]) -> ClipClassifier:
    """The classifier of a CLIP model and a head dict (``weight``, ``logit_scale``),
    sharing the model's tower.
    """
    return ClipClassifier(model.visual, head["weight"], float(head["logit_scale"]))
