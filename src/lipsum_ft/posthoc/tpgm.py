"""TPGM: learn one scalar projection radius per tensor around the zero-shot weights, on validation data.

As in the official code, PotatoTian/TPGM ``ImageNet_ViT_Exp/utils/tpgm.py`` (tests/posthoc compare with it).
Tensors that are not floating point, the logit scale, and tensors fine-tuning left unchanged are
copied from the fine-tuned state.
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
    """One learnable scalar radius gamma per tensor around theta_0, as in TPGM's official code.

    Each radius starts at half of its tensor's own smallest norm (so with ``l2`` every tensor starts at
    ratio 0.5) and is clipped to [1e-8, its tensor's own largest norm]; with ``mars`` the one scalar
    bounds the L1 norm of every output row. Gradients reach gamma only through the ratio.
    """

    zero_shot: State
    finetuned: State
    names: list[str]
    norm: str = "l2"

    def __post_init__(self) -> None:
        self.deltas = {n: (self.finetuned[n] - self.zero_shot[n]).detach() for n in self.names}
        self.norms = {n: tensor_norm(d, self.norm) for n, d in self.deltas.items()}
        self.ceilings = {n: v.max().item() for n, v in self.norms.items()}  # read once: no sync per step
        self.radii = {n: (v.min() / 2).clone().requires_grad_(True) for n, v in self.norms.items()}

    def clip_radii(self) -> None:
        """Keep each radius in [1e-8, max of its own tensor's norms] (no gradient through the clipping)."""
        with torch.no_grad():
            for name, radius in self.radii.items():
                radius.copy_(F.hardtanh(radius, 1e-8, self.ceilings[name]))

    def ratio(self, name: str) -> torch.Tensor:
        """clamp(gamma / (||d|| + 1e-8), 0, 1): a scalar for ``l2``, one value per row for ``mars``."""
        return F.hardtanh(self.radii[name] / (self.norms[name] + 1e-8), 0.0, 1.0)

    def project(self) -> State:
        """theta0 + ratio * d for the projected tensors (d carries no gradient); theta for the rest."""
        state = dict(self.finetuned)
        for name in self.names:
            d = self.deltas[name]
            state[name] = self.zero_shot[name] + _broadcast(self.ratio(name), d) * d
        return state


def projected_names(zero_shot: State, finetuned: State, exclude: Sequence[str] = ()) -> list[str]:
    """Floating-point tensors that fine-tuning changed, bar the logit scale and ``exclude`` substrings.

    The official code projects the trainable tensors; a tensor fine-tuning left unchanged (e.g. the
    frozen tower of LP) has d = 0, nothing to project, and no valid radius range.
    """
    return [
        n
        for n, t in finetuned.items()
        if t.is_floating_point()
        and n != "logit_scale"
        and not any(e in n for e in exclude)
        and not torch.equal(t, zero_shot[n])
    ]


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
    names = projected_names(zero_shot, finetuned, exclude)
    if not names:
        raise ValueError("TPGM: no tensor differs from the zero-shot state; nothing to project")
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
