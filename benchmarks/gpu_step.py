r"""GPU check: ViT-B/16 (no pretrained weights) on synthetic 224 px batches, bf16, FT vs Lipsum-FT vs bare.

Measures images/s and peak GPU memory over ~50 steps after warm-up for the project's loop with FT
and with Lipsum-FT, and for a bare open_clip forward/backward/AdamW loop of the same model.
Images live on the device (a synthetic uint8 tensor), so the figures are compute, not disk.

    .venv/bin/python benchmarks/gpu_step.py                       # on a GPU host (about 3 minutes on an H200)
    .venv/bin/python benchmarks/gpu_step.py --device cpu --model TinyCLIP-ViT-P8-32 \
        --batch 8 --steps 3 --warmup 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from lipsum_ft.clip.backbone import new_model  # noqa: E402
from lipsum_ft.data.images import InMemoryImages  # noqa: E402
from step_cost import bare_loop_ms, method_ms  # noqa: E402


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    on_gpu = args.device.startswith("cuda")
    precision = "bf16-mixed" if on_gpu else "32-true"
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
    results = {
        "model": args.model,
        "batch": args.batch,
        "device": args.device,
        "precision": precision,
        "steps": args.steps,
        "gpu": torch.cuda.get_device_name() if on_gpu else None,
    }
    for name in ("bare", "ft", "lipsum"):
        reset_peak(args.device)
        if name == "bare":
            ms = bare_loop_ms(
                model,
                head.to(args.device),
                data,
                args.batch,
                args.steps,
                args.warmup,
                args.device,
                bf16=on_gpu,
            )
        else:
            ms = method_ms(
                name,
                model,
                spec,
                head,
                data,
                classnames,
                args.batch,
                args.steps,
                args.warmup,
                "gpu" if on_gpu else "cpu",
                precision,
            )
        results[f"{name}_images_per_s"] = args.batch / (ms / 1000)
        results[f"{name}_peak_gib"] = peak_gib(args.device)
    results["lipsum_over_ft_time"] = results["ft_images_per_s"] / results["lipsum_images_per_s"]
    results["ft_loop_over_bare_throughput"] = results["ft_images_per_s"] / results["bare_images_per_s"]
    text = json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
