"""The fine-tuning loop on Lightning Fabric: AdamW, warm-up + cosine, precision, devices, resume.

Everything a step draws (which images, how they are cropped, which random texts) is a function of
(seed, step), so a resumed run repeats the uninterrupted one, and every rank agrees on the global
batch; each rank then takes its own slice of it. Images come from ``lipsum_ft.data.images``
(decoded in memory, or streamed through DataLoader workers).

Faults: a resume goes through ``checkpoint.resume_checkpoint`` (the last good of the two kept
checkpoints, never a bad one); with several ranks, a collective that fails or outlasts
``process_group_timeout_s`` (a rank died or hangs) stops this rank with ``RankLostError`` naming it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.strategies import DDPStrategy
from tqdm.auto import tqdm

from lipsum_ft.data.images import Augment, ImageSet
from lipsum_ft.evaluation.metrics import accuracy
from lipsum_ft.training.checkpoint import previous_path, resume_checkpoint, save_checkpoint
from lipsum_ft.training.cluster import launched_world_size
from lipsum_ft.training.elastic import ElasticDDPStrategy
from lipsum_ft.training.live import LiveSettings, NoCurves, curves_for
from lipsum_ft.training.objectives import Objective
from lipsum_ft.training.preemption import (
    Preempted,
    PreemptionFlag,
    StopVote,
    preemption_signals,
    resume_advice,
    spawned_ranks,
    stop_vote,
)
from lipsum_ft.training.schedule import adamw, decay_groups, warmup_cosine

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """Training hit a NaN/inf loss; the message names the step and every loss term."""


class RankLostError(RuntimeError):
    """A collective with the other ranks failed or timed out; the message names this rank and step."""


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
    log_every: int = 10  # loss and terms are read from the device every K steps (one host sync)
    eval_batch_size: int = 512
    checkpoint_every: int = 0  # 0: no checkpoints
    checkpoint_path: str | None = None
    # True: a checkpoint must exist; "auto": resume when one exists; False: start afresh
    resume: bool | str = False
    progress: bool = True
    # how long a collective (all-reduce, barrier) waits for the other ranks before this rank gives up
    process_group_timeout_s: float = 1800.0
    live: LiveSettings | None = None  # DVCLive curves (global rank 0); None: none
    compile: bool = False  # torch.compile the image towers (``Objective.compile_towers``)
    identity: dict[str, Any] = field(default_factory=dict)  # settings beyond this config that shape the run


# What ``run_identity`` leaves out: how and where the run executes, not what it computes.
NOT_IDENTITY = frozenset(
    {
        "accelerator",
        "devices",
        "eval_batch_size",
        "checkpoint_every",
        "checkpoint_path",
        "resume",
        "progress",
        "process_group_timeout_s",
        "live",
        "compile",  # the same computation, run by other kernels
    }
)


def run_identity(config: TrainConfig) -> dict[str, Any]:
    """Every setting that shapes the trained weights: this config's (less NOT_IDENTITY), ``identity``."""
    own = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in NOT_IDENTITY and f.name != "identity"
    }
    return {"train": own, **config.identity}


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_step: int
    best_val_acc: float
    log: list[dict[str, float]] = field(default_factory=list)
    # the allocator's peak on this rank's GPU over the run (steps, validation, saves); None off GPU
    peak_memory_gib: float | None = None


def curve_summary(result: TrainResult) -> dict[str, float]:
    """What a run's live curves close with: its best step, that step's validation accuracy, its last loss."""
    return {
        "best_step": result.best_step,
        "best_val_acc": result.best_val_acc,
        "loss": result.log[-1]["loss"],
    }


def replay_curves(config: TrainConfig, result: TrainResult, rank_zero: bool) -> None:
    """Stream a run that did not train here (a study's finished run, restored) as ``fit`` streams one:
    its log rows, then its summary."""
    curves = curves_for(config.live, config.log_every, config.steps, rank_zero)
    curves.add(result.log)
    curves.finish(curve_summary(result))


@torch.no_grad()
def validation_accuracy(objective: Objective, data: ImageSet, batch_size: int) -> float:
    """Accuracy on the (un-augmented) validation images."""
    objective.eval()
    objective.prepare_for_eval()
    device = objective.classifier.head.device
    batches = data.eval_batches(batch_size, device)
    logits = torch.cat([objective.classifier(batch).float() for batch in batches])
    objective.train()
    return accuracy(logits.cpu(), data.labels.cpu())  # labels may live on the device


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy, so later steps (or a device) cannot change a kept state."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _checkpoint_payload(step: int, module, optimizer, scheduler, result: TrainResult) -> dict[str, Any]:
    """Everything a resume needs to repeat the uninterrupted run: weights, optimizer, schedule, RNG, log."""
    return {
        "step": step,
        "trainable": _cpu_copy(module.trainable_state()),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "best_state": result.best_state,
        "best_step": result.best_step,
        "best_val_acc": result.best_val_acc,
        "log": result.log,
    }


@dataclass
class PendingRow:
    """One step's log row while its values still live on the device (read at the next flush)."""

    step: int
    values: dict[str, torch.Tensor]  # loss and terms, detached
    lr: float


def flush_rows(
    fabric: Fabric, pending: list[PendingRow], last_good: str, block_started: float, batch_size: int
) -> list[dict[str, float]]:
    """The log rows of ``pending`` read in one device-to-host copy (one all-reduce over ranks).

    ``images_per_s`` of each row is the block's: its steps' wall time up to this read, which waits
    for the device (per-step timers without a sync would time only the queueing of work).

    Raises ``NonFiniteLossError`` naming the first step whose (global) loss is NaN/inf and every
    term of that step; it runs before any checkpoint or validation of the block, so the last
    checkpoint on disk predates the bad step.
    """
    flat = torch.stack([v.float() for row in pending for v in row.values.values()])
    if fabric.world_size > 1:  # log the global batch, not rank 0's share
        flat = fabric.all_reduce(flat, reduce_op="mean")
    numbers, rows, position = flat.tolist(), [], 0
    images_per_s = batch_size * len(pending) / (time.perf_counter() - block_started)
    for row in pending:
        values = dict(zip(row.values, numbers[position : position + len(row.values)], strict=True))
        position += len(row.values)
        if not math.isfinite(values["loss"]):
            named = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if k != "loss")
            raise NonFiniteLossError(
                f"non-finite loss at step {row.step}: loss={values['loss']} ({named}); {last_good}"
            )
        rows.append({"step": row.step, **values, "lr": row.lr, "images_per_s": images_per_s})
    return rows


def train_on_rank(
    fabric: Fabric, objective: Objective, train_data: ImageSet, val_data: ImageSet, config: TrainConfig
) -> TrainResult:
    """The loop one process runs; rank 0 evaluates, logs and checkpoints. Returns the best-on-val state.

    On SIGTERM/SIGUSR1 it finishes the current step, writes the checkpoint and raises ``Preempted``.
    With several ranks, a collective that fails or times out raises ``RankLostError``.
    """
    with preemption_signals() as preemption, stop_vote(_timeout(config)) as vote:
        trainer = _RankTrainer(fabric, config, preemption, vote)
        try:
            return trainer.fit(objective, train_data, val_data)
        except RuntimeError as error:
            if fabric.world_size > 1 and lost_contact(error):
                raise RankLostError(trainer.lost_contact_message(error)) from error
            raise


# What gloo and NCCL say when a peer died (its socket closed) or a collective outlasted the timeout.
_LOST_CONTACT = (
    "Connection closed by peer",
    "Connection reset by peer",
    "Broken pipe",
    "Timed out waiting",
    "Socket Timeout",
    "Watchdog caught collective operation timeout",
    "NCCL communicator was aborted",
)


def lost_contact(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because another rank died or stopped answering."""
    return isinstance(error, torch.distributed.DistError) or any(text in str(error) for text in _LOST_CONTACT)


class _RankTrainer:
    """One rank's run, in the shape of Lightning Fabric's example trainer (``fit``, ``train_loop``,
    ``training_step``, ``validate``, ``save``/``load``).

    Steps leave their loss and terms on the device (``PendingRow``); a block ends at a log, eval or
    checkpoint step or on preemption, and its ``flush`` is the block's one read of the losses (with
    several ranks, ``StopVote`` also all-reduces the preemption flag every step, on the host).
    """

    def __init__(self, fabric: Fabric, config: TrainConfig, preemption: PreemptionFlag, vote: StopVote):
        """Hold what every phase reads; the model, optimizer and result come in ``setup``/``load``."""
        self.fabric, self.config, self.preemption, self.vote = fabric, config, preemption, vote
        self.checkpoint = Path(config.checkpoint_path) if config.checkpoint_path else None
        self.identity = run_identity(config)
        self.last_good: tuple[Path, int] | None = None  # a checkpoint of this very run, known finite
        self.at_step = 0  # the step in flight (what a lost rank's error names)
        self.pending: list[PendingRow] = []
        self.block_started = 0.0
        self.curves = NoCurves()

    def fit(self, objective: Objective, train_data: ImageSet, val_data: ImageSet) -> TrainResult:
        """Set up, resume where asked, and train to ``config.steps``; returns the best-on-val state.

        The live curves open once the checkpoint is read (a resumed run first replays the rows it
        restored) and close with the best step and its validation accuracy.
        """
        config = self.config
        on_gpu = self.fabric.device.type == "cuda"
        self.setup(objective)
        if on_gpu:  # after the setup's move: before CUDA's first use the reset fails ("did you call init?")
            torch.cuda.reset_peak_memory_stats(self.fabric.device)
        start = self.load()
        self.curves = curves_for(config.live, config.log_every, config.steps, self.fabric.is_global_zero)
        self.curves.add(self.result.log)
        self.train_loop(train_data, val_data, start)
        self.curves.finish(curve_summary(self.result))
        if on_gpu:
            self.result.peak_memory_gib = torch.cuda.max_memory_allocated(self.fabric.device) / 2**30
        return self.result

    def setup(self, objective: Objective) -> None:
        """Seed, compile the towers when asked (here, on the rank: a compiled module does not cross a
        spawn), build AdamW and its warm-up + cosine schedule, and hand model and optimizer to Fabric."""
        config = self.config
        self.fabric.seed_everything(config.seed)
        if config.compile:
            objective.compile_towers()
        self.module = objective
        optimizer = adamw(
            decay_groups(objective, config.weight_decay), lr=config.lr, betas=config.betas, eps=config.eps
        )
        self.scheduler = warmup_cosine(optimizer, config.steps, int(config.warmup_fraction * config.steps))
        self.wrapped, self.optimizer = self.fabric.setup(objective, optimizer)
        objective.train()
        best = _cpu_copy(objective.trainable_state())
        self.result = TrainResult(best_state=best, best_step=0, best_val_acc=-math.inf)

    def load(self) -> int:
        """Restore the last good checkpoint when resuming (``resume_checkpoint``: the previous one when
        the last is bad; an error, never a fresh start, when files exist but none is good; a missing
        one refused under resume=True); the first step.
        """
        checkpoint, resume = self.checkpoint, self.config.resume
        found = resume_checkpoint(checkpoint, self.identity) if resume and checkpoint is not None else None
        if resume is True and found is None:
            raise FileNotFoundError(
                f"finetune.resume is true but there is no checkpoint {checkpoint} (nor "
                f"{previous_path(checkpoint) if checkpoint else None}) to resume from "
                "(resume: auto starts afresh when there is none)"
            )
        if found is None:
            return 0
        saved, used = found
        # a warning, so that Kedro's console (warnings and up from the library) shows what was resumed
        log.warning(
            "resuming %s from %s at step %d of %d", self.module.name, used, saved["step"], self.config.steps
        )
        self.last_good = (used, saved["step"])
        self.module.load_trainable_state(saved["trainable"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        self.result = TrainResult(
            saved["best_state"], saved["best_step"], saved["best_val_acc"], saved["log"]
        )
        return saved["step"]

    def train_loop(self, train_data: ImageSet, val_data: ImageSet, start: int) -> None:
        """Steps ``start`` to ``config.steps``, the batches a function of (seed, step) so resume repeats."""
        config, fabric = self.config, self.fabric
        bar = tqdm(
            range(start, config.steps),
            desc=f"finetune {self.module.name}",
            unit="step",
            disable=not (config.progress and fabric.is_global_zero),
            initial=start,
            total=config.steps,
        )
        augment = Augment(config.crop_scale, config.crop_ratio, config.flip, config.seed)
        batches = train_data.train_batches(
            start, config.batch_size, augment, fabric.global_rank, fabric.world_size, fabric.device
        )
        for step in bar:
            self.at_step = step + 1
            if not self.pending:
                self.block_started = time.perf_counter()
            self.training_step(next(batches), step)
            self.end_of_step(step + 1, val_data, bar)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> None:
        """Forward, backward, clip, optimizer and scheduler step; the row stays on the device (no sync)."""
        fabric, optimizer = self.fabric, self.optimizer
        images, labels = batch
        images, labels = (
            images.to(fabric.device, non_blocking=True),
            labels.to(fabric.device, non_blocking=True),
        )
        loss, terms = self.wrapped(images, labels, step)
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        if self.config.grad_clip:  # a non-finite norm is left to the flush's check: raising reads it now
            fabric.clip_gradients(
                self.wrapped, optimizer, max_norm=self.config.grad_clip, error_if_nonfinite=False
            )
        lr = optimizer.param_groups[0]["lr"]  # the lr this step uses (the scheduler then moves on)
        optimizer.step()
        self.scheduler.step()
        values = {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
        self.pending.append(PendingRow(step + 1, values, lr))

    def end_of_step(self, done: int, val_data: ImageSet, bar: tqdm) -> None:
        """End the block at a log, eval or checkpoint step or on preemption: flush, validate, save, stop."""
        config = self.config
        evaluates = done % config.eval_every == 0 or done == config.steps
        stop = self.vote.any(self.preemption)  # every step, on the host: ranks must agree on it
        periodic = bool(config.checkpoint_every and done % config.checkpoint_every == 0)
        saves = self.checkpoint is not None and (periodic or stop)
        if not (evaluates or saves or stop or done % config.log_every == 0 or done == config.steps):
            return
        rows = self.flush()
        row = rows[-1]
        if evaluates:
            self.validate(row, done, val_data)
        self.result.log.extend(rows)
        self.curves.add(rows)
        bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}", img_s=f"{row['images_per_s']:.0f}")
        if saves:
            self.save(done)
        if stop:
            self.preempted(done, bar)

    def flush(self) -> list[dict[str, float]]:
        """The block's log rows: the one host sync of the block; raises on NaN/inf before any save."""
        last_good = _last_good_text(self.last_good)
        rows = flush_rows(self.fabric, self.pending, last_good, self.block_started, self.config.batch_size)
        self.pending.clear()
        return rows

    def validate(self, row: dict[str, float], done: int, val_data: ImageSet) -> None:
        """Put val accuracy in the block's last row; keep a CPU copy of the state when it is the best."""
        with self.fabric.autocast():  # the training forward's precision (Fabric applies it in ``wrapped``)
            row["val_acc"] = validation_accuracy(self.module, val_data, self.config.eval_batch_size)
        if row["val_acc"] > self.result.best_val_acc:
            self.result.best_val_acc, self.result.best_step = row["val_acc"], done
            self.result.best_state = _cpu_copy(self.module.trainable_state())

    def save(self, done: int) -> None:
        """Rank 0 writes the checkpoint after step ``done``; the others wait only while it writes.

        The file it replaces is kept as the previous checkpoint only when it is this run's last good
        one; a checkpoint that was refused at resume is overwritten, and the good one before it stays.
        """
        if self.fabric.is_global_zero:
            payload = _checkpoint_payload(done, self.module, self.optimizer, self.scheduler, self.result)
            keep = self.last_good is not None and self.last_good[0] == self.checkpoint
            save_checkpoint(self.checkpoint, payload, self.identity, keep_previous=keep)
        self.last_good = (self.checkpoint, done)
        self.fabric.barrier()

    def lost_contact_message(self, error: BaseException) -> str:
        """What a rank says when a collective failed: who it is, where, the timeout, how to go on."""
        fabric, first = self.fabric, (str(error).strip().splitlines() or [type(error).__name__])[0]
        return (
            f"rank {fabric.global_rank} of {fabric.world_size} stopped at step {self.at_step} of "
            f"{self.config.steps}: a collective with the other ranks failed or timed out ({first[:300]}). "
            "Another rank died or stopped responding (the launcher's log names it); collectives wait "
            f"at most finetune.process_group_timeout_s={self.config.process_group_timeout_s:g} s. "
            f"Start the job again with finetune.resume=auto to continue ({_last_good_text(self.last_good)})."
        )

    def preempted(self, done: int, bar: tqdm) -> None:
        """Stop after step ``done`` with ``Preempted``, saying where the run can resume from."""
        bar.close()
        signal = self.preemption.signal  # None: another rank was signalled and the vote stopped this one
        why = (
            f"preempted by signal {signal}" if signal is not None else "preempted: another rank was signalled"
        )
        message = f"{why} after step {done} of {self.config.steps}; {resume_advice(self.checkpoint)}"
        log.warning(message)
        raise Preempted(message)


def _last_good_text(last_good: tuple[Path, int] | None) -> str:
    """How the non-finite-loss error names the checkpoint to go back to: only one of this very run."""
    if last_good is None:
        return "no checkpoint of this run was written"
    return f"last good checkpoint: {last_good[0]} (step {last_good[1]})"


def _timeout(config: TrainConfig) -> timedelta:
    """The process group's timeout: a collective waits this long for the other ranks, then fails."""
    return timedelta(seconds=config.process_group_timeout_s)


def ddp_options(objective: Objective, config: TrainConfig) -> dict[str, Any]:
    """DDP's settings for ``objective``: the group's timeout, and a search for unused parameters only
    where a step can leave a trainable parameter without a gradient (it traverses each step's graph)."""
    return {
        "find_unused_parameters": not objective.uses_every_trainable_each_step,
        "timeout": _timeout(config),
    }


def _train_and_save(
    fabric: Fabric, objective, train_data, val_data, config: TrainConfig, result_file: Path
) -> None:
    """Run one rank; rank 0 leaves its result in a file (a large return value would block the spawn queue)."""
    result = train_on_rank(fabric, objective, train_data, val_data, config)
    if fabric.is_global_zero:
        torch.save(dataclasses.asdict(result), result_file)


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
            strategy=ElasticDDPStrategy(**ddp_options(objective, config)),
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
        strategy = DDPStrategy(start_method="spawn", **ddp_options(objective, config))
        fabric = Fabric(
            accelerator=config.accelerator,
            devices=config.devices,
            strategy=strategy,
            precision=config.precision,
        )
        with tempfile.TemporaryDirectory(prefix="lipsum-ft-ranks-") as exchange:
            result_file = Path(exchange) / "rank0.pt"
            with spawned_ranks(config.devices, config.checkpoint_path):  # a signal: they save, exit 75
                fabric.launch(_train_and_save, objective, train_data, val_data, config, result_file)
            return TrainResult(**torch.load(result_file, weights_only=True))
    fabric = Fabric(accelerator=config.accelerator, devices=1, precision=config.precision)
    return train_on_rank(fabric, objective, train_data, val_data, config)
