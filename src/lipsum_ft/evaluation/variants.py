"""Every model variant of a run scored on every domain: the zero-shot model, the fine-tuned ones, and
the post-hoc ones (WiSE, TPGM) that exist only as classifier states.

The zero-shot model comes first: its image features are the reference of every later variant's
energy gap and feature distortion. The ``evaluate`` pipeline and the ablation study score their
candidates through ``scored_in_order``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.text import encode_tokens
from lipsum_ft.clip.zeroshot import ClipClassifier, classifier_for
from lipsum_ft.data.held import hold_decoded
from lipsum_ft.data.images import load_split_for
from lipsum_ft.evaluation.scoring import DomainScores, score_variant, scoring_groups
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.posthoc.variant_names import describe
from lipsum_ft.training.guidance import RandomTokens

Candidate = ClipClassifier | Mapping[str, torch.Tensor]
Scored = TypeVar("Scored")
Features = TypeVar("Features")


def energy_text_features(model: nn.Module, num_texts: int, length: int, seed: int) -> torch.Tensor:
    """The fixed random texts of the energy gap (``evaluate.energy``), as unit text features: the
    same texts for every variant and run, so that gaps compare."""
    with torch.no_grad():
        return F.normalize(encode_tokens(model, RandomTokens(num_texts, length, seed).tokens(0)), dim=-1)


def classifiers(
    model: nn.Module, zeroshot_head: dict[str, torch.Tensor], candidates: Iterable[tuple[str, Candidate]]
) -> Iterator[tuple[str, ClipClassifier]]:
    """Each candidate as a classifier: a classifier as it is; a state loaded into one scratch copy of
    the zero-shot classifier (so hundreds of states cost one image tower in memory; the text tower,
    which no state holds, is not copied)."""
    scratch = copy.deepcopy(classifier_for(model, zeroshot_head))
    for name, candidate in candidates:
        if isinstance(candidate, ClipClassifier):
            yield name, candidate
        else:
            scratch.load_state_dict(candidate)
            yield name, scratch


def scored_in_order(
    named: Iterable[tuple[str, ClipClassifier]],
    score: Callable[[str, ClipClassifier, Features | None], tuple[Scored, Features]],
) -> Iterator[tuple[str, Scored]]:
    """``score(name, classifier, reference)`` of each classifier, the first one's features being every
    later one's reference (the first is the zero-shot model, its own reference)."""
    reference = None
    for name, classifier in named:
        scored, features = score(name, classifier, reference)
        if reference is None:
            reference = features
        yield name, scored


def variant_candidates(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    finetuned: Mapping[str, ClipBundle],
    states: Mapping[str, Mapping[str, torch.Tensor]],
) -> list[tuple[str, Candidate]]:
    """Zero-shot first, then every fine-tuned model, then every post-hoc state, by variant name."""
    return [
        ("zeroshot", classifier_for(pretrained_clip.model, zeroshot_head)),
        *((name, classifier_for(bundle.model, bundle.head)) for name, bundle in finetuned.items()),
        *states.items(),
    ]


def variant_rows(
    name: str, scores: Mapping[str, DomainScores], reference_domain: str, split: str
) -> list[dict[str, Any]]:
    """One results row per domain of one variant: its description, role and metrics."""
    return [
        {
            "variant": name,
            **describe(name),
            "domain": domain,
            "role": "reference" if domain == reference_domain else "shift",
            "split": split,
            **score.metrics,
        }
        for domain, score in scores.items()
    ]


def score_variants(
    model: nn.Module,
    zeroshot_head: dict[str, torch.Tensor],
    candidates: Iterable[tuple[str, Candidate]],
    data: Mapping[str, Any],
    texts: torch.Tensor,
    groups: Mapping[str, list[list[int]]],
    settings: EvaluateParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Accuracy, NLL, ECE, energy gap and feature distortion of every candidate on every domain of
    ``data`` (one row per variant and domain), and each one's reliability bins.

    """

    def score(name, classifier, reference):
        return score_variant(
            classifier,
            data,
            reference,
            texts,
            groups,
            settings.batch_size,
            settings.ece_bins,
            settings.progress,
            name,
            settings.device,
        )

    rows, reliability = [], {}
    for name, scores in scored_in_order(classifiers(model, zeroshot_head, candidates), score):
        rows += variant_rows(name, scores, settings.reference_domain, settings.split)
        reliability.update({f"{name}/{domain}": s.reliability for domain, s in scores.items()})
    return pd.DataFrame(rows), reliability


def evaluate_on_split(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    finetuned: Mapping[str, ClipBundle],
    states: Mapping[str, Mapping[str, torch.Tensor]],
    inputs: tuple[pd.DataFrame, list[str], Mapping[str, list[list[int]]]],
    params: EvaluateParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Zero-shot, every fine-tuned model and every post-hoc state scored on every domain of
    ``evaluate.split``; ``inputs`` is (manifest, classnames, the dataset's class groups)."""
    manifest, classnames, class_groups = inputs
    spec, model = pretrained_clip.spec, pretrained_clip.model.eval()
    data = load_split_for(manifest, params.split, spec, params.loader, params.progress)
    if params.reference_domain not in data:
        raise ValueError(
            f"evaluate.reference_domain {params.reference_domain!r} has no {params.split!r} rows; "
            f"domains: {sorted(data)}"
        )
    data = hold_decoded(data, params.hold_decoded_gib, params.batch_size, params.progress)
    groups = scoring_groups(class_groups, params.class_subsets, classnames)
    texts = energy_text_features(model, params.energy.num_texts, params.energy.length, params.energy.seed)
    candidates = variant_candidates(pretrained_clip, zeroshot_head, finetuned, states)
    return score_variants(model, zeroshot_head, candidates, data, texts, groups, params)
