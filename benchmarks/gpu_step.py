r"""GPU check: ViT-B/16 (random init, no download) at batch 256 in bf16: FT, Lipsum-FT and a bare loop,
measured beside the paper estimate of the README ("The published run's time").

Measures, for the project's loop with FT and with Lipsum-FT (M texts of L random tokens) and for a
bare forward/backward/AdamW loop: images/s, peak GPU memory, the Lipsum/FT time ratio, and the
fraction of the bf16 peak the step reaches (model FLOPs utilisation). The loop's step time comes
from its own log, whose blocks of ``log_every`` steps are timed up to the read that waits for the
device (no per-step sync); the warm-up is the first block and is left out. Beside the measurement
it prints the estimate: FLOPs per step from the model's shapes,
the step time at ``--mfu`` of ``--peak-tflops``, the wall time of DomainNet (5k steps) and ImageNet
(50k steps), and the loader cores that images/s needs at ``--loader-per-core``.

``lipsum_parts`` says where Lipsum-FT's time beyond FT's goes: each part of its regulariser timed
on its own on the same batch (the text tower on this step's M texts, token draw and copy included;
the frozen image tower; the scores and squared differences, forward and backward), beside what the
FLOP count gives each part at FT's measured rate, and what the parts leave unexplained.

With ``--compile`` it also runs FT and Lipsum-FT with ``finetune.compile`` (torch.compile'd image
towers), in the same process on the same GPU, and compares the two loss curves over the first
``--curve-steps`` steps (eager against compiled: the largest relative difference of the loss).

``--output`` is rewritten after every run with ``"complete": false`` until the end
(``partial_run.JsonReport``): a run killed at a time limit keeps what it measured. ``--budget-s``
skips a compiled run, and says so under ``skipped``, when it would not fit (an estimate: the eager
run's seconds times ``--compile-cost``).

    .venv/bin/python benchmarks/gpu_step.py                       # on a GPU host (a few minutes on an H200)
    .venv/bin/python benchmarks/gpu_step.py --compile --output gpu_step.json
    .venv/bin/python benchmarks/gpu_step.py --device cpu --model TinyCLIP-ViT-P8-32 \
        --batch 8 --steps 3 --warmup 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))  # this checkout's code, installed or not
from lipsum_ft.clip.backbone import new_model  # noqa: E402
from lipsum_ft.data.images import InMemoryImages, normalize  # noqa: E402
from lipsum_ft.training.loop import TrainConfig, fit  # noqa: E402
from partial_run import Budget, JsonReport  # noqa: E402
from step_cost import bare_loop_ms, benchmark_objective, synchronize  # noqa: E402

RUNS = {"domainnet": 5_000, "imagenet": 50_000}  # the paper's steps at batch 256


def transformer_flops(tokens: int, width: int, layers: int, mlp_ratio: float) -> float:
    """Forward FLOPs (2 per multiply-add) of a pre-norm transformer over one sequence of ``tokens``."""
    dense = 2 * tokens * (4 * width**2 + 2 * mlp_ratio * width**2)  # qkv + out projections, MLP
    attention = 2 * 2 * tokens**2 * width  # q @ k^T and weights @ v
    return layers * (dense + attention)


def step_flops(model_cfg: dict, batch: int, num_texts: int, length: int) -> dict[str, float]:
    """FLOPs of one training step: FT = 3 image forwards per image (forward + backward at twice its
    cost); Lipsum-FT adds one no-grad forward of the frozen image tower and the frozen text tower on
    ``num_texts`` texts of ``length + 2`` tokens (start and end tokens).
    """
    vision, text = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    size, patch, width = vision["image_size"], vision["patch_size"], vision["width"]
    patches = (size // patch) ** 2
    image = (
        2 * patches * 3 * patch**2 * width  # patch embedding
        + transformer_flops(patches + 1, width, vision["layers"], vision.get("mlp_ratio", 4.0))
        + 2 * width * model_cfg["embed_dim"]  # projection
    )
    tokens = length + 2
    texts = num_texts * (
        transformer_flops(tokens, text["width"], text["layers"], text.get("mlp_ratio", 4.0))
        + 2 * text["width"] * model_cfg["embed_dim"]
    )
    ft = 3 * image * batch
    return {"image_forward": image, "ft": ft, "lipsum": ft + image * batch + texts, "texts": texts}


def estimate(flops: dict[str, float], batch: int, peak: float, mfu: float, per_core: float) -> dict:
    """Step time, images/s, run wall time and loader cores at ``mfu`` of ``peak`` FLOP/s."""
    out = {}
    for method in ("ft", "lipsum"):
        seconds = flops[method] / (mfu * peak)
        out[method] = {
            "tflops_per_step": round(flops[method] / 1e12, 2),
            "step_ms": round(1000 * seconds, 1),
            "images_per_s": round(batch / seconds),
            **{f"{run}_hours": round(steps * seconds / 3600, 2) for run, steps in RUNS.items()},
            "loader_cores": round(batch / seconds / per_core, 1),
        }
    out["lipsum_over_ft"] = round(flops["lipsum"] / flops["ft"], 3)
    return out


def loop_step_ms(
    method: str, model, spec, head, data, classnames, args, on_gpu: bool, compile: bool = False
) -> tuple[float, list[float], float | None]:
    """ms per step of the project's loop (``fit``) after ``warmup`` steps, the loss of every step, and
    the run's peak GPU memory in GiB as the loop records it (None off GPU).

    The loop reads its log from the device once every ``log_every`` steps and times each such block
    up to that read (which waits for the device); ``log_every = warmup`` puts the warm-up in the
    first block, so the later rows time only steady-state steps.
    """
    config = TrainConfig(
        steps=args.warmup + args.steps,
        log_every=args.warmup,
        batch_size=args.batch,
        lr=1e-5,
        weight_decay=0.1,
        eval_every=10**9,
        eval_batch_size=args.batch,
        progress=False,
        crop_scale=(0.08, 1.0),
        accelerator="gpu" if on_gpu else "cpu",
        precision="bf16-mixed" if on_gpu else "32-true",
        compile=compile,
    )
    objective = benchmark_objective(
        method, model, spec, head, classnames, config.steps, num_texts=args.texts, length=args.length
    )
    result = fit(objective, data, data, config)
    log = result.log
    ms = 1000 * statistics.mean(args.batch / row["images_per_s"] for row in log[args.warmup :])
    return ms, [row["loss"] for row in log], result.peak_memory_gib


def device_ms(work, repeats: int, warmup: int, device: str) -> float:
    """ms per call of ``work()`` once the device has run it: ``warmup`` untimed calls, then the
    device's queue drained before and after ``repeats`` timed calls (launch-bound work counts in full)."""
    for _ in range(warmup):
        work()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    synchronize(device)
    return 1000 * (time.perf_counter() - started) / repeats


def lipsum_parts(objective, images: torch.Tensor, repeats: int, warmup: int, device: str, bf16: bool) -> dict:
    """ms of each part that Lipsum-FT adds to an FT step, each timed on its own under the run's autocast:
    the M guidance texts through the frozen text tower (drawn on the host and copied, as in a step),
    the frozen image tower on the batch, and the regulariser's scores and squared differences forward
    and backward (into the trained features)."""
    objective = objective.to(device)
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16)
    with torch.no_grad():  # a leaf for the regulariser's backward, without a tower graph to drop
        features = objective.classifier.features(images)
    features.requires_grad_(True)
    texts = objective.text_features(0)
    zero = objective.zero_shot_features(images)
    step = iter(range(1, 10**9))

    def text_tower():
        with autocast:
            objective.text_features(next(step))

    def frozen_image_tower():
        with autocast:
            objective.zero_shot_features(images)

    def regulariser():
        objective.regulariser_from(features, zero, texts).backward()

    parts = {"text_tower": text_tower, "frozen_image_tower": frozen_image_tower, "regulariser": regulariser}
    return {name: device_ms(work, repeats, warmup, device) for name, work in parts.items()}


def lipsum_extra(results: dict, parts: dict[str, float], flops: dict[str, float], batch: int) -> dict:
    """Lipsum-FT's measured extra time per step over FT, its parts, what the FLOP count gives each part
    at FT's measured FLOP rate, and the extra that the parts leave unexplained (time between them:
    launches, host work, lost overlap)."""
    extra = results["lipsum_step_ms"] - results["ft_step_ms"]
    ms_per_flop = results["ft_step_ms"] / flops["ft"]
    return {
        "measured_extra_ms": extra,
        "flop_count_extra_ms": (flops["lipsum"] - flops["ft"]) * ms_per_flop,
        "parts_ms": parts,
        "parts_at_ft_rate_ms": {
            "text_tower": flops["texts"] * ms_per_flop,
            "frozen_image_tower": flops["image_forward"] * batch * ms_per_flop,
            "regulariser": 0.0,  # two (batch, M) matmuls: nothing beside the towers
        },
        "unexplained_ms": extra - sum(parts.values()),
    }


def curve_difference(eager: list[float], compiled: list[float], steps: int) -> dict[str, float]:
    """The largest relative difference of the loss between two runs over their first ``steps`` steps
    (bf16 keeps about 3 significant digits: a few 1e-3 is the same curve, 1e-1 is not)."""
    pairs = list(zip(eager[:steps], compiled[:steps], strict=True))
    worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in pairs)
    return {"steps": len(pairs), "max_relative_loss_difference": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="timed steps (beyond the warm-up run)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--texts", type=int, default=80, help="Lipsum-FT's M")
    parser.add_argument("--length", type=int, default=8, help="Lipsum-FT's L (random tokens per text)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="H100/H200 SXM dense bf16 peak")
    parser.add_argument("--mfu", type=float, default=0.40, help="fraction of the peak the estimate assumes")
    parser.add_argument(
        "--loader-per-core",
        type=float,
        default=978.0,
        help="training images/s one loader core gives (new path, natural JPEGs; README, loader cores)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="also write the JSON here (rewritten after every run)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also FT and Lipsum-FT with torch.compile'd image towers"
    )
    parser.add_argument("--curve-steps", type=int, default=50, help="steps of the eager/compiled curve check")
    parser.add_argument(
        "--budget-s",
        type=float,
        help="seconds the run may take: a compiled run that would not fit is skipped",
    )
    parser.add_argument(
        "--compile-cost",
        type=float,
        default=1.5,
        help="a compiled run's seconds over its eager run's, compiling included (for --budget-s)",
    )
    args = parser.parse_args()
    budget = Budget(args.budget_s)
    report = JsonReport(args.output, digits=3)
    with report.recording():  # a crash, Ctrl-C, a SIGTERM: named in the JSON, what was measured kept
        measure(args, report, budget)
    print(report.finish())


def measure(args: argparse.Namespace, report: JsonReport, budget: Budget) -> None:
    """Every run, then the figures derived from them; each run's figures go to ``report`` when measured."""
    on_gpu = args.device.startswith("cuda")
    model, spec = new_model(args.model, seed=0)
    model.eval()
    size, k = spec.image_size, 345
    g = torch.Generator().manual_seed(0)
    data = InMemoryImages(
        torch.randint(0, 256, (2 * args.batch, 3, size, size), generator=g, dtype=torch.uint8).to(
            args.device
        ),
        torch.randint(0, k, (2 * args.batch,), generator=g).to(args.device),
        spec.preprocess_cfg["mean"],
        spec.preprocess_cfg["std"],
    )
    head = F.normalize(torch.randn(spec.model_cfg["embed_dim"], k), dim=0)
    classnames = [f"class {i}" for i in range(k)]
    flops = step_flops(spec.model_cfg, args.batch, args.texts, args.length)
    report.update(
        model=args.model,
        batch=args.batch,
        device=args.device,
        precision="bf16-mixed" if on_gpu else "32-true",
        steps=args.steps,
        gpu=torch.cuda.get_device_name() if on_gpu else None,
        torch=torch.__version__,
    )
    results = report.figures
    losses: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}

    def measure_run(name: str, clip) -> None:
        """One run's ms/step, images/s and peak memory into the report (and its losses, its seconds)."""
        started = time.perf_counter()
        if on_gpu:
            torch.cuda.empty_cache()
        if name == "bare":  # the project's loop records its own peak; the bare loop is measured here
            if on_gpu:
                torch.cuda.reset_peak_memory_stats()
            ms = bare_loop_ms(
                clip, head.to(args.device), data, args.batch, args.steps, args.warmup, args.device, on_gpu
            )
            peak_gib = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None
        else:
            eager = name.removesuffix("_compiled")
            ms, losses[name], peak_gib = loop_step_ms(
                eager, clip, spec, head, data, classnames, args, on_gpu, compile=eager != name
            )
        seconds[name] = time.perf_counter() - started
        report.update(
            **{
                f"{name}_step_ms": ms,
                f"{name}_images_per_s": args.batch / (ms / 1000),
                f"{name}_peak_gib": peak_gib,
            }
        )

    runs = ["bare", "ft", "lipsum"]
    for name in runs:
        measure_run(name, model)
    results["lipsum_over_ft_time"] = results["lipsum_step_ms"] / results["ft_step_ms"]
    results["ft_loop_over_bare_throughput"] = results["ft_images_per_s"] / results["bare_images_per_s"]
    # Lipsum-FT's parts before the compiled runs, which the budget may skip or a time limit cut
    objective = benchmark_objective(
        "lipsum", model, spec, head, classnames, 1, num_texts=args.texts, length=args.length
    )
    images = normalize(data.images[: args.batch], data.mean, data.std)
    parts = lipsum_parts(objective, images, args.steps, args.warmup, args.device, on_gpu)
    report.update(lipsum_parts=lipsum_extra(results, parts, flops, args.batch))
    skipped: dict[str, str] = {}
    for name in ["ft_compiled", "lipsum_compiled"] if args.compile else []:
        reason = budget.skip_reason(name, args.compile_cost * seconds[name.removesuffix("_compiled")])
        if reason:
            skipped[name] = reason
            report.update(skipped=skipped)
        else:
            measure_run(name, model)
            runs.append(name)
    if {"ft_compiled", "lipsum_compiled"} <= set(runs):
        results["lipsum_over_ft_time_compiled"] = (
            results["lipsum_compiled_step_ms"] / results["ft_compiled_step_ms"]
        )
    for method in [m for m in ("ft", "lipsum") if f"{m}_compiled" in runs]:
        results[f"{method}_compiled_speedup"] = (
            results[f"{method}_step_ms"] / results[f"{method}_compiled_step_ms"]
        )
        results[f"{method}_compiled_curve"] = curve_difference(
            losses[method], losses[f"{method}_compiled"], args.curve_steps
        )
    peak = args.peak_tflops * 1e12
    for name in [r for r in runs if r != "bare"]:
        step_s = results[f"{name}_step_ms"] / 1000
        results[f"{name}_measured_mfu"] = flops[name.removesuffix("_compiled")] / step_s / peak
        results[f"{name}_measured_hours"] = {run: steps * step_s / 3600 for run, steps in RUNS.items()}
        results[f"{name}_measured_loader_cores"] = results[f"{name}_images_per_s"] / args.loader_per_core
    results["estimate"] = {
        "peak_tflops": args.peak_tflops,
        "mfu": args.mfu,
        "loader_per_core": args.loader_per_core,
        "image_forward_gflops": round(flops["image_forward"] / 1e9, 2),
        "texts_gflops_per_step": round(flops["texts"] / 1e9, 2),
        **estimate(flops, args.batch, peak, args.mfu, args.loader_per_core),
    }
    report.update()


if __name__ == "__main__":
    main()
