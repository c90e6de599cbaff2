"""TPGM: learn one projection radius per tensor around the zero-shot weights, on validation data.

See REFERENCE.md, section "TPGM (post-hoc)". Tensors that are not floating point, and the logit
scale, are copied from the fine-tuned state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from lipsum_ft.posthoc.state import State


def tensor_norm(d: torch.Tensor, norm: str) -> torch.Tensor:
    """``l2``: one norm per tensor; ``mars``: per output row, the L1 norm over the rest (1-D: one row)."""
    if norm == "l2":
        return d.norm()
    if norm == "mars":
        return d.abs().reshape(d.shape[0], -1).sum(dim=1) if d.ndim > 1 else d.abs().sum().reshape(1)
    raise ValueError(f"unknown TPGM norm {norm!r}; valid: l2, mars")


def _broadcast(ratio: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return ratio.reshape(-1, *([1] * (d.ndim - 1))) if ratio.numel() > 1 else ratio


@dataclass
class TPGMProjection:
    """Learnable radii gamma (one per tensor, or per row for ``mars``) around theta_0."""

    zero_shot: State
    finetuned: State
    names: list[str]
    norm: str = "l2"

    def __post_init__(self) -> None:
        self.deltas = {n: (self.finetuned[n] - self.zero_shot[n]).detach() for n in self.names}
        self.norms = {n: tensor_norm(d, self.norm) for n, d in self.deltas.items()}
        self.max_norm = max(v.max() for v in self.norms.values()).item()
        start = min(v.min() for v in self.norms.values()).item() / 2
        self.radii = {n: torch.full_like(v, start).requires_grad_(True) for n, v in self.norms.items()}

    def clip_radii(self) -> None:
        """Keep every radius in [1e-8, max ||d||] (no gradient through the clipping)."""
        with torch.no_grad():
            for radius in self.radii.values():
                radius.clamp_(1e-8, max(self.max_norm, 1e-8))

    def ratio(self, name: str) -> torch.Tensor:
        return torch.clamp(self.radii[name] / (self.norms[name] + 1e-8), 0, 1)

    def project(self) -> State:
        """theta0 + clamp(gamma / ||d||, 0, 1) * d for the projected tensors; theta for the rest."""
        state = dict(self.finetuned)
        for name in self.names:
            d = self.deltas[name]
            state[name] = self.zero_shot[name] + _broadcast(self.ratio(name), d) * d
        return state


def learn_tpgm(
    classifier: nn.Module,
    zero_shot: State,
    finetuned: State,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    steps: int = 200,
    lr: float = 1e-2,
    norm: str = "l2",
    exclude: Sequence[str] = (),
    progress: bool = True,
    device: str = "cpu",
) -> tuple[State, TPGMProjection]:
    """Learn the radii with Adam on cross-entropy over ``batches`` (validation data), then project once."""
    names = [
        n
        for n, t in finetuned.items()
        if t.is_floating_point() and n != "logit_scale" and not any(e in n for e in exclude)
    ]
    to_device = lambda state: {k: v.to(device) for k, v in state.items()}  # noqa: E731
    projection = TPGMProjection(to_device(zero_shot), to_device(finetuned), names, norm)
    optimizer = torch.optim.Adam(list(projection.radii.values()), lr=lr)
    classifier.eval().to(device)
    for _ in tqdm(range(steps), desc=f"TPGM ({norm})", unit="step", disable=not progress):
        projection.clip_radii()
        images, labels = next(batches)
        logits = functional_call(classifier, projection.project(), (images.to(device),))
        labels = labels.to(device)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    projection.clip_radii()
    classifier.cpu()
    with torch.no_grad():
        return {k: v.detach().cpu().clone() for k, v in projection.project().items()}, projection
