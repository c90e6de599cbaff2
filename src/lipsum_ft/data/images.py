"""Images from a manifest, as one interface with two implementations.

``InMemoryImages``: small datasets (DigitDomains) decoded once into a uint8 tensor and augmented a
whole batch at a time. ``StreamedImages``: large ones (DomainNet, ImageNet) decoded and augmented
in DataLoader workers, so the training loop does no per-sample Python work. Both draw the global
batch of a step from (seed, step) alone, so runs resume exactly and every rank agrees.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from lipsum_ft.data.errors import DataInputError
from lipsum_ft.seeding import step_generator
from lipsum_ft.transfer import queued_to

try:  # libjpeg-turbo into a tensor. Deprecated in torchvision 0.29 for TorchCodec; PIL decodes without it
    from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:  # pragma: no cover - a torchvision without image decoders
    ImageReadMode, decode_jpeg = None, None


class ImageDecodeError(DataInputError):
    """An image file did not decode; names the file, its split-file line and the decoder's error."""


def read_rgb(path: str, where: str | None = None) -> Image.Image:
    """The decoded RGB image at ``path``; any decoder failure becomes an ``ImageDecodeError`` naming
    ``path``, ``where`` (the split-file line that lists it) and the decoder's own message.
    """
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise decode_error(path, where, error) from error


def decode_error(path: str, where: str | None, error: BaseException) -> ImageDecodeError:
    """The error for a file that does not decode: its path, its split-file line, the decoder's message."""
    listed = f" (listed at {where})" if where else ""
    return ImageDecodeError(f"cannot decode image {path}{listed}: {type(error).__name__}: {error}")


def decode_images(
    paths: Sequence[str],
    size: int,
    progress: bool = True,
    desc: str = "decode",
    sources: Sequence[str] | None = None,
) -> torch.Tensor:
    """uint8 tensor (N, 3, size, size); images of another size are resized bicubically.

    ``sources`` (the split-file line of each path) go into the error of a file that does not decode.
    """
    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=not progress, mininterval=1.0)):
        image = read_rgb(path, sources[i] if sources is not None else None)
        if image.size != (size, size):
            image = image.resize((size, size), Image.BICUBIC)
        out[i] = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return out


def channel_constants(values: Sequence[float], device: torch.device) -> torch.Tensor:
    """Per-channel float32 constants (1, C, 1, 1) on ``device``, made on the host and copied without a
    host sync (``torch.tensor(..., device=cuda)`` would block the host once per batch)."""
    return queued_to(torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1), device)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 or [0,1] float batch -> CLIP-normalised float batch, on the batch's device."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    return (x - channel_constants(mean, x.device)) / channel_constants(std, x.device)


def normalize_pixel_rows(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, H, W, 3) batch (decoders' layout) -> CLIP-normalised float (N, 3, H, W).

    Bytes are moved to planar order first (a quarter of float's bytes), then ``(x/255 - mean)/std`` is
    one multiply and one subtract in place: ``x * (1/(255 std)) - mean/std``; about 4x the plain
    float-then-permute order on one CPU core (a GPU host's main thread stays free either way).
    """
    x = images.permute(0, 3, 1, 2).contiguous().float()
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.mul_(queued_to(1.0 / (255.0 * std_t), x.device)).sub_(queued_to(mean_t / std_t, x.device))


def random_resized_crop_flip(
    images: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> torch.Tensor:
    """Per-sample RandomResizedCrop (+ horizontal flip) of a float batch at its own size, in one grid_sample.

    Crop area is drawn uniformly in ``scale`` of the image, the aspect ratio log-uniformly in
    ``ratio`` (torchvision's distribution, clamped to fit instead of retried).
    """
    n = images.shape[0]
    u = torch.rand((n, 5), generator=generator)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r)
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (1 - width) * (2 * u[:, 2] - 1)
    cy = (1 - height) * (2 * u[:, 3] - 1)
    sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros((n, 2, 3))
    theta[:, 0, 0] = width * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = height
    theta[:, 1, 2] = cy
    grid = F.affine_grid(
        queued_to(theta, images.device).to(images.dtype), list(images.shape), align_corners=False
    )
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@functools.lru_cache(maxsize=2)
def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of epoch ``epoch``: drawn once per (n, seed, epoch) and process, then reused by every step.

    At ImageNet size a permutation costs ~10 ms; two cached epochs cover a batch that spans a boundary.
    Callers only slice it (never write to it).
    """
    return torch.randperm(n, generator=step_generator(seed + 7919, epoch))


def global_indices(n: int, step: int, batch_size: int, seed: int) -> torch.Tensor:
    """The global batch of ``step``: consecutive slices of a per-epoch permutation seeded by (seed, epoch)."""
    chunks, position, remaining = [], step * batch_size, batch_size
    while remaining:
        epoch, offset = divmod(position, n)
        take = epoch_permutation(n, seed, epoch)[offset : offset + remaining]
        chunks.append(take)
        position += len(take)
        remaining -= len(take)
    return torch.cat(chunks)


@dataclass(frozen=True)
class Augment:
    """Random-resized-crop (+ flip) of the training recipe; ``seed`` makes it a function of the step."""

    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    seed: int = 0


@dataclass(frozen=True)
class LoaderSettings:
    """DataLoader knobs for streamed images (GPU hosts: several workers, pinned memory)."""

    workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int | None = None

    def kwargs(self) -> dict:
        extra = {"num_workers": self.workers, "pin_memory": self.pin_memory}
        if self.workers > 0:
            extra.update(persistent_workers=self.persistent_workers, prefetch_factor=self.prefetch_factor)
        return extra


class InMemoryImages:
    """A uint8 image tensor with labels; batches are sliced and augmented on the whole batch at once."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float]
    ):
        self.images, self.labels, self.mean, self.std = images, labels, mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def eval_batches(self, batch_size: int, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        """Normalised batches in order, on ``device`` (bytes are copied, then normalised there)."""
        for start in range(0, len(self.labels), batch_size):
            yield normalize(queued_to(self.images[start : start + batch_size], device), self.mean, self.std)

    def train_batches(
        self,
        start_step: int,
        batch_size: int,
        augment: Augment,
        rank: int = 0,
        world: int = 1,
        device: torch.device | str = "cpu",
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's share of each step's augmented global batch, from ``start_step`` on, on ``device``.

        The global batch's bytes are copied (without a host sync) and augmented on ``device``; every rank
        draws the whole batch's crops, so a rank's share does not depend on the number of ranks.
        """
        share = batch_size // world
        part = slice(rank * share, (rank + 1) * share)
        step = start_step
        while True:
            indices = global_indices(len(self.labels), step, batch_size, augment.seed)
            images = random_resized_crop_flip(
                normalize(queued_to(self.images[indices], device), self.mean, self.std),
                step_generator(augment.seed + 104729, step),
                augment.crop_scale,
                augment.crop_ratio,
                augment.flip,
            )
            yield images[part], queued_to(self.labels[indices][part], device)
            step += 1

    def sample_batches(self, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Un-augmented random batches (e.g. for TPGM), a function of (seed, step)."""
        size = min(batch_size, len(self.labels))
        step = 0
        while True:
            picks = torch.randperm(len(self.labels), generator=step_generator(seed, step))[:size]
            yield normalize(self.images[picks], self.mean, self.std), self.labels[picks]
            step += 1


def crop_key(seed: int, step: int, index: int) -> int:
    """The seed of image ``index``'s crop at ``step``: a resumed run redraws exactly the same crops."""
    return seed * 1_000_003 + step * 10_007 + index


def crop_params(
    height: int, width: int, augment: Augment, generator: torch.Generator
) -> tuple[int, int, int, int, bool]:
    """(top, left, crop height, crop width, flip) of RandomResizedCrop + horizontal flip.

    torchvision's algorithm and draws in its order (ten tries of area uniform in ``crop_scale`` and
    log-uniform aspect ratio, then a centre crop clamped to ``crop_ratio``; the flip draw last), so
    the crops are those of ``v2.RandomResizedCrop`` + ``v2.RandomHorizontalFlip`` seeded alike.
    """
    area, (low, high) = height * width, augment.crop_ratio
    log_ratio = (math.log(low), math.log(high))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(*augment.crop_scale, generator=generator).item()
        aspect = math.exp(torch.empty(1).uniform_(*log_ratio, generator=generator).item())
        w, h = int(round(math.sqrt(target_area * aspect))), int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=generator).item())
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=generator).item())
            break
    else:
        in_ratio = width / height
        if in_ratio < low:
            w, h = width, int(round(width / low))
        elif in_ratio > high:
            h, w = height, int(round(height * high))
        else:
            w, h = width, height
        top, left = (height - h) // 2, (width - w) // 2
    flip = augment.flip and bool(torch.rand(1, generator=generator).item() < 0.5)
    return top, left, h, w, flip


def draft_factor(crop_height: int, crop_width: int, size: int) -> int:
    """The JPEG DCT reduction (1, 2, 4 or 8) that keeps the crop at least ``size`` pixels on each side."""
    smallest = min(crop_height, crop_width)
    return next((f for f in (8, 4, 2) if smallest >= f * size), 1)


def decoded_box(top: int, left: int, height: int, width: int, scale: float) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) in an image decoded at 1/``scale``: the crop's edges rounded to the
    nearest decoded pixel (at most half a decoded pixel off; exact at ``scale`` 1), never empty.
    """
    y0, x0 = round(top / scale), round(left / scale)
    return y0, x0, max(round((top + height) / scale), y0 + 1), max(round((left + width) / scale), x0 + 1)


def decode_train_crop(path: str, size: int, augment: Augment, key: int, border: int = 0) -> torch.Tensor:
    """uint8 (size, size, 3) (PIL's layout): the image's random resized crop (bicubic) and flip, keyed.

    The crop is drawn on the header's size, then only what it needs is decoded: a JPEG whose crop
    spans at least twice ``size`` is decoded at 1/2, 1/4 or 1/8 scale in the DCT (``Image.draft``);
    any other colour JPEG by torchvision's libjpeg-turbo straight into a tensor (the same pixels as
    PIL's, without its copies). The crop is resampled by torch's uint8 antialiased bicubic (PIL's
    filter, a = -0.5, vectorised on channels-last bytes), so no float image is ever made.
    """
    with open(path, "rb") as file:
        data = bytearray(file.read())
    with Image.open(io.BytesIO(data)) as image:
        full_width, full_height = image.size
        top, left, h, w, flip = crop_params(
            full_height - 2 * border, full_width - 2 * border, augment, torch.Generator().manual_seed(key)
        )
        top, left = top + border, left + border
        factor = draft_factor(h, w, size)
        if factor == 1 and image.format == "JPEG" and image.mode == "RGB" and decode_jpeg is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # see the import of decode_jpeg
                pixels = decode_jpeg(torch.frombuffer(data, dtype=torch.uint8), mode=ImageReadMode.RGB)
            pixels, scale = pixels.permute(1, 2, 0), 1.0  # (H, W, 3) view of the planar decode
        else:
            if factor > 1:
                image.draft("RGB", (full_width // factor, full_height // factor))
            scale = float(round(full_width / image.width)) if factor > 1 else 1.0  # libjpeg rounds up
            if image.mode != "RGB":
                image = image.convert("RGB")
            pixels = torch.from_numpy(np.array(image, dtype=np.uint8))  # (H, W, 3)
    y0, x0, y1, x1 = decoded_box(top, left, h, w, scale)
    region = pixels[y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0)
    region = region.contiguous(memory_format=torch.channels_last)  # the vectorised uint8 kernel's layout
    crop = F.interpolate(region, size=(size, size), mode="bicubic", antialias=True)[0].permute(1, 2, 0)
    return (crop.flip(1) if flip else crop).contiguous()


class _Files(Dataset):
    """Decodes one manifest file per item in a worker: a seeded uint8 training crop for (index, step)
    keys, ``eval_transform``'s uint8 tensor for plain indices.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int],
        size: int,
        augment: Augment | None = None,
        eval_transform=None,
        border: Sequence[int] | None = None,
        sources: Sequence[str] | None = None,
    ):
        self.paths, self.labels, self.size = list(paths), list(labels), size
        self.augment, self.eval_transform = augment, eval_transform
        self.border = list(border) if border is not None else None
        self.sources = list(sources) if sources is not None else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        index, step = key if isinstance(key, tuple) else (key, 0)
        border = self.border[index] if self.border else 0
        where = self.sources[index] if self.sources else None
        if self.augment is not None:
            key = crop_key(self.augment.seed, step, index)
            try:
                crop = decode_train_crop(self.paths[index], self.size, self.augment, key, border)
            except (OSError, ValueError, SyntaxError, RuntimeError, Image.DecompressionBombError) as error:
                raise decode_error(self.paths[index], where, error) from error  # RuntimeError: torchvision's
            return crop, self.labels[index]
        image = read_rgb(self.paths[index], where)
        if border:
            image = image.crop((border, border, image.width - border, image.height - border))
        return self.eval_transform(image), self.labels[index]


class _StepBatches(torch.utils.data.Sampler):
    """Yields, per step, this rank's (index, step) keys of the global batch."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, rank: int, world: int):
        self.n, self.batch_size, self.seed, self.start, self.rank, self.world = (
            n,
            batch_size,
            seed,
            start_step,
            rank,
            world,
        )

    def __iter__(self):
        share = self.batch_size // self.world
        step = self.start
        while True:
            indices = global_indices(self.n, step, self.batch_size, self.seed)[
                self.rank * share : (self.rank + 1) * share
            ]
            yield [(int(i), step) for i in indices]
            step += 1


class StreamedImages:
    """Image files decoded and transformed in DataLoader workers
    (CLIP's train/eval transforms at ``size``).
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int],
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        loader: LoaderSettings = LoaderSettings(),
        border: Sequence[int] | None = None,
        sources: Sequence[str] | None = None,
    ):
        self.paths, self.labels = list(paths), torch.as_tensor(list(labels), dtype=torch.long)
        self.size, self.mean, self.std, self.loader, self.border = size, mean, std, loader, border
        self.sources = sources  # split-file line of each path, for decode errors

    def __len__(self) -> int:
        return len(self.paths)

    def _eval_files(self) -> _Files:
        return _Files(
            self.paths,
            self.labels.tolist(),
            self.size,
            eval_transform=eval_transform(self.size),
            border=self.border,
            sources=self.sources,
        )

    def eval_loader(self, batch_size: int) -> DataLoader:
        """uint8 (images, labels) batches in order, through the eval transform in the workers."""
        return DataLoader(self._eval_files(), batch_size=batch_size, shuffle=False, **self.loader.kwargs())

    def eval_batches(self, batch_size: int, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        """Normalised batches in order, on ``device``: workers ship uint8 (a quarter of float's bytes
        through shared and pinned memory), conversion and normalisation run on ``device``."""
        for images, _ in self.eval_loader(batch_size):
            yield normalize(images.to(device, non_blocking=True), self.mean, self.std)

    def train_batches(
        self,
        start_step: int,
        batch_size: int,
        augment: Augment,
        rank: int = 0,
        world: int = 1,
        device: torch.device | str = "cpu",
    ):
        """Workers ship uint8 crops (a quarter of float's bytes, through pinned memory when set);
        conversion and normalisation run on ``device``.
        """
        sampler = _StepBatches(len(self.paths), batch_size, augment.seed, start_step, rank, world)
        files = _Files(
            self.paths,
            self.labels.tolist(),
            self.size,
            augment=augment,
            border=self.border,
            sources=self.sources,
        )
        for images, labels in DataLoader(files, batch_sampler=sampler, **self.loader.kwargs()):
            yield normalize_pixel_rows(images.to(device, non_blocking=True), self.mean, self.std), labels

    def sample_batches(self, batch_size: int, seed: int):
        sampler = _StepBatches(len(self.paths), min(batch_size, len(self.paths)), seed, 0, 0, 1)
        for images, labels in DataLoader(self._eval_files(), batch_sampler=sampler, **self.loader.kwargs()):
            yield normalize(images, self.mean, self.std), labels


ImageSet = InMemoryImages | StreamedImages  # what every stage that feeds a model reads


def eval_transform(size: int):
    """Resize to size * 256/224 (bicubic), centre-crop ``size``: a uint8 (3, size, size) tensor, which
    ``normalize`` turns into CLIP's input where the batch is used."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.Resize(
                int(round(size * 256 / 224)), interpolation=v2.InterpolationMode.BICUBIC, antialias=True
            ),
            v2.CenterCrop(size),
            v2.PILToTensor(),
        ]
    )


def load_split(
    manifest,
    split: str,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    mode: str = "memory",
    loader: LoaderSettings = LoaderSettings(),
    progress: bool = True,
    domains: Sequence[str] | None = None,
):
    """One image set per domain of ``split``: decoded in memory (``memory``)
    or streamed from files (``stream``).
    """
    rows = manifest[manifest["split"] == split]
    if rows.empty:
        raise ValueError(f"the manifest has no rows in split {split!r}")
    wanted = list(domains) if domains is not None else list(rows["domain"].unique())
    out = {}
    for domain in wanted:
        part = rows[rows["domain"] == domain]
        if part.empty:
            raise ValueError(f"the manifest has no rows for domain {domain!r} in split {split!r}")
        labels = torch.tensor(part["label"].to_numpy(), dtype=torch.long)
        sources = part["source"].tolist() if "source" in part.columns else None
        if mode == "memory":
            out[domain] = InMemoryImages(
                decode_images(
                    part["path"].tolist(),
                    size,
                    progress=progress,
                    desc=f"decode {split}/{domain}",
                    sources=sources,
                ),
                labels,
                mean,
                std,
            )
        elif mode == "stream":
            border = part["border"].tolist() if "border" in part.columns else None
            out[domain] = StreamedImages(
                part["path"].tolist(), labels.tolist(), size, mean, std, loader, border, sources
            )
        else:
            raise ValueError(f"unknown image loading mode {mode!r}; valid: memory, stream")
    return out


def load_split_for(
    manifest, split: str, spec, loader, progress: bool = True, domains: Sequence[str] | None = None
):
    """``load_split`` at a model's input size and normalisation (``spec``, a ``clip.backbone.ModelSpec``)
    with a loader's mode and settings (``loader``, the ``loader`` of a parameter group): what every
    stage that feeds a model calls."""
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    return load_split(
        manifest, split, spec.image_size, mean, std, loader.mode, loader.settings(), progress, domains
    )
