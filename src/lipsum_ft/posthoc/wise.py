"""WiSE-FT (mlfoundations/wise-ft): interpolate every tensor between the zero-shot and the fine-tuned state.

Tensors that are not floating point are copied from the fine-tuned state.
"""

from __future__ import annotations

import torch

from lipsum_ft.posthoc.state import State


def wise(zero_shot: State, finetuned: State, alpha: float) -> State:
    """theta_alpha = (1 - alpha) * theta_0 + alpha * theta; alpha 0 and 1 return the endpoints exactly."""
    if zero_shot.keys() != finetuned.keys():
        raise ValueError(f"states differ in keys: {sorted(zero_shot.keys() ^ finetuned.keys())[:5]}")
    merged = {}
    for name, theta in finetuned.items():
        theta0 = zero_shot[name]
        if alpha == 0.0 or not theta.is_floating_point():
            merged[name] = (theta0 if alpha == 0.0 else theta).clone()
        elif alpha == 1.0:
            merged[name] = theta.clone()
        else:
            merged[name] = torch.lerp(theta0, theta, alpha)
    return merged
