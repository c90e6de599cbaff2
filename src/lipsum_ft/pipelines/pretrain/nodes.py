"""Nodes of the ``pretrain`` pipeline."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import open_clip
import pandas as pd
import torch

from lipsum_ft.clip.backbone import ClipBundle, load_open_clip, new_model
from lipsum_ft.data.images import decode_images
from lipsum_ft.params.pretrain import PretrainParams
from lipsum_ft.params.shared import config_from, parse
from lipsum_ft.training.live import LiveSettings
from lipsum_ft.training.pretraining import (
    PretrainConfig,
    caption_bank,
    pretrain_clip,
    pretraining_selection,
)

log = logging.getLogger(__name__)


def pretrain_model(
    manifest: pd.DataFrame, classnames: list[str], pretrain: dict[str, Any]
) -> tuple[ClipBundle, pd.DataFrame]:
    """The zero-shot model: open_clip weights as they are,
    or a tiny CLIP trained on the ``pretrain`` split.
    """
    params = parse(PretrainParams, pretrain)
    if params.source == "open_clip":
        model, spec = load_open_clip(params.model, params.pretrained)
        return ClipBundle(model=model.eval(), spec=spec), pd.DataFrame(
            columns=["step", "loss", "lr", "logit_scale", "images_per_s"]
        )
    started = time.perf_counter()
    model, spec = new_model(params.model, params.seed)
    rows, captions, domains = _pretraining_rows(manifest, len(classnames), params)
    images = decode_images(
        rows["path"].tolist(),
        spec.image_size,
        progress=params.progress,
        desc="decode pretrain",
        sources=rows["source"].tolist() if "source" in rows.columns else None,
    )
    tokens, index = caption_bank(
        open_clip.get_tokenizer(params.model),
        domains,
        classnames,
        params.captions.templates,
        params.captions.domain_words,
        params.captions.class_aliases,
    )
    history = pretrain_clip(
        model,
        images,
        torch.tensor(captions),  # the class each caption names: the only label pretraining sees
        torch.tensor([domains.index(d) for d in rows["domain"]]),
        tokens,
        index,
        spec.preprocess_cfg["mean"],
        spec.preprocess_cfg["std"],
        config_from(
            PretrainConfig, params, live=LiveSettings(params.dvclive_dir) if params.dvclive_dir else None
        ),
        progress=params.progress,
    )
    seconds = time.perf_counter() - started
    spec.extra.update(
        pretrain_seconds=round(seconds, 1),
        pretrain_steps=params.steps,
        seed=params.seed,
        logit_scale=history[-1]["logit_scale"],
    )
    log.info(
        "pretrained %s for %d steps in %.0f s; logit scale %.1f",
        params.model,
        params.steps,
        seconds,
        history[-1]["logit_scale"],
    )
    return ClipBundle(model=model, spec=spec), pd.DataFrame(history)


def _pretraining_rows(
    manifest: pd.DataFrame, num_classes: int, params: PretrainParams
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The ``pretrain`` split's rows that pretraining sees (``pretrain.domain_shares``), the class each
    one's caption names (``pretrain.caption_noise``), and every domain of the split (the caption bank's
    rows, so a domain's index does not depend on its share)."""
    rows = manifest[manifest["split"] == "pretrain"]
    if rows.empty:
        raise ValueError(
            "the manifest has no 'pretrain' split: pretrain.source 'embedded' needs one (data.layout.splits)"
        )
    domains = sorted(rows["domain"].unique())
    keep, captions = pretraining_selection(
        rows["label"].to_numpy(),
        rows["domain"].tolist(),
        num_classes,
        params.caption_noise,
        params.domain_shares,
        params.seed,
    )
    if params.caption_noise or params.domain_shares:
        wrong = float((captions != rows["label"].to_numpy()[keep]).mean())
        log.info(
            "pretraining on %d of %d images; %.1f%% of their captions name another class",
            int(keep.sum()),
            len(rows),
            100 * wrong,
        )
    return rows[keep], captions, domains
