"""WiSE and TPGM on state dicts: endpoints, projection limits, and radii that stay in bounds."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.posthoc.tpgm import TPGMProjection, learn_tpgm, tensor_norm
from lipsum_ft.posthoc.wise import wise


def classifier_states():
    model, _ = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(0)), dim=0)
    classifier = ClipClassifier(model.visual, head, 14.0)
    zero = {k: v.clone() for k, v in classifier.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    tuned = {
        k: (v + 0.05 * torch.randn(v.shape, generator=g) if k != "logit_scale" else v.clone())
        for k, v in zero.items()
    }
    return classifier, zero, tuned


def test_wise_endpoints_are_exact_and_the_middle_is_the_average():
    _, zero, tuned = classifier_states()
    assert all(torch.equal(wise(zero, tuned, 0.0)[k], zero[k]) for k in zero)
    assert all(torch.equal(wise(zero, tuned, 1.0)[k], tuned[k]) for k in zero)
    middle = wise(zero, tuned, 0.5)
    torch.testing.assert_close(middle["head"], (zero["head"] + tuned["head"]) / 2)


def test_tpgm_with_large_radii_keeps_fine_tuned_weights_and_with_tiny_radii_zero_shot():
    _, zero, tuned = classifier_states()
    names = [k for k in zero if k != "logit_scale"]
    projection = TPGMProjection(zero, tuned, names)
    for name in names:
        projection.radii[name].data.fill_(projection.ceilings[name] * 10)
    projection.clip_radii()
    projected = projection.project()
    for name in names:
        torch.testing.assert_close(projected[name], tuned[name])
    for name in names:
        projection.radii[name].data.fill_(0.0)
    projection.clip_radii()
    projected = projection.project()
    for name in names:
        torch.testing.assert_close(projected[name], zero[name], atol=1e-6, rtol=0)


def test_mars_norm_is_per_row_l1():
    d = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    assert torch.equal(tensor_norm(d, "mars"), torch.tensor([3.0, 7.0]))
    torch.testing.assert_close(tensor_norm(d, "l2"), torch.tensor(30.0).sqrt())


def test_learned_radii_stay_within_bounds():
    classifier, zero, tuned = classifier_states()
    g = torch.Generator().manual_seed(3)
    images, labels = torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 4, (16,), generator=g)
    for norm in ("l2", "mars"):
        projected, projection = learn_tpgm(
            classifier,
            zero,
            tuned,
            itertools.repeat((images, labels)),
            steps=25,
            lr=0.5,
            norm=norm,
            progress=False,
        )
        for name, radius in projection.radii.items():
            floor = torch.tensor(1e-8).item()  # 1e-8 as float32 holds it
            assert radius.ndim == 0 and floor <= radius.item() <= projection.ceilings[name]
        assert projected.keys() == tuned.keys()
        for name in projection.names:
            ratio = projection.ratio(name)
            assert ((ratio >= 0) & (ratio <= 1)).all()
