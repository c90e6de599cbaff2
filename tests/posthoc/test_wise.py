"""WiSE-FT on values that tell the right interpolation from the plausible wrong ones.

An asymmetric alpha tells theta_alpha from theta_(1-alpha); comparing every tensor (image tower,
head, buffers) catches a merge that skips a part; the node's alpha grid is checked the same way.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import ClipBundle, new_model
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.pipelines.posthoc.nodes import wise_models
from lipsum_ft.posthoc.wise import wise


def states():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(0)), dim=0)
    zero = {k: v.clone() for k, v in ClipClassifier(model.visual, head, 14.0).state_dict().items()}
    g = torch.Generator().manual_seed(1)
    tuned = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in zero.items()}
    return model, spec, head, zero, tuned


def by_hand(theta0: torch.Tensor, theta: torch.Tensor, alpha: float) -> torch.Tensor:
    return (1 - alpha) * theta0 + alpha * theta


@pytest.mark.parametrize("alpha", [0.3, 0.85])
def test_every_tensor_is_interpolated_with_the_fine_tuned_weight_alpha(alpha):
    _, _, _, zero, tuned = states()
    zero["steps"], tuned["steps"] = torch.tensor([3, 5]), torch.tensor([7, 9])  # integer: copied from theta
    merged = wise(zero, tuned, alpha)
    assert merged.keys() == zero.keys()
    assert any(k.startswith("visual.") for k in merged) and "head" in merged
    for name, theta in tuned.items():
        if name == "steps":
            assert torch.equal(merged[name], theta)
            continue
        torch.testing.assert_close(merged[name], by_hand(zero[name], theta, alpha), rtol=1e-6, atol=1e-7)
        if not torch.equal(zero[name], theta):  # alpha and 1 - alpha swapped would land elsewhere
            assert not torch.allclose(merged[name], by_hand(zero[name], theta, 1 - alpha), rtol=0, atol=1e-6)
    merged["head"].add_(1.0)  # a copy, not a view of either input
    assert not torch.equal(merged["head"], tuned["head"]) and not torch.equal(merged["head"], zero["head"])


def test_states_with_different_tensors_are_refused():
    _, _, _, zero, tuned = states()
    del tuned["head"]
    with pytest.raises(ValueError, match="states differ in keys: \\['head'\\]"):
        wise(zero, tuned, 0.3)


def test_the_node_merges_the_whole_classifier_at_each_alpha_of_the_grid():
    model, spec, head, zero, tuned = states()
    finetuned_model = new_model("TinyCLIP-ViT-P8-32", seed=0)[0]
    finetuned_model.visual.load_state_dict(
        {k.removeprefix("visual."): v for k, v in tuned.items() if k.startswith("visual.")}
    )
    scale = torch.tensor(14.0)
    out = wise_models(
        ClipBundle(model=model, spec=spec, head={"weight": head, "logit_scale": scale}),
        {"weight": head, "logit_scale": scale},
        {
            "ft": ClipBundle(
                model=finetuned_model, spec=spec, head={"weight": tuned["head"], "logit_scale": scale}
            )
        },
        {"reference_domain": "photo", "wise": {"alphas": [0.0, 0.3, 1.0]}},
    )
    assert sorted(out) == ["wise-ft-0.00", "wise-ft-0.30", "wise-ft-1.00"]
    for name in zero:
        want = tuned[name] if name != "logit_scale" else scale
        torch.testing.assert_close(
            out["wise-ft-0.30"][name], by_hand(zero[name], want, 0.3), rtol=1e-6, atol=1e-7
        )
        assert torch.equal(out["wise-ft-0.00"][name], zero[name])
        assert torch.equal(out["wise-ft-1.00"][name], want)
