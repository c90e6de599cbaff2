"""The zero-shot head: class-prompt text features, averaged over templates, as in CLIP and WiSE-FT.

Logits are ``scale * F(x) @ W`` with ``F(x)`` the L2-normalised image features; the scale stays
apart from ``W`` (as in the official Lipsum-FT code) so WiSE and TPGM interpolate ``W`` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lipsum_ft.clip.prompts import Template, fill


def class_prompt_weights(
    encode: Callable[[torch.Tensor], torch.Tensor],
    tokens: torch.Tensor,
    template_count: int,
    classes_per_batch: int = 10,
) -> torch.Tensor:
    """W (embed_dim x K) from class-major prompt tokens (K * T rows, template-minor): for each class,
    the mean of its normalised prompt features, renormalised.

    ``classes_per_batch`` classes go through the text tower at a time: ImageNet's 1,000 x 80 prompts
    of 77 tokens at once would need over 100 GB of activations.
    """
    rows = classes_per_batch * template_count
    columns = []
    for start in range(0, tokens.shape[0], rows):
        features = F.normalize(encode(tokens[start : start + rows]), dim=-1)
        features = features.reshape(-1, template_count, features.shape[-1])
        columns.append(F.normalize(features.mean(dim=1), dim=-1))
    return torch.cat(columns).T.contiguous()


@torch.inference_mode()
def build_zeroshot_weights(
    model: nn.Module,
    tokenizer,
    classnames: Sequence[str],
    templates: Sequence[Template],
    classes_per_batch: int = 10,
) -> torch.Tensor:
    """W (embed_dim x K) of CLIP's zero-shot head: ``class_prompt_weights`` of every (class, template)
    prompt, on the model's device."""
    device = next(model.parameters()).device
    tokens = tokenizer([fill(t, c) for c in classnames for t in templates])
    return class_prompt_weights(
        lambda chunk: model.encode_text(chunk.to(device)), tokens, len(templates), classes_per_batch
    )


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
