r"""Milliseconds per training step of every method on one model and batch, measured in one run.

Also the project's loop (data, augmentation, Fabric, logging) against a bare forward/backward/AdamW
loop of the same model and batch, and Lipsum-FT under each text-guidance strategy. Ratios are what
to compare: the machine is noisy (medians of one method's 20-step runs vary by about 15% from run
to run here), so every measurement is repeated in interleaved rounds and ratios are taken within a
round.

    .venv/bin/python benchmarks/step_cost.py [--steps 30] [--batch 128] [--model TinyCLIP-ViT-P8-32] \
        [--rounds 3] [--guidance fixed_pool ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import ClipBundle, new_model
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.data.images import InMemoryImages, normalize
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.training.guidance import STRATEGIES
from lipsum_ft.training.loop import TrainConfig, fit
from lipsum_ft.training.objectives import METHODS, Objective
from lipsum_ft.training.runs import run_objective
from lipsum_ft.training.schedule import adamw, decay_groups

TEMPLATES = ["a photo of the digit {}.", "a sketch of the digit {}."]


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def benchmark_objective(method: str, model, spec, head, classnames, steps: int, **lipsum) -> Objective:
    """``method``'s objective built as a run builds it (``finetune.<method>``, then ``make_objective``):
    each regulariser at weight 1, CAR-FT's and FLYP's templates ``TEMPLATES``, LP-FT without a head-only
    phase, seed 0; ``lipsum`` sets ``finetune.lipsum`` (its templates default to ``TEMPLATES``).
    """
    params = FinetuneParams(
        methods=[method],
        reference_domain="benchmark",
        steps=steps,
        batch_size=1,
        lr=1e-5,
        l2sp={"coefficient": 1.0},
        kd={"coefficient": 1.0},
        carft={"coefficient": 1.0, "templates": TEMPLATES},
        flyp={"templates": TEMPLATES},
        lpft={"lp_fraction": 0.0},
        lipsum={"coefficient": 1.0, "templates": TEMPLATES, **lipsum},
    )
    zero_shot = ClipBundle(model=model, spec=spec)
    return run_objective(
        method, params, zero_shot, {"weight": head, "logit_scale": torch.tensor(14.0)}, classnames
    )


def bare_loop_ms(
    model,
    head,
    data: InMemoryImages,
    batch: int,
    steps: int,
    warmup: int,
    device: str = "cpu",
    bf16: bool = False,
) -> float:
    """Forward, backward and AdamW step of image tower + head on a ready batch: the floor."""
    classifier = copy.deepcopy(ClipClassifier(model.visual, head, 14.0)).train().to(device)
    optimizer = adamw(decay_groups(classifier, 0.1), lr=1e-5, betas=(0.9, 0.999), eps=1e-8)
    images = normalize(data.images[:batch], data.mean, data.std).to(device)
    labels = data.labels[:batch].to(device)
    times = []
    for _step in range(warmup + steps):
        synchronize(device)
        started = time.perf_counter()
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(classifier(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times[warmup:])


def method_ms(
    method: str,
    model,
    spec,
    head,
    data: InMemoryImages,
    classnames,
    batch: int,
    steps: int,
    warmup: int,
    accelerator: str = "cpu",
    precision: str = "32-true",
    guidance: str = "random_tokens",
) -> float:
    """The project's loop for ``method``: median step time from its own log (validation steps excluded)."""
    config = TrainConfig(
        steps=warmup + steps + 1,
        batch_size=batch,
        lr=1e-5,
        weight_decay=0.1,
        eval_every=10**9,
        progress=False,
        crop_scale=(0.5, 1.0),
        accelerator=accelerator,
        precision=precision,
    )
    objective = benchmark_objective(method, model, spec, head, classnames, config.steps, guidance=guidance)
    log = fit(objective, data, data, config).log
    return 1000 * statistics.median(batch / row["images_per_s"] for row in log[warmup:-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="TinyCLIP-ViT-P8-32")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved repetitions; medians and per-round ratios are reported",
    )
    parser.add_argument(
        "--guidance",
        nargs="*",
        default=[s for s in STRATEGIES if s != "random_tokens"],
        choices=STRATEGIES,
        help="Lipsum-FT text guidance strategies to time besides the paper's random_tokens",
    )
    args = parser.parse_args()
    model, spec = new_model(args.model, seed=0)
    model.eval()
    size, k = spec.image_size, 10
    classnames = [f"class {i}" for i in range(k)]
    head = F.normalize(torch.randn(spec.model_cfg["embed_dim"], k), dim=0)
    g = torch.Generator().manual_seed(0)
    data = InMemoryImages(
        torch.randint(0, 256, (4 * args.batch, 3, size, size), generator=g, dtype=torch.uint8),
        torch.randint(0, k, (4 * args.batch,), generator=g),
        spec.preprocess_cfg["mean"],
        spec.preprocess_cfg["std"],
    )
    timers = {"bare": lambda: bare_loop_ms(model, head, data, args.batch, args.steps, args.warmup)}
    for method in METHODS:
        timers[method] = lambda method=method: method_ms(
            method, model, spec, head, data, classnames, args.batch, args.steps, args.warmup
        )
    for strategy in args.guidance:
        timers[f"lipsum[{strategy}]"] = lambda strategy=strategy: method_ms(
            "lipsum",
            model,
            spec,
            head,
            data,
            classnames,
            args.batch,
            args.steps,
            args.warmup,
            guidance=strategy,
        )
    # Rounds interleave every measurement, so slow drift of a shared machine hits all of them alike;
    # ratios are taken within a round, then the median over rounds is reported.
    rounds = [{name: timer() for name, timer in timers.items()} for _ in range(args.rounds)]
    results = {
        "model": args.model,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
    }
    results.update({f"{name}_ms": statistics.median(r[name] for r in rounds) for name in timers})
    results["loop_vs_bare_throughput"] = statistics.median(r["bare"] / r["ft"] for r in rounds)
    results["lipsum_over_ft"] = statistics.median(r["lipsum"] / r["ft"] for r in rounds)
    results["round_spread_ft_ms"] = [round(r["ft"], 1) for r in rounds]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
