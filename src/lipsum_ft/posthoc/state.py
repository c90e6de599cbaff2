"""A classifier's tensors by name (image tower + head), the unit every post-hoc method acts on."""

from __future__ import annotations

import torch

State = dict[str, torch.Tensor]
