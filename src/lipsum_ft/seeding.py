"""Randomness as a function of (seed, step): resumed runs and every rank draw the same numbers."""

from __future__ import annotations

import torch


def step_generator(seed: int, step: int) -> torch.Generator:
    """A generator that depends only on (seed, step)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)
