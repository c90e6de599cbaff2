"""WiSE-FT on values that tell the right interpolation from the plausible wrong ones.

An asymmetric alpha tells theta_alpha from theta_(1-alpha); comparing every tensor (image tower,
head, buffers) catches a merge that skips a part; the node's alpha grid is checked the same way.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
from kedro.io import DatasetError

from lipsum_ft.clip.backbone import ClipBundle, new_model
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.io.models import SafetensorsState, TensorCollectionDataset
from lipsum_ft.pipelines.posthoc.nodes import wise_models
from lipsum_ft.posthoc import wise_grid
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


def node_inputs(methods: dict[str, dict[str, torch.Tensor]]):
    """``wise_models``'s inputs: the zero-shot bundle and head, and a fine-tuned bundle per method whose
    image tower and head are that method's state."""
    model, spec, head, _, _ = states()
    scale = torch.tensor(14.0)
    finetuned = {}
    for method, tuned in methods.items():
        finetuned_model = new_model("TinyCLIP-ViT-P8-32", seed=0)[0]
        finetuned_model.visual.load_state_dict(
            {k.removeprefix("visual."): v for k, v in tuned.items() if k.startswith("visual.")}
        )
        finetuned[method] = ClipBundle(
            model=finetuned_model, spec=spec, head={"weight": tuned["head"], "logit_scale": scale}
        )
    bundle = ClipBundle(model=model, spec=spec, head={"weight": head, "logit_scale": scale})
    return bundle, {"weight": head, "logit_scale": scale}, finetuned


def test_the_node_merges_the_whole_classifier_at_each_alpha_of_the_grid():
    _, _, _, zero, tuned = states()
    scale = torch.tensor(14.0)
    out = wise_models(
        *node_inputs({"ft": tuned}), {"reference_domain": "photo", "wise": {"alphas": [0.0, 0.3, 1.0]}}
    )
    assert sorted(out) == ["wise-ft-0.00", "wise-ft-0.30", "wise-ft-1.00"]
    merged = {name: out[name] for name in out}  # each read makes the state: read each once
    for name in zero:
        want = tuned[name] if name != "logit_scale" else scale
        torch.testing.assert_close(
            merged["wise-ft-0.30"][name], by_hand(zero[name], want, 0.3), rtol=1e-6, atol=1e-7
        )
        assert torch.equal(merged["wise-ft-0.00"][name], zero[name])
        assert torch.equal(merged["wise-ft-1.00"][name], want)


class LiveStates:
    """Counts the merged states alive at once: each state's head tensor, tracked until it is freed."""

    def __init__(self):
        self.alive = self.most = self.made = 0

    def merge(self, zero, tuned, alpha):
        state = wise(zero, tuned, alpha)
        self.alive += 1
        self.made += 1
        self.most = max(self.most, self.alive)
        weakref.finalize(state["head"], self._freed)
        return state

    def _freed(self):
        self.alive -= 1


def test_the_grid_is_written_one_state_at_a_time_and_read_back_when_used(tmp_path, monkeypatch):
    """Eight states (two methods x four alphas) pass through the catalog with at most two in memory
    (the one written and the next one made), and load as mappings that read their file when used."""
    _, _, _, zero, tuned = states()
    g = torch.Generator().manual_seed(2)
    other = {k: v - 0.08 * torch.randn(v.shape, generator=g) for k, v in zero.items()}
    live = LiveStates()
    monkeypatch.setattr(wise_grid, "wise", live.merge)
    alphas = [0.0, 0.3, 0.85, 1.0]
    out = wise_models(
        *node_inputs({"ft": tuned, "lipsum": other}),
        {"reference_domain": "photo", "wise": {"alphas": alphas}},
    )
    assert live.made == 0  # nothing is merged before it is written
    with pytest.raises(KeyError):
        out["wise-ft-0.50"]  # not on the grid

    dataset = TensorCollectionDataset(filepath=str(tmp_path / "wise"))
    dataset.save(out)
    gc.collect()
    assert live.made == 8 and live.most <= 2, (live.made, live.most)  # made up front, all 8 alive at once
    assert live.alive == 0

    loaded = dataset.load()
    assert sorted(loaded) == sorted(out)
    state = loaded["wise-lipsum-0.85"]
    assert isinstance(state, SafetensorsState) and state.keys() == zero.keys()
    with pytest.raises(KeyError):
        state["visual.missing"]
    read = dict(state)
    for name in ("head", "visual.conv1.weight"):
        torch.testing.assert_close(read[name], by_hand(zero[name], other[name], 0.85), rtol=1e-6, atol=1e-7)
    tower = ClipClassifier(new_model("TinyCLIP-ViT-P8-32", seed=3)[0].visual, torch.zeros(128, 4), 14.0)
    tower.load_state_dict(loaded["wise-ft-0.30"])  # what evaluation does with each state
    torch.testing.assert_close(tower.state_dict()["head"], by_hand(zero["head"], tuned["head"], 0.3))

    (tmp_path / "wise" / "wise-ft-0.30.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(DatasetError, match="wise-ft-0.30.safetensors: not a readable safetensors file"):
        dataset.load()
