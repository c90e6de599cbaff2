"""A module run for inference on a device: put there in eval mode, and back on the CPU afterwards.

The moves happen outside inference mode. A module moved inside it gets inference tensors as parameters
and buffers, which nothing outside inference mode may update in place: the scratch classifier that
evaluation reuses for every WiSE and TPGM state would refuse the next ``load_state_dict``. On a CPU
``.to("cpu")`` moves nothing, which is how this once hid from every CPU test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def inference_on(module: nn.Module, device: torch.device | str) -> Iterator[nn.Module]:
    """``module`` in eval mode on ``device``, the body under ``torch.inference_mode``; then on the CPU."""
    with torch.inference_mode(False):
        module.eval().to(device)
    try:
        with torch.inference_mode():
            yield module
    finally:
        with torch.inference_mode(False):
            module.cpu()
