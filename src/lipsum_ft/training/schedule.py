"""Learning-rate schedule shared by pretraining and fine-tuning: linear warm-up, then cosine to zero."""

from __future__ import annotations

import math

import torch


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the peak lr at ``step`` (0-based), as in the reference implementations.

    Linear from 0 at step 0 to 1 at step ``warmup_steps`` (the peak), then a half cosine that would
    reach 0 at step ``total_steps``.
    """
    if step < warmup_steps:
        return step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, total_steps, warmup_steps)
    )


def decay_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay matrices only, never biases, norms, embeddings' scales or the logit scale."""
    decay, no_decay = [], []
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        (decay if parameter.ndim >= 2 and "embedding" not in name else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(groups: list[dict], lr: float, betas: tuple[float, float], eps: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel (several times faster on CPU for embedding-heavy models)."""
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=True)
