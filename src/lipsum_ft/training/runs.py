"""Running fine-tunes: the reference domain's images, one run from the zero-shot model to its
best-on-val weights, and a grid of runs (the ``finetune`` pipeline's methods, the studies' arms and
settings over seeds), all through the same code.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from lipsum_ft.clip.backbone import ClipBundle, ModelSpec
from lipsum_ft.data.images import ImageSet, InMemoryImages, load_split_for
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import config_from
from lipsum_ft.training.cluster import launched_rank
from lipsum_ft.training.finetuning import make_objective
from lipsum_ft.training.live import LiveSettings
from lipsum_ft.training.loop import TrainConfig, fit, replay_curves, run_identity
from lipsum_ft.training.objectives import Objective, ObjectiveContext
from lipsum_ft.training.preemption import Preempted
from lipsum_ft.training.run_records import RunRecord, RunRecords

log = logging.getLogger(__name__)


def reference_data(
    manifest: pd.DataFrame, params: FinetuneParams, spec: ModelSpec
) -> tuple[ImageSet, ImageSet]:
    """Train and validation images of the reference domain, at the model's input size and
    normalisation (test is never touched here)."""
    if params.reference_domain not in set(manifest["domain"]):
        raise ValueError(
            f"finetune.reference_domain {params.reference_domain!r} is not in the manifest; "
            f"domains: {sorted(manifest['domain'].unique())}"
        )
    domain = params.reference_domain
    train, val = (
        load_split_for(manifest, split, spec, params.loader, params.progress, [domain])[domain]
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


def train_config(
    params: FinetuneParams,
    method: str,
    identity: dict[str, Any] | None = None,
    live: LiveSettings | None = None,
) -> TrainConfig:
    """The loop's settings for ``method``: the recipe and augmentation as configured,
    its own lr and checkpoint file, the identity a checkpoint is checked against, and where its
    live curves go.
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
        live=live,
    )


def run_objective(
    method: str,
    params: FinetuneParams,
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    classnames: list[str],
) -> Objective:
    """The objective a run of ``method`` trains: its own settings (``finetune.<method>``) around the
    zero-shot model, for this run's steps and seed (benchmarks build theirs here too)."""
    spec = pretrained_clip.spec
    context = ObjectiveContext(
        clip=pretrained_clip.model,
        head=zeroshot_head["weight"],
        logit_scale=float(zeroshot_head["logit_scale"]),
        model_name=spec.name,
        context_length=spec.context_length,
        classnames=classnames,
        steps=params.steps,
        seed=params.seed,
    )
    return make_objective(method, params.settings_for(method), context)


def finetune_one(
    method: str,
    params: FinetuneParams,
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    classnames: list[str],
    train_data: ImageSet,
    val_data: ImageSet,
    live: LiveSettings | None = None,
    record: RunRecord | None = None,
) -> tuple[ClipBundle, pd.DataFrame]:
    """One method fine-tuned from the zero-shot model: its best-on-val weights and its per-step log
    (also streamed to ``live``, when given). With ``record``, a finished run of these very settings is
    restored from it instead of trained, and a run trained here is recorded."""
    started = time.perf_counter()
    spec = pretrained_clip.spec
    scale = float(zeroshot_head["logit_scale"])
    objective = run_objective(method, params, pretrained_clip, zeroshot_head, classnames)
    identity = training_identity(params, method, zeroshot_head, train_data, val_data)
    config = train_config(params, method, identity, live)
    restored = record.load(run_identity(config)) if record is not None else None
    if restored is None:
        result = fit(objective, train_data, val_data, config)
        seconds = round(time.perf_counter() - started, 1)
        if record is not None:
            record.save(run_identity(config), result, seconds)
    else:
        result, seconds = restored
        replay_curves(config, result, launched_rank() == 0)
        log.warning("%s: restored its finished run from %s", method, record.path)
    objective.cpu()  # fit moved it to the device in place: what leaves this node lives on the host
    objective.load_trainable_state(result.best_state)
    model, head = objective.export()
    info = {
        "method": method,
        "seed": params.seed,
        "best_step": result.best_step,
        "best_val_acc": result.best_val_acc,
        "reference_domain": params.reference_domain,
        "seconds": seconds,
        "peak_memory_gib": result.peak_memory_gib,  # None off GPU
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
        "%s: best val acc %.3f at step %d (%.0f s of training)",
        method,
        result.best_val_acc,
        result.best_step,
        info["seconds"],
    )
    bundle = ClipBundle(model=model, spec=spec_out, head={"weight": head, "logit_scale": torch.tensor(scale)})
    return bundle, pd.DataFrame(result.log).assign(method=method, seed=params.seed)


@dataclass(frozen=True)
class Run:
    """One fine-tune of a grid: its name, method and recipe; ``labels`` become columns of its log rows,
    ``extra`` is kept in the model's spec under ``extra_key``; ``series`` names its live curves
    (default: the name, ``/`` read as ``-``: study runs are ``<arm>/seed<k>``)."""

    name: str
    method: str
    params: FinetuneParams
    labels: Mapping[str, Any] = field(default_factory=dict)
    extra_key: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    series: str = ""

    @property
    def series_name(self) -> str:
        return self.series or self.name.replace("/", "-")


def study_params(params: FinetuneParams, seed: int, **update: Any) -> FinetuneParams:
    """params:finetune at ``seed`` (and ``update``) for a study run: study runs keep no checkpoints,
    so they never overwrite (or resume from) the ``finetune`` pipeline's."""
    return params.model_copy(update={"seed": seed, "checkpoint_every": 0, "resume": False, **update})


def run_grid(
    runs: Sequence[Run],
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    classnames: list[str],
    data: tuple[ImageSet, ImageSet],
    progress: bool,
    desc: str,
    live_dir: str | None = None,
    resume_dir: str | None = None,
) -> tuple[dict[str, ClipBundle], pd.DataFrame]:
    """Every run fine-tuned from the zero-shot model on the same (train, val) data: each run's
    best-on-val model by name, and all step logs in one frame. With ``live_dir``, each run streams
    its curves into that DVCLive folder (cleared by the first run, so it holds this grid's runs).
    With ``resume_dir``, each finished run is recorded there (``run_records``): the grid started again
    after an interruption trains only the runs it had not finished. The records outlive the grid: the
    caller clears them (``RunRecords.clear``) once what it made of the runs is saved, so that a stop
    while it scores them costs no training either."""
    train_data, val_data = data
    records = RunRecords(Path(resume_dir)) if resume_dir else None
    models, logs = {}, []
    for index, run in enumerate(tqdm(runs, desc=desc, unit="run", disable=not progress or len(runs) < 2)):
        live = LiveSettings(live_dir, run.series_name, fresh=index == 0) if live_dir else None
        record = records.slot(run.series_name) if records else None
        try:
            bundle, frame = finetune_one(
                run.method,
                run.params,
                pretrained_clip,
                zeroshot_head,
                classnames,
                train_data,
                val_data,
                live,
                record,
            )
        except Preempted:
            if records:
                log.warning(
                    "%s: preempted during %s; %d of %d runs finished and kept in %s: run the same command "
                    "again to train the other %d",
                    desc, run.name, len(models), len(runs), records.folder, len(runs) - len(models),
                )  # fmt: skip
            raise
        if run.extra_key is not None:
            bundle.spec.extra[run.extra_key] = dict(run.extra)
        models[run.name] = bundle
        logs.append(frame.assign(**run.labels))
        log.info("%s: %s done (%d of %d runs)", desc, run.name, len(models), len(runs))
    return models, pd.concat(logs, ignore_index=True)
