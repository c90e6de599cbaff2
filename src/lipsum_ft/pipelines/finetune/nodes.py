"""Nodes of the ``finetune`` pipeline."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.prompts import resolve_templates
from lipsum_ft.data.images import InMemoryImages, load_split
from lipsum_ft.params import FinetuneParams, config_from, parse
from lipsum_ft.training.finetuning import make_objective
from lipsum_ft.training.guidance import Guidance, build_guidance
from lipsum_ft.training.loop import ImageSet, TrainConfig, fit

log = logging.getLogger(__name__)


def reference_data(
    manifest: pd.DataFrame, params: FinetuneParams, size: int, mean, std
) -> tuple[ImageSet, ImageSet]:
    """Train and validation images of the reference domain (test is never touched here)."""
    if params.reference_domain not in set(manifest["domain"]):
        raise ValueError(
            f"finetune.reference_domain {params.reference_domain!r} is not in the manifest; "
            f"domains: {sorted(manifest['domain'].unique())}"
        )
    train, val = (
        load_split(
            manifest,
            split,
            size,
            mean,
            std,
            params.loader.mode,
            params.loader.settings(),
            params.progress,
            [params.reference_domain],
        )[params.reference_domain]
        for split in (params.train_split, params.val_split)
    )
    return train, val


def data_digest(data: ImageSet) -> str:
    """A hash of what a run trains/selects on: labels plus decoded pixels (memory) or file paths (stream)."""
    digest = hashlib.sha256(data.labels.numpy().tobytes())
    if isinstance(data, InMemoryImages):
        digest.update(data.images.contiguous().numpy().tobytes())
    else:
        digest.update("\n".join(data.paths).encode("utf-8"))
    return digest.hexdigest()[:16]


def training_identity(
    params: FinetuneParams,
    method: str,
    zeroshot_head: dict[str, torch.Tensor],
    train_data: ImageSet,
    val_data: ImageSet,
) -> dict[str, Any]:
    """What, beyond the loop's own recipe, makes two runs the same run: the method and its settings,
    the data and the zero-shot model it starts from. A checkpoint is resumed only under equal values.
    """
    own = params.model_dump(by_alias=True).get(method, {})  # e.g. finetune.lipsum for lipsum
    return {
        "method": method,
        "method_settings": own if method != "lpft" else {**own, "steps": params.steps},
        "data": {
            "reference_domain": params.reference_domain,
            "train_split": params.train_split,
            "val_split": params.val_split,
            "train_digest": data_digest(train_data),
            "val_digest": data_digest(val_data),
        },
        "zeroshot_head_digest": hashlib.sha256(
            zeroshot_head["weight"].detach().float().contiguous().numpy().tobytes()
        ).hexdigest()[:16],
    }


def train_config(params: FinetuneParams, method: str, identity: dict[str, Any] | None = None) -> TrainConfig:
    """The loop's settings for ``method``: the recipe and augmentation as configured,
    its own lr and checkpoint file, and the identity a checkpoint is checked against.
    """
    checkpoint = (
        str(Path(params.checkpoint_dir) / f"{method}-seed{params.seed}.pt")
        if params.checkpoint_every
        else None
    )
    return config_from(
        TrainConfig,
        params,
        params.augment,
        lr=params.lr_for(method),
        checkpoint_path=checkpoint,
        identity=identity or {"method": method},
    )


def lipsum_guidance(params: FinetuneParams) -> Guidance:
    """The text guidance ``finetune.lipsum`` describes, seeded by the run's seed."""
    p = params.lipsum
    return build_guidance(
        p.guidance,
        num_texts=p.num_texts,
        length=p.length,
        seed=params.seed,
        templates=resolve_templates(p.templates) if p.templates else (),
        slot_words=p.slot_words,
        pool_size=p.pool_size,
        pool_source=p.pool_source,
    )


def finetune_one(
    method: str,
    params: FinetuneParams,
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    classnames: list[str],
    train_data: ImageSet,
    val_data: ImageSet,
) -> tuple[ClipBundle, pd.DataFrame]:
    """One method fine-tuned from the zero-shot model: its best-on-val weights and its per-step log."""
    started = time.perf_counter()
    spec = pretrained_clip.spec
    scale = float(zeroshot_head["logit_scale"])
    objective = make_objective(
        method,
        pretrained_clip.model,
        zeroshot_head["weight"],
        scale,
        model_name=spec.name,
        context_length=spec.context_length,
        classnames=classnames,
        coefficients={
            "l2sp": params.l2sp.coefficient,
            "kd": params.kd.coefficient,
            "carft": params.carft.coefficient,
            "lipsum": params.lipsum.coefficient,
        },
        guidance=lipsum_guidance(params) if method == "lipsum" else None,
        carft_templates=resolve_templates(params.carft.templates),
        flyp_templates=resolve_templates(params.flyp.templates),
        lp_steps=int(params.lpft.lp_fraction * params.steps),
        seed=params.seed,
    )
    identity = training_identity(params, method, zeroshot_head, train_data, val_data)
    result = fit(objective, train_data, val_data, train_config(params, method, identity))
    objective.load_trainable_state(result.best_state)
    model, head = objective.export()
    info = {
        "method": method,
        "seed": params.seed,
        "best_step": result.best_step,
        "best_val_acc": result.best_val_acc,
        "reference_domain": params.reference_domain,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if method == "lipsum":
        info["guidance"] = params.lipsum.guidance
    spec_out = type(spec)(
        model_cfg=spec.model_cfg,
        preprocess_cfg=spec.preprocess_cfg,
        name=spec.name,
        pretrained=spec.pretrained,
        extra={**spec.extra, "finetune": info},
    )
    log.info(
        "%s: best val acc %.3f at step %d (%.0f s)",
        method,
        result.best_val_acc,
        result.best_step,
        info["seconds"],
    )
    bundle = ClipBundle(model=model, spec=spec_out, head={"weight": head, "logit_scale": torch.tensor(scale)})
    return bundle, pd.DataFrame(result.log).assign(method=method, seed=params.seed)


def finetune_models(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    manifest: pd.DataFrame,
    classnames: list[str],
    finetune: dict[str, Any],
) -> tuple[dict[str, ClipBundle], pd.DataFrame]:
    """Fine-tune each selected method from the zero-shot model; keep each run's best-on-val weights."""
    params: FinetuneParams = parse("finetune", finetune)
    spec = pretrained_clip.spec
    train_data, val_data = reference_data(
        manifest, params, spec.image_size, spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    )
    runs = {
        method: finetune_one(method, params, pretrained_clip, zeroshot_head, classnames, train_data, val_data)
        for method in params.selected_methods
    }
    return {method: bundle for method, (bundle, _) in runs.items()}, pd.concat(
        [frame for _, frame in runs.values()], ignore_index=True
    )
