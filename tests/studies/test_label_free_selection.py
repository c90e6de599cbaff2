"""Model choice without shift labels: label-free criteria take images that carry no labels (a property
of their types), and each criterion picks what its rule says, ties included."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Mapping

import pandas as pd
import pytest
import torch

from lipsum_ft.data.images import InMemoryImages
from lipsum_ft.data.unlabelled import UnlabelledImages, without_labels
from lipsum_ft.evaluation.metrics import energy_gap
from lipsum_ft.studies import selection

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _images(seed: int, n: int = 10) -> InMemoryImages:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g)
    return InMemoryImages(pixels, torch.arange(n) % 3, MEAN, STD)


def _tower(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))


def _reachable(root: object, depth: int = 4) -> list[object]:
    seen, frontier = [], [root]
    for _ in range(depth):
        frontier = [r for obj in frontier for r in gc.get_referents(obj)]
        seen += frontier
    return seen


def test_unlabelled_images_hold_no_path_back_to_the_labels():
    images = _images(0)
    unlabelled = UnlabelledImages(images)
    assert not hasattr(unlabelled, "labels") and len(unlabelled) == 10
    assert not any(
        obj is images.labels for obj in _reachable(unlabelled)
    )  # the true labels are not behind it
    assert not any(obj is images for obj in _reachable(unlabelled))
    batches = torch.cat(list(unlabelled.eval_batches(4)))
    assert torch.equal(batches, torch.cat(list(images.eval_batches(4))))  # the same pixels, same order


def test_label_free_gap_is_the_energy_gap_and_ignores_any_labels():
    texts = torch.nn.functional.normalize(
        torch.randn(7, 5, generator=torch.Generator().manual_seed(3)), dim=-1
    )
    tuned, zero = _tower(1), _tower(2)
    sets = {"sketch": _images(4), "clipart": _images(5, n=6)}
    unlabelled = without_labels(sets)
    zero_features = selection.unlabelled_features(zero, unlabelled, batch_size=4)
    gap = selection.label_free_energy_gap(tuned, unlabelled, zero_features, texts, batch_size=3)

    def direct(images: InMemoryImages) -> float:
        with torch.no_grad():
            f = torch.nn.functional.normalize(tuned(torch.cat(list(images.eval_batches(99)))), dim=-1)
            f0 = torch.nn.functional.normalize(zero(torch.cat(list(images.eval_batches(99)))), dim=-1)
        return energy_gap(f, f0, texts)

    assert gap == pytest.approx((direct(sets["sketch"]) + direct(sets["clipart"])) / 2, rel=1e-5)
    for image_set in sets.values():  # relabel at random after wrapping: nothing changes
        image_set.labels = torch.randint(0, 3, image_set.labels.shape)
    assert selection.label_free_energy_gap(tuned, unlabelled, zero_features, texts, 3) == pytest.approx(gap)


def test_labelled_sets_are_refused_by_name():
    with pytest.raises(TypeError, match="domain 'sketch': label-free selection takes UnlabelledImages"):
        selection.unlabelled_features(_tower(0), {"sketch": _images(0)}, batch_size=4)


@pytest.mark.parametrize("criterion", [selection.label_free_energy_gap, selection.unlabelled_features])
def test_label_free_signatures_name_unlabelled_images_and_no_labels(criterion):
    hints = inspect.get_annotations(criterion, eval_str=True)
    assert hints["images"] == Mapping[str, UnlabelledImages]
    assert not [name for name in inspect.signature(criterion).parameters if "label" in name]


def test_each_criterion_picks_by_its_rule():
    names = ["a", "b", "c", "d"]
    ref_acc = pd.Series([0.90, 0.93, 0.925, 0.93], index=names)
    ref_nll = pd.Series([0.30, 0.40, 0.20, 0.35], index=names)
    gap = pd.Series([0.0001, 0.0030, 0.0010, 0.0020], index=names)
    shift = pd.Series([0.70, 0.72, 0.74, 0.71], index=names)
    assert (
        selection.by_reference_accuracy(ref_acc, ref_nll) == "d"
    )  # b and d tie on accuracy; d has lower NLL
    assert selection.by_energy_gap(gap) == "a"
    # within 1 point of the best (0.93): b, c, d; among them c has the smallest gap; a (0.90) is out
    assert selection.by_accuracy_then_energy_gap(ref_acc, gap, tolerance=0.01) == "c"
    # a tolerance of exactly the distance to the best admits that candidate (>=, not >)
    assert selection.by_accuracy_then_energy_gap(ref_acc, gap, tolerance=0.005) == "c"
    assert selection.by_accuracy_then_energy_gap(ref_acc, gap, tolerance=0.0) == "d"
    assert selection.oracle(shift) == "c"
