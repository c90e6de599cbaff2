"""The fine-tuning loop on Lightning Fabric: AdamW, warm-up + cosine, precision, devices, resume.

Everything a step draws (which images, how they are cropped, which random texts) is a function of
(seed, step), so a resumed run repeats the uninterrupted one, and every rank agrees on the global
batch; each rank then takes its own slice of it. Images come from ``lipsum_ft.data.images``
(decoded in memory, or streamed through DataLoader workers).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.strategies import DDPStrategy
from tqdm.auto import tqdm

from lipsum_ft.data.images import Augment, InMemoryImages, StreamedImages
from lipsum_ft.evaluation.metrics import accuracy
from lipsum_ft.io.atomic import atomic_path
from lipsum_ft.training.cluster import launched_world_size
from lipsum_ft.training.objectives import Objective
from lipsum_ft.training.schedule import adamw, decay_groups, warmup_cosine

ImageSet = InMemoryImages | StreamedImages


class NonFiniteLossError(FloatingPointError):
    """Training hit a NaN/inf loss; the message names the step and every loss term."""


@dataclass  # not frozen: Fabric's spawn launcher copies its arguments and refuses frozen dataclasses
class TrainConfig:
    steps: int
    batch_size: int  # global, over all devices
    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_fraction: float = 0.1
    grad_clip: float | None = None
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: int = 1  # per node
    num_nodes: int = 1  # > 1: started on every node by torchrun or srun (see ``fit``)
    seed: int = 0
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    eval_every: int = 50
    eval_batch_size: int = 512
    checkpoint_every: int = 0  # 0: no checkpoints
    checkpoint_path: str | None = None
    resume: bool = False
    progress: bool = True


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_step: int
    best_val_acc: float
    log: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def validation_accuracy(objective: Objective, data: ImageSet, batch_size: int) -> float:
    """Accuracy on the (un-augmented) validation images."""
    objective.eval()
    objective.prepare_for_eval()
    device = objective.classifier.head.device
    logits = [objective.classifier(batch.to(device)).float().cpu() for batch in data.eval_batches(batch_size)]
    objective.train()
    return accuracy(torch.cat(logits), data.labels)


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def train_on_rank(
    fabric: Fabric, objective: Objective, train_data: ImageSet, val_data: ImageSet, config: TrainConfig
) -> TrainResult:
    """The loop one process runs; rank 0 evaluates, logs and checkpoints. Returns the best-on-val state."""
    fabric.seed_everything(config.seed)
    module = objective
    optimizer = adamw(
        decay_groups(module, config.weight_decay), lr=config.lr, betas=config.betas, eps=config.eps
    )
    scheduler = warmup_cosine(optimizer, config.steps, int(config.warmup_fraction * config.steps))
    wrapped, optimizer = fabric.setup(module, optimizer)
    module.train()
    start, result = (
        0,
        TrainResult(best_state=_cpu_copy(module.trainable_state()), best_step=0, best_val_acc=-math.inf),
    )
    checkpoint = Path(config.checkpoint_path) if config.checkpoint_path else None
    if config.resume and checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        module.load_trainable_state(saved["trainable"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        start = saved["step"]
        result = TrainResult(saved["best_state"], saved["best_step"], saved["best_val_acc"], saved["log"])
    bar = tqdm(
        range(start, config.steps),
        desc=f"finetune {module.name}",
        unit="step",
        disable=not (config.progress and fabric.is_global_zero),
        initial=start,
        total=config.steps,
    )
    augment = Augment(config.crop_scale, config.crop_ratio, config.flip, config.seed)
    batches = train_data.train_batches(
        start, config.batch_size, augment, fabric.global_rank, fabric.world_size
    )
    for step in bar:
        started = time.perf_counter()
        images, labels = next(batches)
        images, labels = (
            images.to(fabric.device, non_blocking=True),
            labels.to(fabric.device, non_blocking=True),
        )
        loss, terms = wrapped(images, labels, step)
        if not torch.isfinite(loss):
            named = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
            raise NonFiniteLossError(
                f"non-finite loss at step {step + 1}: loss={loss.item()} ({named}); "
                f"last good checkpoint: {checkpoint}"
            )
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        if config.grad_clip:
            fabric.clip_gradients(wrapped, optimizer, max_norm=config.grad_clip)
        optimizer.step()
        scheduler.step()
        logged = {"loss": loss.detach(), **terms}
        if fabric.world_size > 1:  # log the global batch, not rank 0's share
            logged = {k: fabric.all_reduce(v, reduce_op="mean") for k, v in logged.items()}
        row = {"step": step + 1, **{k: v.item() for k, v in logged.items()}, "lr": scheduler.get_last_lr()[0]}
        row["images_per_s"] = config.batch_size / (time.perf_counter() - started)
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            row["val_acc"] = validation_accuracy(module, val_data, config.eval_batch_size)
            if row["val_acc"] > result.best_val_acc:
                result.best_val_acc, result.best_step = row["val_acc"], step + 1
                result.best_state = _cpu_copy(module.trainable_state())
        result.log.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}", img_s=f"{row['images_per_s']:.0f}")
        if checkpoint is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            if fabric.is_global_zero:
                save_checkpoint(
                    checkpoint,
                    {
                        "step": step + 1,
                        "trainable": _cpu_copy(module.trainable_state()),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": torch.get_rng_state(),
                        "best_state": result.best_state,
                        "best_step": result.best_step,
                        "best_val_acc": result.best_val_acc,
                        "log": result.log,
                    },
                )
            fabric.barrier()  # ranks wait only while rank 0 writes a checkpoint
    return result


def _train_and_save(
    fabric: Fabric, objective, train_data, val_data, config: TrainConfig, result_file: Path
) -> None:
    """Run one rank; rank 0 leaves its result in a file (a large return value would block the spawn queue)."""
    result = train_on_rank(fabric, objective, train_data, val_data, config)
    if fabric.is_global_zero:
        torch.save(result, result_file)


def fit(objective: Objective, train_data: ImageSet, val_data: ImageSet, config: TrainConfig) -> TrainResult:
    """Train in this process, on one device or as one rank of a job an external launcher started;
    or spawn ``devices`` processes on this machine and return rank 0's result.

    Under torchrun or srun (more than one process launched) every rank runs this same call: Fabric
    reads the cluster environment, checks that ``devices * num_nodes`` is the launched world size,
    and every rank returns the same (synchronised) result.
    """
    world = config.devices * config.num_nodes
    if launched_world_size() > 1:
        fabric = Fabric(
            accelerator=config.accelerator,
            devices=config.devices,
            num_nodes=config.num_nodes,
            strategy=DDPStrategy(find_unused_parameters=True),
            precision=config.precision,
        )
        fabric.launch()
        return train_on_rank(fabric, objective, train_data, val_data, config)
    if config.num_nodes > 1:
        raise RuntimeError(
            f"finetune.num_nodes={config.num_nodes} needs an external launcher to start "
            f"{world} processes (torchrun --nnodes={config.num_nodes} --nproc-per-node={config.devices}, "
            "or srun); this process was started alone"
        )
    if config.devices > 1:
        strategy = DDPStrategy(start_method="spawn", find_unused_parameters=True)
        fabric = Fabric(
            accelerator=config.accelerator,
            devices=config.devices,
            strategy=strategy,
            precision=config.precision,
        )
        with tempfile.TemporaryDirectory(prefix="lipsum-ft-ranks-") as exchange:
            result_file = Path(exchange) / "rank0.pt"
            fabric.launch(_train_and_save, objective, train_data, val_data, config, result_file)
            return torch.load(result_file, weights_only=False)
    fabric = Fabric(accelerator=config.accelerator, devices=1, precision=config.precision)
    return train_on_rank(fabric, objective, train_data, val_data, config)
