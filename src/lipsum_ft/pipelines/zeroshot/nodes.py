"""Nodes of the ``zeroshot`` pipeline."""

from __future__ import annotations

import logging
from typing import Any

import open_clip
import pandas as pd
import torch

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.inference import inference_on
from lipsum_ft.clip.prompts import resolve_templates
from lipsum_ft.clip.zeroshot import ClipClassifier, build_zeroshot_weights
from lipsum_ft.data.images import load_split_for
from lipsum_ft.evaluation.reporting import domain_table
from lipsum_ft.evaluation.scoring import evaluate_domains
from lipsum_ft.params.shared import parse
from lipsum_ft.params.zeroshot import ZeroshotParams

log = logging.getLogger(__name__)


def build_zeroshot_head(
    pretrained_clip: ClipBundle, classnames: list[str], zeroshot: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """W (embed_dim x K) from class names x templates, and the model's logit scale kept apart.

    The text tower runs on ``zeroshot.device``: DomainNet's 345 classes x 80 templates of 77 tokens
    through ViT-B/16's text tower are about 1.6 x 10^14 FLOPs, minutes on a CPU.
    """
    params = parse(ZeroshotParams, zeroshot)
    model = pretrained_clip.model
    tokenizer = open_clip.get_tokenizer(
        pretrained_clip.spec.name, context_length=pretrained_clip.spec.context_length
    )
    with inference_on(model, params.device):
        weight = build_zeroshot_weights(model, tokenizer, classnames, resolve_templates(params.templates))
    return {"weight": weight.cpu(), "logit_scale": model.logit_scale.detach().exp().reshape(())}


def evaluate_zeroshot(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    manifest: pd.DataFrame,
    class_groups: dict[str, list[list[int]]],
    zeroshot: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """Accuracy, NLL and ECE of the zero-shot classifier on every domain of the evaluation split."""
    params = parse(ZeroshotParams, zeroshot)
    spec = pretrained_clip.spec
    classifier = ClipClassifier(
        pretrained_clip.model.visual, zeroshot_head["weight"], float(zeroshot_head["logit_scale"])
    )
    data = load_split_for(manifest, params.split, spec, params.loader, params.progress)
    results = evaluate_domains(
        classifier, data, params.batch_size, params.ece_bins, params.progress, params.device, class_groups
    )
    table = domain_table(
        f"Zero-shot ({spec.name}, split {params.split}, "
        f"logit scale {float(zeroshot_head['logit_scale']):.1f})",
        results,
    )
    mean_acc = sum(m["acc"] for m in results.values()) / len(results)
    log.info(
        "zero-shot mean accuracy over %d domains: %.1f%% (table: data/08_reporting/zeroshot_table.md)",
        len(results),
        100 * mean_acc,
    )
    return {
        "split": params.split,
        "logit_scale": float(zeroshot_head["logit_scale"]),
        "domains": results,
    }, table
