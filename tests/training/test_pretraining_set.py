"""The benchmark-design knobs of the embedded pretraining set (issue 23): caption noise and domain shares.

Each does what it claims, is deterministic in the seed, and at its default leaves today's set untouched.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lipsum_ft.params.pretrain import PretrainParams
from lipsum_ft.params.shared import ParameterError, parse
from lipsum_ft.training.pretraining import caption_labels, kept_for_pretraining, pretraining_selection

CLASSES = 10
DOMAINS = ("photo", "sketch", "clipart")


def labels_of(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CLASSES, count)


def rows(per_cell: int) -> tuple[np.ndarray, list[str]]:
    """``per_cell`` images of every (domain, class), in a shuffled order."""
    labels = np.tile(np.repeat(np.arange(CLASSES), per_cell), len(DOMAINS))
    domains = np.repeat(DOMAINS, CLASSES * per_cell)
    order = np.random.default_rng(7).permutation(len(labels))
    return labels[order], domains[order].tolist()


def test_noise_zero_gives_the_labels_exactly():
    labels = labels_of(5000)
    captions = caption_labels(labels, 0.0, CLASSES, seed=3)
    assert captions.dtype == labels.dtype and np.array_equal(captions, labels)
    assert captions is not labels


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_noise_mislabels_its_fraction_within_binomial_tolerance(noise):
    count = 20000
    labels = labels_of(count)
    captions = caption_labels(labels, noise, CLASSES, seed=0)
    wrong = float((captions != labels).mean())
    # 4 binomial standard deviations: 0.013 at 0.3 over 20,000 captions
    assert abs(wrong - noise) <= 4 * math.sqrt(noise * (1 - noise) / count)
    # a wrong caption names each other class about alike (uniform over the 9 others)
    offsets = (captions - labels)[captions != labels] % CLASSES
    shares = np.bincount(offsets, minlength=CLASSES)[1:] / len(offsets)
    assert np.all(np.abs(shares - 1 / 9) < 0.02)


def test_noise_is_deterministic_in_the_seed_and_nested_across_levels():
    labels = labels_of(4000)
    assert np.array_equal(caption_labels(labels, 0.3, CLASSES, 1), caption_labels(labels, 0.3, CLASSES, 1))
    assert not np.array_equal(
        caption_labels(labels, 0.3, CLASSES, 1), caption_labels(labels, 0.3, CLASSES, 2)
    )
    low, high = caption_labels(labels, 0.2, CLASSES, 1), caption_labels(labels, 0.4, CLASSES, 1)
    wrong_low = low != labels
    assert np.all((high != labels)[wrong_low]) and np.array_equal(high[wrong_low], low[wrong_low])


def test_no_share_keeps_every_image():
    labels, domains = rows(5)
    assert kept_for_pretraining(labels, domains, {}, seed=0).all()
    assert kept_for_pretraining(labels, domains, {"photo": 1.0}, seed=0).all()


def test_share_zero_shows_pretraining_no_image_of_that_domain():
    labels, domains = rows(6)
    keep = kept_for_pretraining(labels, domains, {"photo": 0.0}, seed=0)
    is_photo = np.asarray(domains) == "photo"
    assert not keep[is_photo].any() and keep[~is_photo].all()


def test_share_half_keeps_half_of_each_class_of_that_domain():
    labels, domains = rows(9)
    keep = kept_for_pretraining(labels, domains, {"photo": 0.5}, seed=0)
    is_photo = np.asarray(domains) == "photo"
    per_class = np.bincount(labels[keep & is_photo], minlength=CLASSES)
    assert np.all(per_class == 5)  # round(0.5 x 9), in every class
    assert keep[~is_photo].all()
    assert abs(keep[is_photo].mean() - 0.5) < 0.06


def test_shares_are_deterministic_in_the_seed_and_nested():
    labels, domains = rows(20)
    half = kept_for_pretraining(labels, domains, {"photo": 0.5}, seed=4)
    assert np.array_equal(half, kept_for_pretraining(labels, domains, {"photo": 0.5}, seed=4))
    assert not np.array_equal(half, kept_for_pretraining(labels, domains, {"photo": 0.5}, seed=5))
    quarter = kept_for_pretraining(labels, domains, {"photo": 0.25}, seed=4)
    assert np.all(half[quarter])  # a smaller share keeps a subset of a larger one's images
    both = kept_for_pretraining(labels, domains, {"photo": 0.5, "sketch": 0.0}, seed=4)
    is_photo = np.asarray(domains) == "photo"
    assert np.array_equal(both[is_photo], half[is_photo])  # one domain's share never moves another's


def test_a_share_of_an_unknown_domain_is_refused_by_name():
    labels, domains = rows(2)
    with pytest.raises(ValueError, match=r"pretrain\.domain_shares.*'fhoto'"):
        kept_for_pretraining(labels, domains, {"fhoto": 0.5}, seed=0)


def test_a_selection_that_leaves_a_class_without_captions_is_refused():
    labels, domains = rows(2)
    with pytest.raises(ValueError, match=r"pretrain\.domain_shares.*no pretraining image"):
        pretraining_selection(labels, domains, CLASSES, 0.0, dict.fromkeys(DOMAINS, 0.0), seed=0)


def test_selection_draws_captions_before_the_shares_choose():
    labels, domains = rows(8)
    all_kept, all_captions = pretraining_selection(labels, domains, CLASSES, 0.3, {}, seed=2)
    keep, captions = pretraining_selection(labels, domains, CLASSES, 0.3, {"photo": 0.5}, seed=2)
    assert all_kept.all()
    assert np.array_equal(captions, all_captions[keep])  # an image's caption does not depend on the shares


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("caption_noise", 1.5, r"pretrain\.caption_noise"),
        ("caption_noise", -0.1, r"pretrain\.caption_noise"),
        ("domain_shares", {"photo": 1.5}, r"pretrain\.domain_shares\.photo"),
    ],
)
def test_knobs_out_of_range_are_refused_by_name(key, value, message):
    params = {"source": "embedded", "model": "TinyCLIP-ViT-P8-32", "captions": {"templates": ["a {name}"]}}
    with pytest.raises(ParameterError, match=message):
        parse(PretrainParams, params | {key: value})


def test_knobs_are_refused_for_real_open_clip_weights():
    params = {"source": "open_clip", "model": "ViT-B-16", "caption_noise": 0.2}
    with pytest.raises(ParameterError, match="caption_noise"):
        parse(PretrainParams, params)
