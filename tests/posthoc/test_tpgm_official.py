"""Our TPGM against a transcription of the official one (PotatoTian/TPGM, ImageNet_ViT_Exp/utils/tpgm.py).

The transcription below follows the official module line by line (one scalar constraint per trainable
tensor, initialised at its own ``norms.min() / 2``, clipped to ``[1e-8, norms.max()]`` before each use,
``v = (new - anchor).detach() * alpha``), and its trainer (Adam over the constraints, one batch per
step, then one projection with ``apply=True``). It does not call our code.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.posthoc.tpgm import TPGMProjection, learn_tpgm, projected_names

# --- transcription of the official procedure ---------------------------------------------------------


class OfficialTPGM(nn.Module):
    def __init__(self, model: nn.Module, norm_mode: str) -> None:
        super().__init__()
        self.norm_mode = norm_mode
        self.threshold = nn.Hardtanh(0, 1)
        self.constraints = nn.ParameterList(
            [nn.Parameter(torch.Tensor([0])) for _, p in model.named_parameters() if p.requires_grad]
        )
        self.init = True

    def _project_ratio(self, new, anchor, constraint_iterator):
        t = new.detach() - anchor.detach()
        if "l2" in self.norm_mode:
            norms = torch.norm(t)
        else:
            norms = torch.sum(torch.abs(t), dim=tuple(range(1, t.dim())), keepdim=True)
        constraint = next(constraint_iterator)
        if self.init:
            with torch.no_grad():
                constraint.copy_(norms.min() / 2)
        with torch.no_grad():
            constraint.copy_(F.hardtanh(constraint, 1e-8, norms.max()))
        return self.threshold(constraint / (norms + 1e-8))

    def apply_constraints(self, new, pre_trained, constraint_iterator, apply=False):
        for (_, new_para), anchor_para in zip(new.named_parameters(), pre_trained.parameters(), strict=True):
            if not new_para.requires_grad:
                continue
            alpha = self._project_ratio(new_para, anchor_para, constraint_iterator)
            v = (new_para.detach() - anchor_para.detach()) * alpha
            temp = v + anchor_para.detach()
            if apply:
                with torch.no_grad():
                    new_para.copy_(temp)
            else:
                new_para.requires_grad = False
                new_para.copy_(temp)
        self.init = False

    def forward(self, new, pre_trained, x=None, apply=False):
        constraint_iterator = iter(self.constraints)
        if apply:
            self.apply_constraints(new, pre_trained, constraint_iterator, apply=True)
            return None
        new_copy = copy.deepcopy(new)
        new_copy.eval()
        self.apply_constraints(new_copy, pre_trained, constraint_iterator)
        return new_copy(x)


def official_tpgm(model, pre_trained, batches, norm_mode, proj_lr, max_iters):
    """The official trainer: Adam on the constraints over ``max_iters`` batches, then apply once."""
    tpgm = OfficialTPGM(model, norm_mode)
    optimizer = torch.optim.Adam(tpgm.parameters(), lr=proj_lr)
    for step in range(max_iters):
        images, labels = batches[step % len(batches)]
        loss = F.cross_entropy(tpgm(model, pre_trained, x=images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tpgm(model, pre_trained, apply=True)
    return model, [c.detach().clone() for c in tpgm.constraints]


# --- a tiny model with 4-D, 2-D and 1-D tensors ------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3)  # 4-D weight, 1-D bias
        self.fc = nn.Linear(5 * 6 * 6, 4)  # 2-D weight, 1-D bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).flatten(1))


SCALES = {"conv.weight": 0.3, "conv.bias": 0.02, "fc.weight": 0.05, "fc.bias": 0.4}


def tiny_pair():
    """A zero-shot model and a 'fine-tuned' one, each tensor moved by its own (very different) scale."""
    torch.manual_seed(0)
    zero = Tiny()
    tuned = copy.deepcopy(zero)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            p.add_(SCALES[name] * torch.randn(p.shape, generator=g))
    g = torch.Generator().manual_seed(2)
    batches = [
        (torch.randn(12, 3, 8, 8, generator=g), torch.randint(0, 4, (12,), generator=g)) for _ in range(3)
    ]
    return zero, tuned, batches


def run_both(norm: str, lr: float, steps: int):
    zero, tuned, batches = tiny_pair()
    names = [n for n, _ in tuned.named_parameters()]
    ours, projection = learn_tpgm(
        copy.deepcopy(zero),
        {k: v.clone() for k, v in zero.state_dict().items()},
        {k: v.clone() for k, v in tuned.state_dict().items()},
        (batches[i % len(batches)] for i in range(steps)),
        steps=steps,
        lr=lr,
        norm=norm,
        progress=False,
    )
    official_model, constraints = official_tpgm(
        copy.deepcopy(tuned), copy.deepcopy(zero), batches, norm, lr, steps
    )
    assert projection.names == names
    return (
        ours,
        projection,
        dict(official_model.named_parameters()),
        dict(zip(names, constraints, strict=True)),
    )


def own_norms(d: torch.Tensor, norm: str) -> torch.Tensor:
    """l2: the whole tensor; mars: per output row the L1 norm (a 1-D tensor is one row)."""
    if norm == "l2":
        return d.norm()
    return d.abs().reshape(d.shape[0], -1).sum(1) if d.ndim > 1 else d.abs().sum()


@pytest.mark.parametrize("norm", ["l2", "mars"])
def test_initial_radii_equal_the_official_ones(norm):
    _, projection, _, official = run_both(norm, lr=1e-2, steps=0)
    zero, tuned, _ = tiny_pair()
    for name, p in tuned.named_parameters():
        radius = projection.radii[name]
        assert radius.ndim == 0  # one scalar per tensor, also with mars
        assert radius.item() == official[name].item()
        expected = own_norms(p.detach() - dict(zero.named_parameters())[name].detach(), norm).min() / 2
        torch.testing.assert_close(radius, expected, rtol=1e-6, atol=0)
    # Radii differ tensor by tensor (one global start would make them all equal).
    assert len({round(r.item(), 6) for r in projection.radii.values()}) == len(projection.radii)


@pytest.mark.parametrize("norm", ["l2", "mars"])
def test_radii_pushed_out_of_range_are_clipped_to_their_own_bounds_as_officially(norm):
    # lr far above every norm: Adam's first steps throw each radius past its own ceiling or below 0.
    _, projection, _, official = run_both(norm, lr=50.0, steps=4)
    zero, tuned, _ = tiny_pair()
    zero_params = dict(zero.named_parameters())
    at_ceiling = []
    for name, p in tuned.named_parameters():
        norms = own_norms(p.detach() - zero_params[name].detach(), norm)
        radius = projection.radii[name].item()
        assert radius == official[name].item()
        assert radius == pytest.approx(1e-8, abs=1e-12) or radius == pytest.approx(
            norms.max().item(), rel=1e-6
        )
        if radius > 1e-8:
            at_ceiling.append(radius)
    assert len(at_ceiling) >= 2 and len(set(at_ceiling)) == len(at_ceiling)  # each at its own ceiling


@pytest.mark.parametrize("norm", ["l2", "mars"])
def test_projected_weights_after_training_agree_with_the_official_ones(norm):
    ours, projection, official_params, official = run_both(norm, lr=5e-2, steps=12)
    for name, weight in official_params.items():
        torch.testing.assert_close(ours[name], weight.detach(), rtol=0, atol=1e-6)
        torch.testing.assert_close(projection.radii[name], official[name].reshape(()), rtol=1e-6, atol=1e-9)
    # The radii moved: the projected weights are neither the start (ratio at init) nor the fine-tuned ones.
    _, start, _, _ = run_both(norm, lr=5e-2, steps=0)
    assert any(not torch.allclose(projection.radii[n], start.radii[n]) for n in projection.names)


def test_every_tensor_of_a_clip_classifier_starts_at_ratio_one_half_with_l2():
    model, _ = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(0)), dim=0)
    zero = {k: v.clone() for k, v in ClipClassifier(model.visual, head, 14.0).state_dict().items()}
    g = torch.Generator().manual_seed(1)
    # Tensors of very different sizes and shifts: one global start would put the big ones near ratio 0.
    tuned = {
        k: v + (0.001 if "bias" in k else 0.05) * torch.randn(v.shape, generator=g)
        if k != "logit_scale"
        else v
        for k, v in zero.items()
    }
    names = projected_names(zero, tuned)
    assert "logit_scale" not in names and len(names) > 20
    projection = TPGMProjection(zero, tuned, names, "l2")
    projection.clip_radii()
    for name in names:
        torch.testing.assert_close(projection.ratio(name), torch.tensor(0.5), rtol=0, atol=1e-6)
