r"""Streamed data loading, old path against new in one run: training images/s (and per worker core).

Writes JPEGs sized like DomainNet's (300-500 px a side) to a temporary folder: ``natural`` ones
(smooth, low-frequency content with mild texture, as photos and drawings compress) and, as a
second row, ``noise`` ones (uniform noise, a worst case no real decoder sees). Then times, in
interleaved rounds (ratios taken within a round, medians reported):

- ``old``: the loader before issue 14, reproduced here: full decode, torchvision v2
  RandomResizedCrop (bicubic) + flip, float conversion and normalisation in the worker, float
  batches through worker IPC;
- ``new``: ``StreamedImages.train_batches``: the same crop draws, decoded at reduced JPEG scale
  when the crop spans twice the output, the crop resampled on its uint8 bytes by torch's
  antialiased bicubic (PIL's filter, vectorised), uint8 batches through IPC, normalised at the end
  (here on the CPU; on a GPU host the device does it).

Two figures per path: ``*_images_per_s`` through a DataLoader with ``--workers`` workers (``*_per_core``
divides by the workers), and ``one_core_*``: one worker's work per image timed in this process on
one thread (no IPC, no scheduling between processes), the per-core rate a worker core gives.

    .venv/bin/python benchmarks/data_loading.py [--files 512] [--workers 2] [--batch 64] [--batches 16] \
        [--rounds 3] [--core-images 256] [--kinds natural noise]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from lipsum_ft.data.images import Augment, LoaderSettings, StreamedImages, _Files, _StepBatches, crop_key

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
SIZE = 224


def natural_image(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Smooth content: a coarse random colour field upsampled bicubically, plus faint texture."""
    cell = int(rng.integers(12, 48))
    coarse = rng.integers(0, 256, (height // cell + 2, width // cell + 2, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.int16)
    texture = rng.normal(0, 4, (height, width, 1))
    return Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8))


def noise_image(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def write_jpegs(folder: Path, kind: str, files: int, seed: int = 0) -> list[str]:
    rng, make = np.random.default_rng(seed), {"natural": natural_image, "noise": noise_image}[kind]
    paths = []
    for i in range(files):
        height, width = rng.integers(300, 500, size=2)
        path = folder / f"{kind}-{i:05d}.jpg"
        make(rng, int(height), int(width)).save(path, quality=90)
        paths.append(str(path))
    return paths


class OldFiles(Dataset):
    """The loader before issue 14: torchvision transforms on the fully decoded image, float out."""

    def __init__(self, paths: list[str], augment: Augment):
        from torchvision.transforms import v2

        self.paths, self.seed = paths, augment.seed
        steps = [
            v2.RandomResizedCrop(
                SIZE,
                scale=augment.crop_scale,
                ratio=augment.crop_ratio,
                interpolation=v2.InterpolationMode.BICUBIC,
                antialias=True,
            )
        ]
        if augment.flip:
            steps.append(v2.RandomHorizontalFlip())
        self.transform = v2.Compose(
            [
                *steps,
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(CLIP_MEAN), list(CLIP_STD)),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        index, step = key
        torch.manual_seed(crop_key(self.seed, step, index))
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), 0


def old_batches(paths: list[str], batch: int, augment: Augment, loader: LoaderSettings):
    sampler = _StepBatches(len(paths), batch, augment.seed, 0, 0, 1)
    yield from DataLoader(OldFiles(paths, augment), batch_sampler=sampler, **loader.kwargs())


def new_batches(paths: list[str], batch: int, augment: Augment, loader: LoaderSettings):
    images = StreamedImages(paths, [0] * len(paths), SIZE, CLIP_MEAN, CLIP_STD, loader)
    yield from images.train_batches(0, batch, augment, device="cpu")


def images_per_s(make, batches: int, batch: int) -> float:
    """Steady state of a fresh loader: the first batch (worker start-up) is not timed."""
    stream = make()
    first = next(stream)
    assert first[0].shape[1:] == (3, SIZE, SIZE) and first[0].dtype == torch.float32
    started = time.perf_counter()
    for _ in range(batches):
        next(stream)
    seconds = time.perf_counter() - started
    stream.close()  # stops the workers before the next measurement
    return batch * batches / seconds


def item_images_per_s(dataset: Dataset, images: int, step: int) -> float:
    """One core's rate: a worker's work per image (decode, crop, resample, tensor), in this process."""
    started = time.perf_counter()
    for index in range(images):
        dataset[(index % len(dataset), step)]
    return images / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=16, help="timed batches per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--core-images", type=int, default=256, help="images per one-core measurement")
    parser.add_argument("--kinds", nargs="+", default=["natural", "noise"], choices=["natural", "noise"])
    args = parser.parse_args()
    # The main process stands in for a GPU host's, whose conversion runs on the device: one thread
    # keeps its CPU normalisation from oversubscribing the cores the workers are measured on.
    torch.set_num_threads(1)
    loader = LoaderSettings(workers=args.workers, prefetch_factor=2 if args.workers else None)
    augment = Augment()  # the paper's crop: area (0.08, 1), ratio (3/4, 4/3), flip
    results: dict = {"workers": args.workers, "batch": args.batch, "rounds": args.rounds, "rows": {}}
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds:
            paths = write_jpegs(Path(folder), kind, args.files)
            make = {"old": old_batches, "new": new_batches}
            rounds = []
            for r in range(args.rounds):  # alternate which path goes first
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                rounds.append(
                    {
                        name: images_per_s(
                            functools.partial(make[name], paths, args.batch, augment, loader),
                            args.batches,
                            args.batch,
                        )
                        for name in order
                    }
                )
            datasets = {
                "old": OldFiles(paths, augment),
                "new": _Files(paths, [0] * len(paths), SIZE, augment=augment),
            }
            per_core = [  # interleaved as above; the same images and crops for both paths
                {name: item_images_per_s(datasets[name], args.core_images, r) for name in order}
                for r, order in (
                    (r, ("old", "new") if r % 2 == 0 else ("new", "old")) for r in range(args.rounds)
                )
            ]
            cores = max(args.workers, 1)
            old = statistics.median(r["old"] for r in rounds)
            new = statistics.median(r["new"] for r in rounds)
            results["rows"][kind] = {
                "mean_file_kb": round(sum(Path(p).stat().st_size for p in paths) / len(paths) / 1e3, 1),
                "old_images_per_s": round(old, 1),
                "new_images_per_s": round(new, 1),
                "old_per_core": round(old / cores, 1),
                "new_per_core": round(new / cores, 1),
                "new_over_old": round(statistics.median(r["new"] / r["old"] for r in rounds), 2),
                "one_core_old_images_per_s": round(statistics.median(r["old"] for r in per_core), 1),
                "one_core_new_images_per_s": round(statistics.median(r["new"] for r in per_core), 1),
                "one_core_new_over_old": round(statistics.median(r["new"] / r["old"] for r in per_core), 2),
                "one_core_round_ratios": [round(r["new"] / r["old"], 2) for r in per_core],
                "round_ratios": [round(r["new"] / r["old"], 2) for r in rounds],
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
