"""Evaluation throughput: the evaluate stage's scoring path against a bare inference loop,
same model and images.

.venv/bin/python benchmarks/eval_throughput.py [--images 2048] [--batch 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.data.images import InMemoryImages, normalize
from lipsum_ft.evaluation.scoring import score_variant


@torch.inference_mode()
def bare_seconds(classifier: ClipClassifier, images: InMemoryImages, batch: int) -> float:
    """Normalise, encode and score each batch: nothing but the model."""
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        x = normalize(images.images[start : start + batch], images.mean, images.std)
        classifier.logits_from_features(F.normalize(classifier.visual(x), dim=-1))
    return time.perf_counter() - started


def stage_seconds(
    classifier: ClipClassifier, images: InMemoryImages, texts: torch.Tensor, batch: int
) -> float:
    """The evaluate stage's path: features once, then accuracy, NLL, ECE, reliability bins and energy gap."""
    started = time.perf_counter()
    score_variant(classifier, {"domain": images}, None, texts, {}, batch, 15, False, "bench")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="TinyCLIP-ViT-P8-32")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model, spec = new_model(args.model, seed=0)
    classifier = ClipClassifier(
        model.visual, F.normalize(torch.randn(spec.model_cfg["embed_dim"], 10), dim=0), 14.0
    ).eval()
    g = torch.Generator().manual_seed(0)
    size = spec.image_size
    images = InMemoryImages(
        torch.randint(0, 256, (args.images, 3, size, size), generator=g, dtype=torch.uint8),
        torch.randint(0, 10, (args.images,), generator=g),
        spec.preprocess_cfg["mean"],
        spec.preprocess_cfg["std"],
    )
    texts = F.normalize(torch.randn(80, spec.model_cfg["embed_dim"]), dim=-1)
    bare, stage = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        bare.append(bare_seconds(classifier, images, args.batch))
        stage.append(stage_seconds(classifier, images, texts, args.batch))
    result = {
        "model": args.model,
        "images": args.images,
        "batch": args.batch,
        "bare_images_per_s": args.images / statistics.median(bare),
        "stage_images_per_s": args.images / statistics.median(stage),
    }
    result["stage_over_bare"] = result["stage_images_per_s"] / result["bare_images_per_s"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
