"""Host-to-device copies that leave the host free to queue the next kernels.

A plain copy from pageable host memory to a GPU blocks the host until the GPU's queue has drained; a
step that makes one (a batch's tokens, a normalisation constant) can no longer be queued ahead of the
GPU. A copy from pinned memory is queued like a kernel.
"""

from __future__ import annotations

import torch


def queued_to(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` (made on the host) on ``device``, copied without waiting for the device."""
    device = torch.device(device)
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
