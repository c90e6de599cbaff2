"""Held image sets: each streamed image decoded once, by the streamed path's own workers and eval
transform, and every variant scored on the very pixels streaming would have given it."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import lipsum_ft.data.images as images_module
from lipsum_ft.clip.backbone import ClipBundle, new_model
from lipsum_ft.clip.zeroshot import classifier_for
from lipsum_ft.data.held import GIB, decoded_once, hold_decoded
from lipsum_ft.data.images import InMemoryImages, LoaderSettings, StreamedImages
from lipsum_ft.evaluation.variants import evaluate_on_split
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.studies.ablation_candidates import candidate_images
from tests.data.jpeg_files import MEAN, STD, jpegs


def test_a_held_set_gives_the_streamed_batches_exactly(tmp_path):
    paths = jpegs(tmp_path, 7)
    streamed = StreamedImages(paths, [2, 0, 1, 2, 1, 0, 2], 32, MEAN, STD, LoaderSettings(workers=2))
    held = decoded_once(streamed, batch_size=3)  # batches of 3, 3 and 1 fill it
    assert isinstance(held, InMemoryImages) and held.images.dtype == torch.uint8
    assert held.images.shape == (7, 3, 32, 32) and torch.equal(held.labels, streamed.labels)
    for batch in (4, 7):
        assert torch.equal(
            torch.cat(list(held.eval_batches(batch))), torch.cat(list(streamed.eval_batches(batch)))
        )


def test_sets_are_held_in_order_while_they_fit_and_the_rest_keep_streaming(tmp_path):
    per_image = 3 * 32 * 32

    def streamed(count: int, first: int) -> StreamedImages:
        return StreamedImages(jpegs(tmp_path, count, first), [0] * count, 32, MEAN, STD)

    sets = {
        "a": streamed(3, 0),
        "b": streamed(5, 3),  # does not fit what "a" leaves
        "m": InMemoryImages(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2).long(), MEAN, STD),
        "c": streamed(2, 8),  # fits what "a" leaves: held although "b" before it was not
    }
    out = hold_decoded(sets, budget_gib=5 * per_image / GIB, batch_size=4)
    assert list(out) == ["a", "b", "m", "c"]
    assert isinstance(out["a"], InMemoryImages) and isinstance(out["c"], InMemoryImages)
    assert out["b"] is sets["b"] and out["m"] is sets["m"]
    assert all(out[key] is sets[key] for key in sets for out in [hold_decoded(sets, 0, 4)])


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Every file the eval transform reads (workers = 0: in this process)."""
    read, seen = images_module.read_rgb, []

    def counted(path, where=None):
        seen.append(path)
        return read(path, where)

    monkeypatch.setattr(images_module, "read_rgb", counted)
    return seen


def test_evaluation_with_held_test_sets_decodes_each_image_once_and_scores_as_streaming_does(
    tmp_path, decodes
):
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    g = torch.Generator().manual_seed(4)
    head = {"weight": F.normalize(torch.randn(128, 3, generator=g), dim=0), "logit_scale": torch.tensor(14.0)}
    zero = classifier_for(model, head).state_dict()
    states = {  # two post-hoc variants, as WiSE and TPGM hand evaluation states
        f"wise-ft-{alpha}": {k: v + alpha * 0.05 * torch.randn(v.shape, generator=g) for k, v in zero.items()}
        for alpha in (0.3, 1.0)
    }
    paths = jpegs(tmp_path, 7)
    manifest = pd.DataFrame(
        {
            "split": "test",
            "domain": ["photo"] * 4 + ["sketch"] * 3,
            "label": [0, 2, 1, 2, 0, 0, 1],
            "path": paths,
        }
    )

    def evaluate(hold_gib: float):
        params = EvaluateParams(
            reference_domain="photo",
            batch_size=3,
            loader={"mode": "stream", "workers": 0},
            hold_decoded_gib=hold_gib,
            progress=False,
        )
        decodes.clear()
        bundle = ClipBundle(model, spec)
        results, reliability = evaluate_on_split(
            bundle, head, {}, states, (manifest, ["a", "b", "c"], {}), params
        )
        return results, reliability, sorted(decodes)

    streamed, streamed_bins, streamed_reads = evaluate(0)
    held, held_bins, held_reads = evaluate(1)
    assert streamed_reads == sorted(paths * 3)  # zero-shot and both states: three decodes of each image
    assert held_reads == sorted(paths)  # held: one
    assert list(held["variant"].unique()) == ["zeroshot", "wise-ft-0.3", "wise-ft-1.0"]
    pd.testing.assert_frame_equal(held, streamed, check_exact=True)
    assert held_bins == streamed_bins


def test_the_ablation_holds_its_test_sets_first_then_its_val_sets(tmp_path, decodes):
    """Hundreds of candidates read the test sets and the val sets: held, each file is read once in all."""
    _, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    paths = jpegs(tmp_path, 9)
    manifest = pd.DataFrame(
        {
            "split": ["test"] * 5 + ["val"] * 4,
            "domain": ["photo", "photo", "sketch", "sketch", "sketch", "photo", "photo", "sketch", "sketch"],
            "label": [0, 1, 2, 0, 1, 2, 0, 1, 2],
            "path": paths,
        }
    )

    def reads(hold_gib: float) -> tuple[list[str], list[str]]:
        """Files read while loading, and then while two candidates read every set."""
        params = EvaluateParams(
            reference_domain="photo", batch_size=2, loader={"mode": "stream"}, hold_decoded_gib=hold_gib
        )
        decodes.clear()
        test, reference_val, shift_val = candidate_images(manifest, spec, params, "val")
        loading = sorted(decodes)
        decodes.clear()
        for _ in range(2):
            for images in [*test.values(), reference_val, *shift_val.values()]:
                list(images.eval_batches(2))
        return loading, sorted(decodes)

    assert reads(1) == (sorted(paths), [])
    per_image = 3 * spec.image_size**2
    assert reads(5 * per_image / GIB) == (sorted(paths[:5]), sorted(paths[5:] * 2))  # test only
    assert reads(0) == ([], sorted(paths * 2))


def test_a_missing_reference_domain_is_named_before_anything_is_decoded(tmp_path, decodes):
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = {"weight": F.normalize(torch.ones(128, 2), dim=0), "logit_scale": torch.tensor(14.0)}
    paths = jpegs(tmp_path, 3)
    manifest = pd.DataFrame(
        {"split": "test", "domain": ["sketch", "sketch", "clipart"], "label": 0, "path": paths}
    )
    params = EvaluateParams(
        reference_domain="photo", loader={"mode": "stream"}, hold_decoded_gib=1, progress=False
    )
    with pytest.raises(
        ValueError,
        match=r"evaluate.reference_domain 'photo' has no 'test' rows; domains: \['clipart', 'sketch'\]",
    ):
        evaluate_on_split(ClipBundle(model, spec), head, {}, {}, (manifest, ["a", "b"], {}), params)
    assert decodes == []  # named before the held sets were decoded, not after
