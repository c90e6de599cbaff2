"""Our TPGM against a transcription of the official one (PotatoTian/TPGM, ImageNet_ViT_Exp/utils/tpgm.py).

The transcription below follows the official module line by line (one scalar constraint per trainable
tensor, initialised at its own ``norms.min() / 2``, clipped to ``[1e-8, norms.max()]`` before each use,
``v = (new - anchor).detach() * alpha``), and its trainer (Adam over the constraints, one batch per
step, then one projection with ``apply=True``). It does not call our code.
"""

from __future__ import annotations

import copy
import math

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


def learn_ours(zero, tuned, batches, steps: int, lr: float, norm: str, exclude=()):
    """Our TPGM on copies of the pair, cycling through ``batches`` for ``steps`` steps."""
    return learn_tpgm(
        copy.deepcopy(zero),
        {k: v.clone() for k, v in zero.state_dict().items()},
        {k: v.clone() for k, v in tuned.state_dict().items()},
        (batches[i % len(batches)] for i in range(steps)),
        steps=steps,
        lr=lr,
        norm=norm,
        exclude=exclude,
        progress=False,
    )


def run_both(norm: str, lr: float, steps: int):
    zero, tuned, batches = tiny_pair()
    names = [n for n, _ in tuned.named_parameters()]
    ours, projection = learn_ours(zero, tuned, batches, steps, lr, norm)
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


def test_projected_names_are_the_changed_float_tensors_bar_logit_scale_and_exclude():
    # Every other tensor is copied from theta: a changed logit scale, a changed integer buffer, an
    # unchanged tensor, and names with an ``exclude`` substring (here "bias").
    zero = {
        "a.weight": torch.zeros(2, 3),
        "a.bias": torch.zeros(2),
        "b.weight": torch.ones(2, 2),
        "logit_scale": torch.tensor(4.6),
        "steps": torch.tensor(3),
        "c.weight": torch.zeros(4),
    }
    tuned = {
        "a.weight": torch.full((2, 3), 0.3),
        "a.bias": torch.full((2,), -0.2),
        "b.weight": torch.ones(2, 2),
        "logit_scale": torch.tensor(3.1),
        "steps": torch.tensor(8),
        "c.weight": torch.full((4,), 0.7),
    }
    assert projected_names(zero, tuned, exclude=("bias",)) == ["a.weight", "c.weight"]
    assert projected_names(zero, tuned) == ["a.weight", "a.bias", "c.weight"]


def test_excluded_tensors_keep_their_fine_tuned_values_as_if_frozen_officially():
    # The official code projects the trainable tensors only: freezing the biases there is
    # ``exclude=("bias",)`` here.
    zero, tuned, batches = tiny_pair()
    steps, lr = 3, 5e-2
    ours, projection = learn_ours(zero, tuned, batches, steps, lr, "l2", exclude=("bias",))
    assert projection.names == ["conv.weight", "fc.weight"]
    frozen = copy.deepcopy(tuned)
    for name, p in frozen.named_parameters():
        p.requires_grad_("bias" not in name)
    official_model, _ = official_tpgm(frozen, copy.deepcopy(zero), batches, "l2", lr, steps)
    for name, weight in official_model.named_parameters():
        torch.testing.assert_close(ours[name], weight.detach(), rtol=0, atol=1e-6)
    assert torch.equal(ours["fc.bias"], tuned.fc.bias.detach())


def test_projection_is_theta0_plus_the_clamped_ratio_times_d_for_every_shape():
    # Radii set by hand, expected values from the formula theta0 + clamp(gamma / (||d|| + 1e-8), 0, 1) * d:
    # a 0-D tensor keeps its shape; a tensor moved by ~1e-8 shows the official + 1e-8 (comparable to its
    # norm); with mars a 2-row matrix gets one ratio per row (3 columns: not per column).
    zero = {
        "scalar": torch.tensor(0.7),
        "tiny": torch.zeros(2),
        "w": torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.5, -0.1]]),
    }
    d = {
        "scalar": torch.tensor(-1.2),
        "tiny": torch.tensor([3e-8, 4e-8]),
        "w": torch.tensor([[0.6, -0.2, 0.0], [0.1, 0.05, -0.3]]),
    }
    tuned = {k: zero[k] + d[k] for k in zero}

    l2 = TPGMProjection(zero, tuned, ["scalar", "tiny", "w"], "l2")
    radii = {"scalar": 0.9, "tiny": 2.5e-8, "w": 0.3}
    l2.radii = {k: torch.tensor(v) for k, v in radii.items()}
    norms = {"scalar": 1.2, "tiny": 5e-8, "w": math.sqrt(0.36 + 0.04 + 0.01 + 0.0025 + 0.09)}
    projected = l2.project()
    for name in zero:
        ratio = min(radii[name] / (norms[name] + 1e-8), 1.0)
        torch.testing.assert_close(projected[name], zero[name] + ratio * d[name], rtol=1e-5, atol=1e-12)
    assert l2.ratio("tiny").item() == pytest.approx(2.5 / 6, rel=1e-5)  # not 2.5 / 5 nor 2.5 / 4

    mars = TPGMProjection(zero, tuned, ["w"], "mars")
    mars.radii = {"w": torch.tensor(0.6)}  # row L1 norms 0.8 and 0.45: ratios 0.75 and 1 (clamped)
    rows = torch.tensor([[0.6 / (0.8 + 1e-8)], [1.0]])
    torch.testing.assert_close(mars.project()["w"], zero["w"] + rows * d["w"], rtol=1e-6, atol=1e-7)
