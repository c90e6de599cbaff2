"""Models held on a device for inference (``clip.inference.inference_on``), and what runs there:
evaluation's scoring, the studies' per-image outcomes, the zero-shot head, the loop's memory peak, and
the fine-tuned model that leaves the device.

A move between devices makes new tensors. Made inside inference mode they are inference tensors, and
the scratch classifier that evaluation reuses for every WiSE and TPGM state refuses the next
``load_state_dict``. On a CPU ``.to("cpu")`` moves nothing, so the CPU tests here move by cloning, as
a real move does; the CUDA tests (run by ``benchmarks/device_check.sh``) move for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.inference import inference_on
from lipsum_ft.clip.zeroshot import classifier_for
from lipsum_ft.evaluation.variants import classifiers, score_variants
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.pipelines.zeroshot.nodes import build_zeroshot_head
from lipsum_ft.posthoc.wise import wise
from lipsum_ft.studies.outcomes import classifier_outcomes
from lipsum_ft.training.runs import finetune_one
from tests.training.loop_helpers import CLASSNAMES, tiny_setup

REPO = Path(__file__).resolve().parents[2]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cloning_moves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``Module.to`` and ``Module.cpu`` make new tensors even on a CPU, in the caller's mode (as a move
    to another device does); returns the list of moves made, in order."""
    moves: list[str] = []

    def move(name):
        def moved(self, *args, **kwargs):
            moves.append(name)
            return self._apply(lambda tensor: tensor.clone())

        return moved

    monkeypatch.setattr(nn.Module, "to", move("to"))
    monkeypatch.setattr(nn.Module, "cpu", move("cpu"))
    return moves


@pytest.fixture(scope="module")
def tiny():
    """The loop tests' TinyCLIP and head (four classes), its two image sets as two domains, 6 unit texts."""
    model, spec, weight, train, val = tiny_setup()
    texts = F.normalize(torch.randn(6, 128, generator=torch.Generator().manual_seed(5)), dim=-1)
    return (
        model,
        spec,
        {"weight": weight, "logit_scale": torch.tensor(30.0)},
        {"photo": train, "sketch": val},
        texts,
    )


def states(model: nn.Module, head: dict[str, torch.Tensor]) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Two WiSE states between the zero-shot classifier and one moved away from it (what evaluation gets)."""
    zero_shot = classifier_for(model, head).state_dict()
    g = torch.Generator().manual_seed(6)
    away = {
        k: v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
        for k, v in zero_shot.items()
    }
    return [(f"wise-ft-{a}", wise(zero_shot, away, a)) for a in (0.25, 0.75)]


def scored(tiny, device: str = "cpu") -> pd.DataFrame:
    model, _, head, data, texts = tiny
    candidates = [("zeroshot", classifier_for(model, head)), *states(model, head)]
    settings = EvaluateParams(reference_domain="photo", batch_size=5, progress=False, device=device)
    rows, _ = score_variants(model, head, candidates, data, texts, {}, settings)
    return rows


def test_a_held_module_keeps_ordinary_tensors_even_inside_a_callers_inference_mode(monkeypatch):
    moves = cloning_moves(monkeypatch)
    module = nn.Linear(3, 2).train()
    module.register_buffer("scale", torch.tensor(2.5))
    with torch.inference_mode(), inference_on(module, "cpu") as held:
        assert held is module and not module.training
        assert torch.is_inference_mode_enabled()  # the body still runs in inference mode
        out = module(torch.ones(1, 3))
    assert out.is_inference()
    assert moves == ["to", "cpu"]
    assert not [name for name, t in module.state_dict().items() if t.is_inference()]
    module.load_state_dict({k: v * 3 for k, v in module.state_dict().items()})  # what evaluation does next
    assert module.scale.item() == 7.5


def test_a_held_module_goes_back_to_the_cpu_when_the_body_fails(monkeypatch):
    moves = cloning_moves(monkeypatch)
    with pytest.raises(ValueError, match="scoring failed"), inference_on(nn.Linear(3, 2), "cpu"):
        raise ValueError("scoring failed")
    assert moves == ["to", "cpu"]


def test_evaluation_scores_state_after_state_in_one_scratch_classifier_across_device_moves(tiny, monkeypatch):
    """Each state is loaded into the classifier that scored the one before: moved to the device and
    back inside inference mode, its second load failed (on CUDA, at the second WiSE alpha)."""
    expected = scored(tiny)
    moves = cloning_moves(monkeypatch)
    rows = scored(tiny)
    assert moves.count("to") == 3 and moves.count("cpu") == 3  # each variant went there and back
    assert sorted(rows["variant"].unique()) == ["wise-ft-0.25", "wise-ft-0.75", "zeroshot"]
    pd.testing.assert_frame_equal(rows, expected)
    assert rows.groupby("domain")["nll"].nunique().eq(3).all()  # three variants, three scores per domain


def test_the_scratch_classifier_copies_the_image_tower_and_head_alone(tiny, monkeypatch):
    # the text tower is half of a CLIP (ViT-B/16: 63 of 150 M parameters) and no state holds it
    model, _, head, _, _ = tiny

    def refuse(memo):
        raise AssertionError("the text tower was copied")

    monkeypatch.setattr(model.transformer, "__deepcopy__", refuse, raising=False)
    named = list(classifiers(model, head, states(model, head)))
    assert [name for name, _ in named] == ["wise-ft-0.25", "wise-ft-0.75"]
    scratch = named[0][1]
    assert named[1][1] is scratch  # one scratch classifier for every state
    originals = {t.data_ptr() for t in model.state_dict().values()}
    assert not originals & {t.data_ptr() for t in scratch.state_dict().values()}  # a copy, not the model
    torch.testing.assert_close(scratch.state_dict(), dict(states(model, head)[1][1]))


def test_per_image_outcomes_of_one_classifier_loaded_state_after_state(tiny, monkeypatch):
    model, _, head, data, texts = tiny
    cloning_moves(monkeypatch)
    classifier = classifier_for(model, head)
    for _, state in states(model, head):
        classifier.load_state_dict(state)
        outcomes, features = classifier_outcomes(classifier, data, None, texts, {}, batch_size=5)
        assert set(outcomes) == set(features) == {"photo", "sketch"}
    assert not [name for name, t in classifier.state_dict().items() if t.is_inference()]


@cuda
def test_evaluation_on_cuda_scores_as_the_cpu_does(tiny):
    expected = scored(tiny)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        rows = scored(tiny, "cuda")
    assert list(rows["variant"]) == list(expected["variant"])
    for column in ("acc", "nll", "ece"):
        torch.testing.assert_close(
            torch.tensor(rows[column].to_numpy()),
            torch.tensor(expected[column].to_numpy()),
            rtol=1e-3,
            atol=1e-3,
        )
    model = tiny[0]
    assert all(t.device.type == "cpu" for t in model.state_dict().values())  # handed back on the CPU


@cuda
def test_the_zero_shot_head_is_built_on_its_device_and_returned_on_the_cpu(tiny):
    model, spec, _, _, _ = tiny
    classnames, templates = ["cat", "dog", "house"], ["a photo of a {}.", "a sketch of a {}."]
    on_cpu = build_zeroshot_head(ClipBundle(model, spec), classnames, {"templates": templates})
    on_gpu = build_zeroshot_head(
        ClipBundle(model, spec), classnames, {"templates": templates, "device": "cuda"}
    )
    assert on_gpu["weight"].device.type == "cpu" and next(model.parameters()).device.type == "cpu"
    torch.testing.assert_close(on_gpu["weight"], on_cpu["weight"], rtol=1e-4, atol=1e-4)


FRESH_FIT = """
import torch
from lipsum_ft.training.loop import fit
from tests.training.loop_helpers import config, make, tiny_setup

setup = tiny_setup()
assert not torch.cuda.is_initialized()
settings = config(accelerator="cuda", precision="bf16-mixed", steps=2, eval_every=1)
print("peak_memory_gib", fit(make(setup, "lipsum"), setup[3], setup[4], settings).peak_memory_gib)
"""


@cuda
def test_a_fresh_process_fits_on_cuda_and_reports_its_memory_peak():
    """The first CUDA use of a ``kedro run --pipeline=finetune`` is the loop's: the memory peak's reset
    came before it and failed ("Invalid device argument ... did you call init?")."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", FRESH_FIT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.split("peak_memory_gib")[-1]) > 0


@cuda
def test_a_model_fine_tuned_on_cuda_leaves_the_node_on_the_cpu(tiny):
    """``fit`` moves the objective, and the zero-shot model it holds, to the device in place; the export
    was copied there and stayed, so the in-memory studies' WiSE (zero-shot state on the CPU) failed on
    mixed devices, and every run's export held GPU memory into the next run's peak."""
    model, spec, head, data, _ = tiny
    finetune = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    finetune.update(reference_domain="photo", loader={}, steps=2, batch_size=8, eval_every=1)
    finetune.update(accelerator="cuda", precision="bf16-mixed", checkpoint_every=0, progress=False)
    params = parse(FinetuneParams, finetune)
    bundle, _ = finetune_one("ft", params, ClipBundle(model, spec), head, CLASSNAMES, *data.values())
    tensors = [*bundle.model.state_dict().values(), bundle.head["weight"], *model.state_dict().values()]
    assert {t.device.type for t in tensors} == {"cpu"}  # the export and the zero-shot model given to it
    zero_shot = classifier_for(model, head).state_dict()
    wise(zero_shot, classifier_for(bundle.model, bundle.head).state_dict(), 0.5)  # one device: no error
