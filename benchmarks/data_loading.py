"""Streamed data loading: training images/s for 224 px JPEGs decoded and augmented in DataLoader workers.

Writes synthetic JPEGs (sized like DomainNet's, about 300-500 px) to a temporary folder, then times
``StreamedImages.train_batches`` (RandomResizedCrop to 224, flip, normalise) with the given workers.

    .venv/bin/python benchmarks/data_loading.py [--files 512] [--workers 2] [--batch 64] [--batches 24]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lipsum_ft.data.images import Augment, LoaderSettings, StreamedImages

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=24)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i in range(args.files):
            h, w = rng.integers(300, 500, size=2)
            path = Path(folder) / f"{i:05d}.jpg"
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, quality=90)
            paths.append(str(path))
        loader = LoaderSettings(
            workers=args.workers,
            pin_memory=False,
            persistent_workers=args.workers > 0,
            prefetch_factor=4 if args.workers else None,
        )
        images = StreamedImages(paths, [0] * len(paths), 224, CLIP_MEAN, CLIP_STD, loader)
        batches = images.train_batches(0, args.batch, Augment())
        next(batches)  # start the workers
        started = time.perf_counter()
        for _ in range(args.batches):
            next(batches)
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "workers": args.workers,
                "batch": args.batch,
                "images_per_s": round(args.batch * args.batches / seconds, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
