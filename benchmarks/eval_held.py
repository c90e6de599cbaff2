"""Evaluation of many variants on streamed JPEG test sets: decoded again for every variant (streamed)
against decoded once and held (``evaluate.hold_decoded_gib``), same model, images and workers, in
interleaved rounds. Also the loader's decode rate alone, from which the saving on another host follows.

    .venv/bin/python benchmarks/eval_held.py [--variants 6] [--workers 2] [--output FILE]
    .venv/bin/python benchmarks/eval_held.py --device cuda --model ViT-B-16 --classes 40 --test-per-class 10 \
        --workers 8 --batch 256 --output eval_held.json      # on a GPU host (device_check.sh held)

The tree is DomainNet-format natural-looking JPEGs of 300-500 px (``gpu_chain.build_tree``); nothing is
downloaded. The scores of both ways must be identical, and the JSON says whether they were.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from gpu_chain import DOMAINS, TreeSpec, build_tree
from lipsum_ft.atomic import atomic_path
from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.zeroshot import classifier_for
from lipsum_ft.data.held import decoded_once
from lipsum_ft.data.images import load_split_for
from lipsum_ft.data.layout import FolderLayout, read_classnames, read_manifest
from lipsum_ft.evaluation.variants import evaluate_on_split
from lipsum_ft.params.evaluate import EvaluateParams
from posthoc_memory import zero_shot


def perturbed_states(zero: dict[str, torch.Tensor], count: int) -> dict[str, dict[str, torch.Tensor]]:
    """``count`` classifier states near the zero-shot one, as WiSE and TPGM hand them to evaluation."""
    g = torch.Generator().manual_seed(1)
    return {
        f"wise-ft-{i}": {k: v + 0.01 * (i + 1) * torch.randn(v.shape, generator=g) for k, v in zero.items()}
        for i in range(count)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="TinyCLIP-ViT-P8-32")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--test-per-class", type=int, default=25)
    parser.add_argument("--domains", type=int, default=2)
    parser.add_argument("--variants", type=int, default=6, help="post-hoc states beside the zero-shot model")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where the variants are scored: cpu or cuda")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    model, spec, head = zero_shot(args.model, args.classes)
    states = perturbed_states(classifier_for(model, head).state_dict(), args.variants)
    domains = list(DOMAINS[: args.domains])
    loader = {
        "mode": "stream",
        "workers": args.workers,
        "prefetch_factor": 2 if args.workers else None,
        "pin_memory": args.device == "cuda",
    }
    with tempfile.TemporaryDirectory(prefix="eval-held-") as folder:
        root = Path(folder)
        tree = TreeSpec(args.classes, 1, args.test_per_class, 300, 500, domains=tuple(domains))
        build_tree(root, tree, workers=max(1, args.workers), progress=True)
        layout = FolderLayout(root, tuple(domains), ("test",), classnames_from="folders")
        manifest = read_manifest(layout)  # as the data pipeline reads the tree
        inputs = (manifest, read_classnames(layout), {})

        def evaluate(hold_gib: float) -> tuple[float, pd.DataFrame]:
            params = EvaluateParams(
                reference_domain=domains[0],
                batch_size=args.batch,
                loader=loader,
                hold_decoded_gib=hold_gib,
                device=args.device,
                progress=False,
            )
            started = time.perf_counter()
            results, _ = evaluate_on_split(ClipBundle(model, spec), head, {}, states, inputs, params)
            return time.perf_counter() - started, results

        seconds: dict[str, list[float]] = {"streamed": [], "held": []}
        frames: dict[str, pd.DataFrame] = {}
        for round_ in range(args.repeats):  # interleaved, the order swapped each round
            for way in ("streamed", "held") if round_ % 2 == 0 else ("held", "streamed"):
                took, frames[way] = evaluate(0.0 if way == "streamed" else 64.0)
                seconds[way].append(took)
        params = EvaluateParams(reference_domain=domains[0], loader=loader)
        data = load_split_for(manifest, "test", spec, params.loader, False)
        started = time.perf_counter()
        for images in data.values():
            decoded_once(images, args.batch)
        decode_s = time.perf_counter() - started
    streamed, held = statistics.median(seconds["streamed"]), statistics.median(seconds["held"])
    result: dict[str, Any] = {
        "model": args.model,
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "image_size": spec.image_size,
        "images": len(manifest),
        "variants": 1 + args.variants,
        "workers": args.workers,
        "cpu_threads": torch.get_num_threads(),
        "streamed_s": round(streamed, 3),
        "held_s": round(held, 3),
        "streamed_over_held": round(streamed / held, 3),
        "rounds": {way: [round(s, 3) for s in values] for way, values in seconds.items()},
        "decode_images_per_s": round(len(manifest) / decode_s, 1),
        "identical_scores": frames["held"].equals(frames["streamed"]),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        with atomic_path(args.output) as temporary:
            temporary.write_text(text + "\n")


if __name__ == "__main__":
    main()
