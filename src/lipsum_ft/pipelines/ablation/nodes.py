"""Nodes of the ``ablation`` pipeline: Lipsum-FT's knobs one at a time over seeds, every run times the
WiSE alpha grid scored image by image, then sensitivity, diagnostics, model choice and the front.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.text import encode_tokens
from lipsum_ft.clip.zeroshot import ClipClassifier, classifier_for
from lipsum_ft.data.images import load_split
from lipsum_ft.data.unlabelled import without_labels
from lipsum_ft.evaluation.metrics import classification_metrics, group_logits
from lipsum_ft.evaluation.outcomes import classifier_outcomes, outcome_frame
from lipsum_ft.evaluation.scoring import scoring_groups
from lipsum_ft.evaluation.selection import label_free_energy_gap, unlabelled_features
from lipsum_ft.params import AblationParams, EvaluateParams, FinetuneParams, parse
from lipsum_ft.pipelines.finetune.nodes import finetune_one, reference_data
from lipsum_ft.posthoc.wise import wise
from lipsum_ft.training.guidance import RandomTokens

log = logging.getLogger(__name__)
DEFAULT = "default"
KNOB_FIELDS = {"lambda": "coefficient", "num_texts": "num_texts", "length": "length"}


def study_settings(params: FinetuneParams, study: AblationParams) -> list[dict[str, Any]]:
    """The baselines, Lipsum-FT at params:finetune's knobs, then each other knob value, one at a time."""
    settings = [{"setting": b, "method": b, "knob": "none", "value": np.nan} for b in study.baselines]
    settings.append({"setting": DEFAULT, "method": "lipsum", "knob": "none", "value": np.nan})
    for knob, field in KNOB_FIELDS.items():
        default = getattr(params.lipsum, field)
        for value in getattr(study.knobs, field):
            if value != default:
                settings.append(
                    {"setting": f"{knob}={value:g}", "method": "lipsum", "knob": knob, "value": value}
                )
    return settings


def setting_params(params: FinetuneParams, setting: dict[str, Any], seed: int) -> FinetuneParams:
    """params:finetune at ``seed`` with the setting's knob changed; study runs keep no checkpoints."""
    update: dict[str, Any] = {"seed": seed, "checkpoint_every": 0, "resume": False}
    if setting["knob"] != "none":
        field = KNOB_FIELDS[setting["knob"]]
        value = setting["value"] if field == "coefficient" else int(setting["value"])
        update["lipsum"] = params.lipsum.model_copy(update={field: value})
    return params.model_copy(update=update)


def check_lengths(params: FinetuneParams, study: AblationParams, context_length: int) -> None:
    """Fail before any training when a text of L random tokens (plus start and end) cannot fit the
    model's context (the tiny CLIP's is 16; ViT-B/16's 77)."""
    if params.lipsum.guidance != "random_tokens":
        return  # L counts words for random_words: their token count is not known in advance
    longest = context_length - 2
    too_long = [length for length in study.knobs.length if length > longest]
    if too_long:
        raise ValueError(
            f"ablation.knobs.length {too_long}: random-token texts of L tokens take L + 2 positions, and "
            f"this model's context length is {context_length}; use L <= {longest}"
        )


def run_name(setting: str, seed: int) -> str:
    return f"{setting}/seed{seed}"


def finetune_ablation_runs(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    manifest: pd.DataFrame,
    classnames: list[str],
    finetune: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[dict[str, ClipBundle], pd.DataFrame]:
    """Every (setting, seed) on the ``finetune`` recipe; each run's best-on-val weights and step log."""
    params: FinetuneParams = parse("finetune", finetune)
    study: AblationParams = parse("ablation", ablation)
    spec = pretrained_clip.spec
    check_lengths(params, study, spec.context_length)
    train_data, val_data = reference_data(
        manifest, params, spec.image_size, spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    )
    runs = [(setting, seed) for seed in study.seeds for setting in study_settings(params, study)]
    models, logs = {}, []
    for setting, seed in tqdm(runs, desc="ablation runs", unit="run", disable=not study.progress):
        name = run_name(setting["setting"], seed)
        bundle, frame = finetune_one(
            setting["method"],
            setting_params(params, setting, seed),
            pretrained_clip,
            zeroshot_head,
            classnames,
            train_data,
            val_data,
        )
        bundle.spec.extra["ablation"] = {**setting, "seed": seed}
        models[name] = bundle
        logs.append(frame.assign(run=name, setting=setting["setting"]))
        log.info("ablation: %s done (%d of %d runs)", name, len(models), len(runs))
    return models, pd.concat(logs, ignore_index=True)


def _candidate_states(
    zero: dict[str, torch.Tensor],
    ablation_models: dict[str, ClipBundle],
    tpgm_models: dict[str, dict[str, torch.Tensor]],
    alphas: list[float],
):
    """(name, description, classifier state) of zero-shot, every run x alpha > 0, and the chain's TPGM."""
    yield "zeroshot", {"source": "zeroshot", "setting": "zeroshot", "method": "zeroshot", "alpha": 0.0}, zero
    for run, bundle in ablation_models.items():
        tuned = classifier_for(bundle.model, bundle.head).state_dict()
        about = bundle.spec.extra["ablation"]
        for alpha in sorted(a for a in alphas if a > 0):
            described = {"source": "study", "run": run, **about, "alpha": alpha}
            yield f"{run}@{alpha:.2f}", described, wise(zero, tuned, alpha)
    for variant, state in tpgm_models.items():
        method = variant.removeprefix("tpgm-")
        described = {"source": "chain", "setting": variant, "method": method, "alpha": np.nan}
        yield f"chain/{variant}", described, state


def score_ablation_candidates(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    ablation_models: dict[str, ClipBundle],
    tpgm_models: dict[str, dict[str, torch.Tensor]],
    manifest: pd.DataFrame,
    classnames: list[str],
    class_groups: dict[str, list[list[int]]],
    val_split: str,
    evaluate: dict[str, Any],
    ablation: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image test outcomes of every candidate, and per candidate the selection criteria:
    reference val accuracy and NLL, and the energy gap on the shift domains' val images without labels.
    ``val_split`` is params:finetune's: the split that chose each run's best step chooses among them too.
    """
    params: EvaluateParams = parse("evaluate", evaluate)
    study: AblationParams = parse("ablation", ablation)
    spec, model = pretrained_clip.spec, pretrained_clip.model.eval()
    class_groups = scoring_groups(class_groups, params.class_subsets, classnames)

    def images(split: str) -> dict[str, Any]:
        mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
        loader = params.loader
        return load_split(manifest, split, spec.image_size, mean, std, loader.mode, loader.settings(), False)

    test, val = images(params.split), images(val_split)
    reference_val = {params.reference_domain: val.pop(params.reference_domain)}
    shift_val = without_labels(val)  # from here on the shift domains' val labels are gone
    with torch.no_grad():
        tokens = RandomTokens(params.energy.num_texts, params.energy.length, params.energy.seed).tokens(0)
        texts = F.normalize(encode_tokens(model, tokens), dim=-1)

    template: ClipClassifier = classifier_for(copy.deepcopy(model), zeroshot_head)
    zero = classifier_for(model, zeroshot_head).state_dict()
    zero_test = zero_val = None
    frames, rows = [], []
    total = 1 + len(ablation_models) * sum(a > 0 for a in study.wise_alphas) + len(tpgm_models)
    states = _candidate_states(zero, ablation_models, tpgm_models, study.wise_alphas)
    for name, described, state in tqdm(
        states, total=total, desc="ablation candidates", unit="model", disable=not study.progress
    ):
        template.load_state_dict(state)
        outcomes, features = classifier_outcomes(
            template, test, zero_test, texts, class_groups, params.batch_size, params.device
        )
        if zero_test is None:  # the zero-shot model comes first and is every later gap's reference
            zero_test = features
            zero_val = unlabelled_features(template.visual, shift_val, params.batch_size, params.device)
        frames += [outcome_frame(name, domain, values) for domain, values in outcomes.items()]
        ref_images = reference_val[params.reference_domain]
        with torch.inference_mode():
            template.to(params.device)
            logits = torch.cat(
                [
                    template(b.to(params.device)).float().cpu()
                    for b in ref_images.eval_batches(params.batch_size)
                ]
            )
            gap = label_free_energy_gap(
                template.visual, shift_val, zero_val, texts, params.batch_size, params.device
            )
            template.cpu()
        labels = ref_images.labels
        if params.reference_domain in class_groups:
            logits, labels = group_logits(logits, labels, class_groups[params.reference_domain])
        reference = classification_metrics(logits, labels, params.ece_bins)
        rows.append(
            {
                "candidate": name,
                **described,
                "ref_val_acc": reference["acc"],
                "ref_val_nll": reference["nll"],
                "shift_val_energy_gap": gap,
            }
        )
    outcomes_frame = pd.concat(frames, ignore_index=True)
    outcomes_frame["candidate"] = outcomes_frame["candidate"].astype("category")
    outcomes_frame["domain"] = outcomes_frame["domain"].astype("category")
    candidates = pd.DataFrame(rows)
    log.info(
        "ablation: scored %d candidates on %d test images", len(candidates), len(outcomes_frame) // len(rows)
    )
    return outcomes_frame, candidates
