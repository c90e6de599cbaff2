r"""The published setting end to end: every pipeline of ``--env=domainnet`` on a generated DomainNet tree.

Builds a DomainNet-format tree of JPEGs in a temporary folder (``<domain>/<class>/<file>.jpg``, split
files ``<domain>_{train,test}.txt`` with ``relative/path label`` lines, ``classnames.txt``): procedural
images, nothing downloaded. Each class is a shape, a colour and a number of stripes of its own, each
domain a style of its own (``real``: shaded object on a gradient with sensor noise; ``painting``:
brush strokes, posterised; ``clipart``: flat colours, black outline; ``infograph``: the object beside
bars and text lines; ``sketch``: grey pencil strokes and hatching; ``quickdraw``: black lines on
white). Then it runs
``data``, ``pretrain``, ``zeroshot``, ``finetune`` (FT and Lipsum-FT), ``posthoc`` (WiSE grid and
TPGM) and ``evaluate`` of the ``domainnet`` environment in a scratch project in the same temporary
folder (``project_session.project_copy``; the catalog's relative paths land there), one Kedro session
per pipeline, with runtime parameters that point the data root at the tree and set the model, steps,
batch, precision and devices for ``--device``.

It writes a JSON: ``device``; ``stages`` (seconds per pipeline); ``host_peak_gib`` (this process's
peak resident memory after each pipeline, so far: every session runs in it; loader workers not
counted); ``train`` (per method: images/s of the steps after the first logged block, read from
``finetune_log`` as ``gpu_step.py`` reads the loop's log, the fraction of the bf16 peak that is, and
the run's peak GPU memory, which the loop records in each fine-tuned model's metadata);
``disk_bytes`` (every file the run wrote under the scratch project, by folder); ``scored`` (every
variant scored on every domain with finite metrics, read from the ``evaluation_results`` table). It
exits 1 when that check fails.

With ``--compiled`` (the default on cuda) it then runs ``finetune`` once more with
``finetune.compile: true`` and adds ``ft_compiled`` and ``lipsum_compiled`` to ``train``, their
speed-up over eager, and how far each compiled loss curve is from the eager one (``curve``).

The JSON is rewritten after the tree, after every pipeline and after each set of figures, with
``"complete": false`` until the end (``partial_run.JsonReport``): a run killed at a time limit keeps
what it measured. ``--budget-s`` skips the compiled re-run, and says so, when it would not fit (an
estimate: the eager ``finetune`` seconds times ``--compile-cost``).

    .venv/bin/python benchmarks/gpu_chain.py --output gpu_chain.json        # on a GPU host: ViT-B/16,
        # random init, 40 classes x 6 domains of 300-500 px JPEGs, 300 steps at batch 256, bf16-mixed
    .venv/bin/python benchmarks/gpu_chain.py --pretrained /models/vit_b_16_openai.pt --output gpu_chain.json
    .venv/bin/python benchmarks/gpu_chain.py --device cpu --output /tmp/gpu_chain_cpu.json   # tiny, ~30 s
"""

from __future__ import annotations

import argparse
import colorsys
import logging
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))  # this checkout's code, installed or not
from lipsum_ft.posthoc.variant_names import variant_names  # noqa: E402
from partial_run import Budget, JsonReport  # noqa: E402
from project_session import project_copy, project_session  # noqa: E402  (sets the telemetry variables)

ROOT = Path(__file__).resolve().parents[1]
ENV = "domainnet"
PIPELINES = ("data", "pretrain", "zeroshot", "finetune", "posthoc", "evaluate")
DOMAINS = ("real", "painting", "clipart", "infograph", "sketch", "quickdraw")  # conf/domainnet's order
SHAPES = ("circle", "square", "triangle", "diamond", "star", "hexagon", "cross", "ring")
HUES = (  # (name, hue in [0, 1)) of the class colours; more hues than names get a number
    ("red", 0.0),
    ("orange", 0.08),
    ("yellow", 0.15),
    ("lime", 0.25),
    ("green", 0.33),
    ("teal", 0.45),
    ("cyan", 0.5),
    ("azure", 0.58),
    ("blue", 0.66),
    ("violet", 0.75),
    ("magenta", 0.83),
    ("pink", 0.92),
)
METRICS = ("acc", "nll", "ece", "energy_gap", "feature_distortion")


# ---------------------------------------------------------------------------------------------------------
# The image tree


@dataclass(frozen=True)
class TreeSpec:
    """What the generated DomainNet tree holds: ``classes`` x ``domains``, ``train`` + ``test`` images per
    (domain, class), each ``size`` px on a side at most and ``min_size`` at least, from ``seed``."""

    classes: int
    train: int
    test: int
    min_size: int
    size: int
    seed: int = 0
    domains: tuple[str, ...] = DOMAINS
    quality: int = 90


@dataclass(frozen=True)
class Design:
    """What makes a class: a shape, a hue and a number of stripes across the shape. (shape, hue) and
    (shape, stripes) each tell every class apart, so a class is recognisable with colour (``real``,
    ``clipart``, ...) and without it (``quickdraw``)."""

    shape: str
    hue: float
    hue_index: int
    stripes: int


def hue_count(count: int) -> int:
    """Hues of ``count`` classes: odd, so that (label mod 8, label mod hues) differ for every label below
    8 x hues (Chinese remainder theorem), and at least 3."""
    hues = max(3, math.ceil(count / len(SHAPES)))
    return hues if hues % 2 else hues + 1


def class_design(label: int, count: int) -> Design:
    """Class ``label`` of ``count``: the shape cycles fastest, the hue over ``hue_count`` evenly spaced
    hues, the stripes count up every 8 classes."""
    hues = hue_count(count)
    return Design(
        shape=SHAPES[label % len(SHAPES)],
        hue=(label % hues) / hues,
        hue_index=label % hues,
        stripes=label // len(SHAPES),
    )


def class_names(count: int) -> list[str]:
    """``count`` class names ``<colour>_<shape>`` (the colour word nearest the class's hue), unique."""
    names = []
    for label in range(count):
        design = class_design(label, count)
        word, _ = min(HUES, key=lambda item: min(abs(item[1] - design.hue), 1 - abs(item[1] - design.hue)))
        names.append(f"{word}_{design.shape}")
    if len(set(names)) < count:  # two hues nearest the same colour word: number the hues instead
        names = [
            f"hue{class_design(label, count).hue_index:02d}_{SHAPES[label % len(SHAPES)]}"
            for label in range(count)
        ]
    return names


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(
        hue % 1.0, min(max(saturation, 0.0), 1.0), min(max(value, 0.0), 1.0)
    )
    return round(255 * red), round(255 * green), round(255 * blue)


def shape_outline(shape: str, centre: tuple[float, float], radius: float, angle: float) -> list[list[tuple]]:
    """The shape's outline as closed polygons (a ring is two circles), rotated by ``angle``."""

    def polygon(radii: Sequence[float], offset: float = 0.0) -> list[tuple[float, float]]:
        count = len(radii)
        return [
            (
                centre[0] + r * math.cos(angle + offset + 2 * math.pi * k / count),
                centre[1] + r * math.sin(angle + offset + 2 * math.pi * k / count),
            )
            for k, r in enumerate(radii)
        ]

    if shape == "circle":
        return [polygon([radius] * 48)]
    if shape == "ring":
        return [polygon([radius] * 48), polygon([0.55 * radius] * 48)]
    if shape == "square":
        return [polygon([radius] * 4, math.pi / 4)]
    if shape == "triangle":
        return [polygon([radius] * 3, -math.pi / 2)]
    if shape == "diamond":
        return [polygon([radius, 0.6 * radius] * 2)]
    if shape == "star":
        return [polygon([radius, 0.45 * radius] * 5, -math.pi / 2)]
    if shape == "hexagon":
        return [polygon([radius] * 6)]
    if shape == "cross":
        arm = 0.35 * radius
        points = [
            (arm, radius),
            (arm, arm),
            (radius, arm),
            (radius, -arm),
            (arm, -arm),
            (arm, -radius),
            (-arm, -radius),
            (-arm, -arm),
            (-radius, -arm),
            (-radius, arm),
            (-arm, arm),
            (-arm, radius),
        ]
        cos, sin = math.cos(angle), math.sin(angle)
        return [[(centre[0] + x * cos - y * sin, centre[1] + x * sin + y * cos) for x, y in points]]
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def _smooth_field(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], height x width: a coarse random grid upsampled bicubically."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    field = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(field, dtype=np.float32) / 255.0


def _gradient(rng: np.random.Generator, width: int, height: int, top, bottom) -> np.ndarray:
    """A linear gradient between two colours along a random direction, plus low-frequency mottling."""
    theta = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs / width - 0.5) * math.cos(theta) + (ys / height - 0.5) * math.sin(theta) + 0.5
    t = np.clip(t + 0.25 * (_smooth_field(rng, width, height, 5) - 0.5), 0, 1)[..., None]
    return (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)


def _jitter(points: list[tuple], rng: np.random.Generator, amount: float) -> list[tuple]:
    return [(x + rng.normal(0, amount), y + rng.normal(0, amount)) for x, y in points]


def _draw_filled(draw: ImageDraw.ImageDraw, polygons: list[list[tuple]], fill, background) -> None:
    """The shape filled; a ring's inner circle cut out in ``background``."""
    draw.polygon(polygons[0], fill=fill)
    for hole in polygons[1:]:
        draw.polygon(hole, fill=background)


def _outline(draw: ImageDraw.ImageDraw, polygons: list[list[tuple]], fill, width: int) -> None:
    for points in polygons:
        draw.line([*points, points[0]], fill=fill, width=width, joint="curve")


def _stripes(
    image: Image.Image, polygons: list[list[tuple]], count: int, colour, width: int, angle: float
) -> Image.Image:
    """``count`` evenly spaced parallel lines across the shape, clipped to it (a ring's hole too)."""
    if not count:
        return image
    inside = Image.new("L", image.size, 0)
    _draw_filled(ImageDraw.Draw(inside), polygons, 255, 0)
    xs, ys = zip(*polygons[0], strict=True)
    centre = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    reach = max(max(xs) - min(xs), max(ys) - min(ys))
    along, across = (math.cos(angle), math.sin(angle)), (-math.sin(angle), math.cos(angle))
    lines = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(lines)
    for k in range(count):
        offset = reach / 2 * (2 * (k + 1) / (count + 1) - 1)
        middle = (centre[0] + offset * across[0], centre[1] + offset * across[1])
        draw.line(
            [
                (middle[0] - reach * along[0], middle[1] - reach * along[1]),
                (middle[0] + reach * along[0], middle[1] + reach * along[1]),
            ],
            fill=255,
            width=width,
        )
    mask = Image.fromarray(np.minimum(np.asarray(inside), np.asarray(lines)))
    return Image.composite(Image.new("RGB", image.size, colour), image, mask)


def render_image(spec: TreeSpec, domain: int, label: int, index: int) -> Image.Image:
    """One image of class ``label`` in domain ``domain``: a function of (seed, domain, label, index)."""
    rng = np.random.default_rng([spec.seed, domain, label, index])
    width, height = (int(v) for v in rng.integers(spec.min_size, spec.size + 1, size=2))
    design = class_design(label, spec.classes)
    shape, stripes = design.shape, design.stripes
    hue = design.hue + rng.normal(0, 0.012)
    side = min(width, height)
    radius = side * rng.uniform(0.22, 0.36)
    centre = (
        width / 2 + rng.uniform(-0.12, 0.12) * width,
        height / 2 + rng.uniform(-0.12, 0.12) * height,
    )
    angle = rng.uniform(0, 2 * math.pi) if shape not in ("triangle", "star") else rng.normal(0, 0.25)
    colour = _rgb(hue, rng.uniform(0.65, 0.95), rng.uniform(0.7, 0.95))
    style = spec.domains[domain]
    line = max(1, round(side / 100))
    if style in ("real", "painting"):
        hue_bg = rng.uniform(0, 1)
        base = _gradient(
            rng,
            width,
            height,
            _rgb(hue_bg, rng.uniform(0.05, 0.3), rng.uniform(0.5, 0.9)),
            _rgb(hue_bg + rng.normal(0, 0.1), rng.uniform(0.05, 0.3), rng.uniform(0.2, 0.6)),
        )
        image = Image.fromarray(base.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        if style == "painting":  # brush strokes over the ground
            for _ in range(int(rng.integers(15, 30))):
                start = (rng.uniform(0, width), rng.uniform(0, height))
                end = (start[0] + rng.normal(0, side / 4), start[1] + rng.normal(0, side / 8))
                tone = _rgb(hue_bg + rng.normal(0, 0.15), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.9))
                draw.line([start, end], fill=tone, width=int(rng.integers(3, 10)) * line)
        shadow = Image.new("L", image.size, 0)
        offset = side * 0.04
        _draw_filled(
            ImageDraw.Draw(shadow),
            shape_outline(shape, (centre[0] + offset, centre[1] + offset), radius, angle),
            150,
            0,
        )
        shadow = shadow.filter(ImageFilter.GaussianBlur(side / 40))
        image = Image.composite(Image.new("RGB", image.size, (20, 20, 20)), image, shadow)
        draw = ImageDraw.Draw(image)
        for step in range(6):  # shading: lighter towards a highlight
            scale = 1 - 0.12 * step
            shift = (1 - scale) * radius * 0.5
            tone = _rgb(hue, 0.9 - 0.1 * step, 0.55 + 0.08 * step)
            _draw_filled(
                draw,
                shape_outline(shape, (centre[0] - shift, centre[1] - shift), radius * scale, angle),
                tone,
                None,  # a ring's hole is cut out below
            )
        if shape == "ring":  # the hole shows the ground
            hole = Image.new("L", image.size, 0)
            ImageDraw.Draw(hole).polygon(shape_outline(shape, centre, radius, angle)[1], fill=255)
            image = Image.composite(Image.fromarray(base.astype(np.uint8)), image, hole)
        polygons = shape_outline(shape, centre, radius, angle)
        image = _stripes(image, polygons, stripes, _rgb(hue, 0.9, 0.3), max(2, side // 40), angle)
        pixels = np.asarray(image, dtype=np.float32)
        if style == "painting":
            image = Image.fromarray(pixels.astype(np.uint8)).filter(ImageFilter.ModeFilter(5))
            image = ImageOps.posterize(image, 4).filter(ImageFilter.SMOOTH_MORE)
        else:
            lighting = 0.8 + 0.4 * _smooth_field(rng, width, height, 3)[..., None]
            pixels = pixels * lighting + rng.normal(0, 6, pixels.shape)  # uneven light, sensor noise
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            image = image.filter(ImageFilter.GaussianBlur(side / 400))
        return image
    if style == "clipart":
        background = _rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.15), rng.uniform(0.9, 1.0))
        image = Image.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(image)
        polygons = shape_outline(shape, centre, radius, angle)
        shadow = shape_outline(shape, (centre[0] + side * 0.03, centre[1] + side * 0.03), radius, angle)
        _draw_filled(draw, shadow, (160, 160, 160), background)
        _draw_filled(draw, polygons, colour, background)
        image = _stripes(image, polygons, stripes, (0, 0, 0), 2 * line, angle)
        _outline(ImageDraw.Draw(image), polygons, (0, 0, 0), 3 * line)
        return image
    if style == "infograph":
        image = Image.new("RGB", (width, height), (250, 250, 248))
        draw = ImageDraw.Draw(image)
        small = radius * 0.6
        corner = (rng.uniform(small + 4, width / 2), rng.uniform(small + 4, height / 2))
        emblem = shape_outline(shape, corner, small, angle)
        _draw_filled(draw, emblem, colour, (250, 250, 248))
        bars = int(rng.integers(3, 7))
        left, bottom = width * 0.55, height * 0.9
        for k in range(bars):  # a bar chart in the class colour's shades
            top = bottom - rng.uniform(0.1, 0.45) * height
            x0 = left + k * (width * 0.4 / bars)
            tone = _rgb(hue, 0.4 + 0.5 * k / bars, 0.9)
            draw.rectangle([x0, top, x0 + width * 0.3 / bars, bottom], fill=tone)
        for k in range(int(rng.integers(4, 9))):  # lines of "text"
            y = height * 0.6 + k * height * 0.045
            draw.rectangle(
                [width * 0.05, y, width * rng.uniform(0.2, 0.5), y + max(2, height * 0.015)],
                fill=(90, 90, 90),
            )
        return _stripes(image, emblem, stripes, _rgb(hue, 0.9, 0.3), max(2, line), angle)
    # sketch and quickdraw: lines only
    paper = 245 + rng.normal(0, 4, (height, width)) if style == "sketch" else np.full((height, width), 255.0)
    image = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(image)
    polygons = shape_outline(shape, centre, radius, angle)
    if style == "quickdraw":
        _outline(draw, [_jitter(p, rng, side / 120) for p in polygons], (0, 0, 0), 2 * line)
        return _stripes(image, polygons, stripes, (0, 0, 0), 2 * line, angle)
    tint = _rgb(hue, 0.25, 0.35)  # a trace of the class colour in the pencil
    for _ in range(3):
        _outline(draw, [_jitter(p, rng, side / 150) for p in polygons], tint, line)
    mask = Image.new("L", image.size, 0)
    _draw_filled(ImageDraw.Draw(mask), polygons, 255, 0)
    hatching = Image.new("L", image.size, 0)
    hatch = ImageDraw.Draw(hatching)
    spacing = max(3, side // 40)
    for k in range(-height, width, spacing):  # diagonal hatching inside the shape
        hatch.line([(k, 0), (k + height, height)], fill=255, width=1)
    image = Image.composite(
        Image.new("RGB", image.size, (120, 120, 120)),
        image,
        Image.fromarray(np.minimum(np.asarray(mask), np.asarray(hatching))),
    )
    return _stripes(image, polygons, stripes, tint, 2 * line, angle).filter(ImageFilter.SMOOTH)


def _write_class(job: tuple[TreeSpec, Path, int, int, str]) -> list[tuple[str, str, int]]:
    """Every image of one (domain, class): their (split, relative path, label)."""
    spec, root, domain, label, name = job
    style = spec.domains[domain]
    folder = root / style / name
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(spec.train + spec.test):
        relative = f"{style}/{name}/{style}_{label:03d}_{index:06d}.jpg"
        render_image(spec, domain, label, index).save(root / relative, quality=spec.quality)
        rows.append(("train" if index < spec.train else "test", relative, label))
    return rows


def build_tree(root: Path, spec: TreeSpec, workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Write the tree under ``root`` in DomainNet's layout; labels are the sorted class folders' order
    (as ``data.layout.classnames_from: folders`` reads them). Returns its description."""
    names = class_names(spec.classes)
    order = sorted(range(spec.classes), key=lambda index: names[index])
    jobs = [
        (spec, root, domain, index, names[index])
        for domain in range(len(spec.domains))
        for index in range(spec.classes)
    ]
    root.mkdir(parents=True, exist_ok=True)
    label_of = {index: order.index(index) for index in range(spec.classes)}
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as pool:
        rows = list(
            tqdm(
                pool.map(_write_class, jobs),
                total=len(jobs),
                desc="render tree",
                unit="class",
                disable=not progress,
                leave=False,
            )
        )
    lines: dict[tuple[str, str], list[str]] = {}
    for (_, _, domain, _, _), written in zip(jobs, rows, strict=True):
        for split, relative, index in written:
            lines.setdefault((spec.domains[domain], split), []).append(f"{relative} {label_of[index]}")
    for (domain, split), rows_of in lines.items():
        (root / f"{domain}_{split}.txt").write_text("\n".join(rows_of) + "\n", encoding="utf-8")
    (root / "classnames.txt").write_text("\n".join(sorted(names)) + "\n", encoding="utf-8")
    files = list(root.rglob("*.jpg"))
    return {
        **asdict(spec),
        "domains": list(spec.domains),
        "images": len(files),
        "bytes": sum(path.stat().st_size for path in files),
    }


class _Serial:
    """``map`` in this process, as a context manager like ``ProcessPoolExecutor``."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def map(function, items):
        return map(function, items)


# ---------------------------------------------------------------------------------------------------------
# The chain


@dataclass(frozen=True)
class Size:
    """The run's size for a device: the tree, the model and the recipe."""

    tree: TreeSpec
    model: str
    steps: int
    batch: int
    precision: str
    accelerator: str
    loader: dict[str, Any] | None  # None: the environment's loader (conf/domainnet)
    carve_fraction: float  # of real/train into val: at least one image per class
    wise_alphas: list[float] | None  # None: the environment's grid (conf/base's eleven)
    tpgm: dict[str, int] | None  # None: the environment's (200 steps at batch 64)
    lipsum_texts: int | None  # None: the environment's M (80)
    eval_batch: int | None  # zeroshot / finetune-val / evaluate batch; None: the environment's
    log_every: int


SIZES = {
    # The published recipe at a tenth of its steps on a 40-class tree; the env's loader (8 workers).
    "cuda": Size(
        tree=TreeSpec(classes=40, train=40, test=10, min_size=300, size=500),
        model="ViT-B-16",
        steps=300,
        batch=256,
        precision="bf16-mixed",
        accelerator="gpu",
        loader=None,
        carve_fraction=0.05,  # two of 40 real/train images per class
        wise_alphas=None,
        tpgm=None,
        lipsum_texts=None,
        eval_batch=None,
        log_every=10,
    ),
    # The same chain at tiny size: seconds per stage on a laptop core.
    "cpu": Size(
        tree=TreeSpec(classes=4, train=4, test=2, min_size=40, size=64),
        model="TinyCLIP-ViT-P8-32",
        steps=6,
        batch=8,
        precision="32-true",
        accelerator="cpu",
        loader={
            "mode": "stream",
            "workers": 1,
            "pin_memory": False,
            "persistent_workers": False,
            "prefetch_factor": 2,
        },
        carve_fraction=0.25,
        wise_alphas=[0.0, 0.5, 1.0],
        tpgm={"steps": 2, "batch_size": 4},
        lipsum_texts=16,
        eval_batch=16,
        log_every=2,
    ),
}


def runtime_params(size: Size, root: Path, pretrained: str | None, device: str) -> dict[str, Any]:
    """The runtime parameters of every session: data root, model, recipe and devices, bars off (the
    benchmark has one bar). Evaluation and checkpointing run halfway too, so both are exercised."""
    quiet = {"progress": False}
    loader = {"loader": size.loader} if size.loader is not None else {}
    batch = {"batch_size": size.eval_batch} if size.eval_batch is not None else {}
    half = max(1, size.steps // 2)
    finetune: dict[str, Any] = {
        **quiet,
        **loader,
        "methods": ["ft", "lipsum"],
        "method": None,
        "steps": size.steps,
        "batch_size": size.batch,
        "precision": size.precision,
        "accelerator": size.accelerator,
        "devices": 1,
        "num_nodes": 1,
        "eval_every": half,
        "checkpoint_every": half,
        "log_every": size.log_every,
        "resume": False,
    }
    if size.eval_batch is not None:
        finetune["eval_batch_size"] = size.eval_batch
    if size.lipsum_texts is not None:
        finetune["lipsum"] = {"num_texts": size.lipsum_texts}
    posthoc: dict[str, Any] = {**quiet, **loader, "device": device}
    if size.wise_alphas is not None:
        posthoc["wise"] = {"alphas": size.wise_alphas}
    if size.tpgm is not None:
        posthoc["tpgm"] = size.tpgm
    return {
        "data": {
            "source": "folders",
            "layout": {"root": str(root), "domains": list(size.tree.domains)},
            "carve_validation": {"fraction": size.carve_fraction},
        },
        "pretrain": {**quiet, "source": "open_clip", "model": size.model, "pretrained": pretrained},
        "zeroshot": {**quiet, **loader, **batch, "device": device},
        "finetune": finetune,
        "posthoc": posthoc,
        "evaluate": {**quiet, **loader, **batch, "device": device},
    }


def run_chain(
    project: Path,
    params: dict[str, Any],
    on_gpu: bool,
    pipelines: Sequence[str],
    on_stage: Callable[[dict[str, float]], None] = lambda stages: None,
) -> dict[str, float]:
    """Each pipeline in its own session, in order: seconds per pipeline, also passed to ``on_stage``
    after each one (the seconds so far)."""
    import torch

    stages: dict[str, float] = {}
    bar = tqdm(pipelines, desc="gpu chain", unit="stage")
    for name in bar:
        bar.set_postfix(stage=name)
        if on_gpu:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with project_session(project, ENV, params) as session:
            session.run(pipeline_names=[name])
        if on_gpu:
            torch.cuda.synchronize()
        stages[name] = time.perf_counter() - started
        on_stage(dict(stages))
    bar.close()
    return stages


def peak_memory_of(models: Path) -> dict[str, float | None]:
    """Each fine-tuned model's peak GPU memory, from its folder's config JSON alone (the metadata
    ``finetune_one`` writes): the weights, 600 MB a ViT-B/16, are not read."""
    from lipsum_ft.clip.backbone import CONFIG_FILE, read_spec

    return {
        folder.name: read_spec(folder).extra["finetune"].get("peak_memory_gib")
        for folder in sorted(models.iterdir())
        if (folder / CONFIG_FILE).is_file()
    }


def run_outputs(project: Path, params: dict[str, Any]) -> dict[str, Any]:
    """What the figures read from a finished run: the resolved parameters, the fine-tuning log, each
    fine-tuned model's peak GPU memory (its metadata), the evaluation table and the domains."""
    with project_session(project, ENV, params) as session:
        context = session.load_context()
        catalog = context.catalog
        models = project / context.config_loader["catalog"]["finetuned_clip"]["filepath"]
        return {
            "params": context.params,
            "log": catalog.load("finetune_log"),
            "memory": peak_memory_of(models),
            "results": catalog.load("evaluation_results"),
            "domains": sorted(set(catalog.load("manifest")["domain"])),
        }


def step_seconds(log: Any, method: str, batch: int, first_block: int) -> tuple[float, int, bool]:
    """Mean seconds per step of ``method``'s run from its log (``images_per_s`` of a row is its block's,
    timed up to the block's read from the device), the first block (warm-up) left out as in
    ``gpu_step.py``; (seconds, steps timed, whether the warm-up had to stay in: too few steps)."""
    rows = log[log["method"] == method].sort_values("step")
    timed = rows[rows["step"] > first_block]
    warmup_included = timed.empty
    timed = rows if warmup_included else timed
    return statistics.mean(batch / float(v) for v in timed["images_per_s"]), len(timed), warmup_included


def train_figures(
    log: Any,
    finetune: Mapping[str, Any],
    model: str,
    memory: Mapping[str, float | None],
    on_gpu: bool,
    peak_tflops: float,
) -> dict[str, Any]:
    """images/s, fraction of the bf16 peak and peak memory of FT and Lipsum-FT, and their time ratio."""
    from gpu_step import step_flops
    from lipsum_ft.clip.backbone import model_config

    batch = int(finetune["batch_size"])
    blocks = [finetune["log_every"], finetune["eval_every"], finetune["steps"]]
    first_block = min([*blocks, finetune["checkpoint_every"] or finetune["steps"]])
    lipsum = finetune.get("lipsum") or {}
    flops = step_flops(
        model_config(model), batch, int(lipsum.get("num_texts", 80)), int(lipsum.get("length", 8))
    )
    out: dict[str, Any] = {}
    for method in ("ft", "lipsum"):
        seconds, timed, warm = step_seconds(log, method, batch, first_block)
        out[method] = {
            "images_per_s": batch / seconds,
            "step_ms": 1000 * seconds,
            "steps_timed": timed,
            "warmup_included": warm,
            "tflops_per_step": flops[method] / 1e12,
            "fraction_of_peak": flops[method] / seconds / (peak_tflops * 1e12) if on_gpu else None,
            "peak_memory_gib": memory.get(method),
        }
    out["lipsum_over_ft_time"] = out["lipsum"]["step_ms"] / out["ft"]["step_ms"]
    out["flops_lipsum_over_ft"] = flops["lipsum"] / flops["ft"]
    out["peak_tflops"] = peak_tflops if on_gpu else None
    out["runs_measured"] = sorted(memory)  # the fine-tuned models whose metadata was read
    if not on_gpu:
        out["why_null"] = (
            "fraction_of_peak is against a GPU's dense bf16 peak (--peak-tflops) and peak_memory_gib is "
            "torch.cuda's allocator peak: neither exists for a CPU run"
        )
    return out


def scored(results: Any, variants: Sequence[str], domains: Sequence[str]) -> dict[str, Any]:
    """Whether every variant has one row per domain with every metric finite; what is missing if not."""
    missing, non_finite = [], []
    for variant in variants:
        for domain in domains:
            rows = results[(results["variant"] == variant) & (results["domain"] == domain)]
            if rows.empty:
                missing.append(f"{variant}/{domain}")
                continue
            for metric in METRICS:
                values = rows[metric].astype(float).to_numpy() if metric in rows else np.array([np.nan])
                if not np.isfinite(values).all():
                    non_finite.append(f"{variant}/{domain}/{metric}")
    return {
        "ok": not missing and not non_finite,
        "variants": list(variants),
        "domains": list(domains),
        "metrics": list(METRICS),
        "rows": len(results),
        "missing": missing,
        "non_finite": non_finite,
    }


def compiled_figures(
    eager: Mapping[str, Any], compiled: Mapping[str, Any], curves: Mapping[str, Any]
) -> dict:
    """``ft_compiled`` and ``lipsum_compiled`` (the compiled run's ``train_figures``), each compiled
    method's speed-up over eager and the distance between the two loss curves, and Lipsum-FT's
    time ratio when both are compiled."""
    out: dict[str, Any] = {}
    for method in ("ft", "lipsum"):
        out[f"{method}_compiled"] = {
            **compiled[method],
            "speedup_over_eager": eager[method]["step_ms"] / compiled[method]["step_ms"],
            "curve": curves[method],
        }
    out["lipsum_over_ft_time_compiled"] = compiled["lipsum_over_ft_time"]
    return out


def loss_curves(eager_log: Any, compiled_log: Any, steps: int) -> dict[str, Any]:
    """Per method, ``gpu_step.curve_difference`` of the eager and the compiled run's losses."""
    from gpu_step import curve_difference

    def losses(log: Any, method: str) -> list[float]:
        return [float(v) for v in log[log["method"] == method].sort_values("step")["loss"]]

    return {
        m: curve_difference(losses(eager_log, m), losses(compiled_log, m), steps) for m in ("ft", "lipsum")
    }


def disk_bytes(project: Path) -> dict[str, int]:
    """Bytes of every file the run wrote under the scratch project (not its copied conf and
    pyproject), in total and by folder, at most five levels down (``envs/domainnet/data/06_models/wise``)."""
    by_folder: dict[str, int] = {}
    for path in project.rglob("*"):
        relative = path.relative_to(project)
        if not path.is_file() or relative.parts[0] in ("conf", "src") or len(relative.parts) == 1:
            continue
        key = "/".join(relative.parts[: min(5, len(relative.parts) - 1)])
        by_folder[key] = by_folder.get(key, 0) + path.stat().st_size
    return {"total": sum(by_folder.values()), **dict(sorted(by_folder.items()))}


def measure(args: argparse.Namespace, workdir: Path, report: JsonReport, budget: Budget) -> None:
    """Build the tree, run the chain in a scratch project under ``workdir``, read its outputs; each
    phase's figures go to ``report`` as soon as they exist."""
    import torch

    on_gpu = args.device == "cuda"
    if on_gpu and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device (use --device cpu for the tiny chain)")
    base = SIZES[args.device]
    tree = TreeSpec(
        **{**asdict(base.tree), "classes": args.classes or base.tree.classes, "domains": base.tree.domains}
    )
    size = Size(
        **{
            **{f: getattr(base, f) for f in base.__dataclass_fields__},
            "tree": tree,
            "model": args.model or base.model,
            "steps": args.steps or base.steps,
            "batch": args.batch or base.batch,
        }
    )
    report.update(
        device=args.device,
        gpu=torch.cuda.get_device_name() if on_gpu else None,
        torch=torch.__version__,
        model=size.model,
        pretrained=args.pretrained,
    )
    started = time.perf_counter()
    described = build_tree(workdir / "domainnet", tree, args.tree_workers, progress=True)
    report.update(tree={**described, "seconds": time.perf_counter() - started})
    project = project_copy(workdir / "project", ROOT)
    params = runtime_params(size, workdir / "domainnet", args.pretrained, args.device)
    host: dict[str, float] = {}

    def after_stage(so_far: dict[str, float]) -> None:
        host[list(so_far)[-1]] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        report.update(stages=so_far, host_peak_gib=dict(host))

    stages = run_chain(project, params, on_gpu, PIPELINES, after_stage)
    run = run_outputs(project, params)
    resolved = run["params"]
    methods = list(resolved["finetune"]["methods"])
    names = variant_names(methods, resolved["posthoc"]["wise"]["alphas"])
    check = scored(run["results"], names, run["domains"])
    train = train_figures(
        run["log"], resolved["finetune"], size.model, run["memory"], on_gpu, args.peak_tflops
    )
    report.update(
        settings={
            "steps": size.steps,
            "batch": size.batch,
            "precision": size.precision,
            "loader": resolved["finetune"]["loader"],
            "wise_alphas": resolved["posthoc"]["wise"]["alphas"],
            "tpgm": {k: resolved["posthoc"]["tpgm"][k] for k in ("steps", "batch_size")},
            "lipsum_texts": resolved["finetune"]["lipsum"]["num_texts"],
            "eval_and_checkpoint_every": resolved["finetune"]["eval_every"],
        },
        train=train,
        disk_bytes=disk_bytes(project),  # before the compiled run, which rewrites the same files
        scored=check,
    )
    compiled: dict[str, Any] | str = "not run (--no-compiled; the default off cuda)"
    skipped = budget.skip_reason("the compiled fine-tuning", args.compile_cost * stages["finetune"])
    if args.compiled and skipped:
        compiled = skipped
    elif args.compiled:
        with_compile = {**params, "finetune": {**params["finetune"], "compile": True}}
        seconds = run_chain(project, with_compile, on_gpu, ["finetune"])["finetune"]
        again = run_outputs(project, with_compile)
        figures = train_figures(
            again["log"], resolved["finetune"], size.model, again["memory"], on_gpu, args.peak_tflops
        )
        curves = loss_curves(run["log"], again["log"], args.curve_steps)
        train.update(compiled_figures(train, figures, curves))
        compiled = {"finetune_seconds": seconds, "curve_steps": args.curve_steps}
    report.update(train=train, compiled=compiled)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--output", type=Path, required=True, help="the JSON (rewritten atomically after every phase)"
    )
    parser.add_argument("--steps", type=int, help="fine-tuning steps per method (cuda 300, cpu 6)")
    parser.add_argument("--model", help="open_clip model (cuda ViT-B-16, cpu TinyCLIP-ViT-P8-32)")
    parser.add_argument("--pretrained", help="local open_clip weights file; default: random init")
    parser.add_argument("--batch", type=int, help="global batch (cuda 256, cpu 8)")
    parser.add_argument("--classes", type=int, help="classes of the tree (cuda 40, cpu 4)")
    parser.add_argument("--tree-workers", type=int, default=os.cpu_count() or 1, help="processes that render")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="H100/H200 SXM dense bf16 peak")
    parser.add_argument(
        "--compiled",
        action=argparse.BooleanOptionalAction,
        help="also fine-tune with finetune.compile and compare (default: on cuda only)",
    )
    parser.add_argument("--curve-steps", type=int, default=50, help="steps of the eager/compiled curve check")
    parser.add_argument(
        "--budget-s",
        type=float,
        help="seconds the whole run may take: the compiled re-run is skipped when it would not fit",
    )
    parser.add_argument(
        "--compile-cost",
        type=float,
        default=1.5,
        help="the compiled fine-tuning's seconds over the eager one's, compiling included (for --budget-s)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="tree and scratch project here (kept); default: a temporary folder"
    )
    args = parser.parse_args(argv)
    budget = Budget(args.budget_s)
    if args.compiled is None:
        args.compiled = args.device == "cuda"
    if args.pretrained and not Path(args.pretrained).is_file():
        parser.error(
            f"--pretrained {args.pretrained} is not a file (a local weights file; nothing is downloaded)"
        )
    logging.disable(logging.INFO)  # Kedro's node logs would bury the bar; warnings still show
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="gpu-chain-"))).resolve()
    report = JsonReport(args.output, digits=4)
    try:
        with report.recording():  # a failed stage, a preempted run, a SIGTERM: named in the JSON
            measure(args, workdir, report, budget)
    finally:
        logging.disable(logging.NOTSET)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report.finish())
    check = report.figures["scored"]
    if not check["ok"]:
        print(f"not every variant was scored on every domain with finite metrics: {check}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
