"""The ablation study's candidates scored: zero-shot, every run at every WiSE alpha and the chain's TPGM
models, each by its per-image test outcomes and by what model choice may read (reference val accuracy
and NLL, and the energy gap on the shift domains' val images, which carry no labels).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from lipsum_ft.clip.backbone import ClipBundle, ModelSpec
from lipsum_ft.clip.inference import inference_on
from lipsum_ft.clip.zeroshot import ClipClassifier, classifier_for
from lipsum_ft.data.held import hold_decoded
from lipsum_ft.data.images import ImageSet, load_split_for
from lipsum_ft.data.unlabelled import UnlabelledImages, without_labels
from lipsum_ft.evaluation.metrics import classification_metrics, group_logits
from lipsum_ft.evaluation.scoring import scoring_groups
from lipsum_ft.evaluation.variants import classifiers, energy_text_features, scored_in_order
from lipsum_ft.params.ablation import AblationParams
from lipsum_ft.params.evaluate import EvaluateParams
from lipsum_ft.posthoc.variant_names import describe
from lipsum_ft.posthoc.wise import wise
from lipsum_ft.studies.outcomes import classifier_outcomes, outcome_frame
from lipsum_ft.studies.selection import label_free_energy_gap, unlabelled_features


def candidate_states(
    zero: dict[str, torch.Tensor],
    ablation_models: dict[str, ClipBundle],
    tpgm_models: dict[str, dict[str, torch.Tensor]],
    alphas: list[float],
) -> Iterator[tuple[str, dict[str, Any], dict[str, torch.Tensor]]]:
    """(name, description, classifier state) of zero-shot, every run x alpha > 0, and the chain's TPGM."""
    yield "zeroshot", {"source": "zeroshot", "setting": "zeroshot", "method": "zeroshot", "alpha": 0.0}, zero
    for run, bundle in ablation_models.items():
        tuned = classifier_for(bundle.model, bundle.head).state_dict()
        setting = bundle.spec.extra["ablation"]
        for alpha in sorted(a for a in alphas if a > 0):
            description = {"source": "study", "run": run, **setting, "alpha": alpha}
            yield f"{run}@{alpha:.2f}", description, wise(zero, tuned, alpha)
    for variant, state in tpgm_models.items():
        description = {
            "source": "chain",
            "setting": variant,
            "method": describe(variant)["method"],
            "alpha": np.nan,
        }
        yield f"chain/{variant}", description, state


def selection_criteria(
    classifier: ClipClassifier,
    reference_val: ImageSet,
    shift_val: dict[str, UnlabelledImages],
    zero_shift_val: dict[str, torch.Tensor],
    texts: torch.Tensor,
    groups: list[list[int]] | None,
    params: EvaluateParams,
) -> dict[str, float]:
    """What model choice may read of a candidate: reference val accuracy and NLL, and the energy gap
    on the shift domains' val images, which carry no labels."""
    with inference_on(classifier, params.device):
        batches = reference_val.eval_batches(params.batch_size, params.device)
        logits = torch.cat([classifier(batch).float() for batch in batches]).cpu()
        gap = label_free_energy_gap(
            classifier.visual, shift_val, zero_shift_val, texts, params.batch_size, params.device
        )
    labels = reference_val.labels
    if groups is not None:
        logits, labels = group_logits(logits, labels, groups)
    reference = classification_metrics(logits, labels, params.ece_bins)
    return {"ref_val_acc": reference["acc"], "ref_val_nll": reference["nll"], "shift_val_energy_gap": gap}


def candidate_images(
    manifest: pd.DataFrame, spec: ModelSpec, params: EvaluateParams, val_split: str
) -> tuple[dict[str, ImageSet], ImageSet, dict[str, UnlabelledImages]]:
    """The test images of every domain, the reference domain's val images, and the shift domains' val
    images stripped of their labels (from here on, nothing can read them). Every candidate reads them
    all: streamed sets are decoded once and held while they fit ``evaluate.hold_decoded_gib``, test first."""
    splits = [
        load_split_for(manifest, split, spec, params.loader, False) for split in (params.split, val_split)
    ]
    held = hold_decoded(
        {(i, domain): images for i, split in enumerate(splits) for domain, images in split.items()},
        params.hold_decoded_gib,
        params.batch_size,
    )
    test, val = ({domain: held[(i, domain)] for domain in split} for i, split in enumerate(splits))
    reference_val = val.pop(params.reference_domain)
    return test, reference_val, without_labels(val)


def score_candidates(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    ablation_models: dict[str, ClipBundle],
    tpgm_models: dict[str, dict[str, torch.Tensor]],
    inputs: tuple[pd.DataFrame, list[str], dict[str, list[list[int]]]],
    val_split: str,
    params: EvaluateParams,
    study: AblationParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image test outcomes of every candidate (long rows), and per candidate its selection criteria.
    ``inputs`` is (manifest, classnames, the dataset's class groups)."""
    manifest, classnames, class_groups = inputs
    model = pretrained_clip.model.eval()
    class_groups = scoring_groups(class_groups, params.class_subsets, classnames)
    test, reference_val, shift_val = candidate_images(manifest, pretrained_clip.spec, params, val_split)
    texts = energy_text_features(model, params.energy.num_texts, params.energy.length, params.energy.seed)
    zero = classifier_for(model, zeroshot_head).state_dict()
    descriptions: dict[str, dict[str, Any]] = {}
    zero_shift_val: dict[str, torch.Tensor] = {}

    def states():  # one state at a time: hundreds of WiSE states never sit in memory together
        for name, description, state in candidate_states(
            zero, ablation_models, tpgm_models, study.wise_alphas
        ):
            descriptions[name] = description
            yield name, state

    def score(name, classifier, zero_test):
        outcomes, features = classifier_outcomes(
            classifier, test, zero_test, texts, class_groups, params.batch_size, params.device
        )
        if zero_test is None:  # the zero-shot model comes first and is every later gap's reference
            zero_shift_val.update(
                unlabelled_features(classifier.visual, shift_val, params.batch_size, params.device)
            )
        criteria = selection_criteria(
            classifier,
            reference_val,
            shift_val,
            zero_shift_val,
            texts,
            class_groups.get(params.reference_domain),
            params,
        )
        return (outcomes, criteria), features

    total = 1 + len(ablation_models) * sum(a > 0 for a in study.wise_alphas) + len(tpgm_models)
    frames, rows = [], []
    bar = tqdm(total=total, desc="ablation candidates", unit="model", disable=not study.progress)
    named = classifiers(model, zeroshot_head, states())
    for name, (outcomes, criteria) in scored_in_order(named, score):
        frames += [outcome_frame(name, domain, values) for domain, values in outcomes.items()]
        rows.append({"candidate": name, **descriptions[name], **criteria})
        bar.update()
    bar.close()
    outcomes_frame = pd.concat(frames, ignore_index=True)
    outcomes_frame["candidate"] = outcomes_frame["candidate"].astype("category")
    outcomes_frame["domain"] = outcomes_frame["domain"].astype("category")
    return outcomes_frame, pd.DataFrame(rows)
