"""Writes the DomainNet-style tree on disk atomically (stamp, safety check, swap) and builds previews."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lipsum_ft.atomic import recover, swap_in
from lipsum_ft.digit_domains.config import (
    CLASS_NAMES,
    CLASSNAMES_FILE,
    DOMAINS,
    FORMAT_VERSION,
    STAMP_FILE,
    DigitDomainsConfig,
)
from lipsum_ft.digit_domains.render import image_rng, render_image
from lipsum_ft.digit_domains.splits import assign_splits, select_digits, source_digits


def _image_relpath(domain: str, label: int, digit_index: int) -> str:
    """DomainNet-style relative path: ``<domain>/<class>/<domain>_<index>.png``."""
    return f"{domain}/{CLASS_NAMES[label]}/{domain}_{digit_index:04d}.png"


def _iter_jobs(config: DigitDomainsConfig, indices: np.ndarray) -> Iterator[tuple[str, int]]:
    """All (domain, source index) pairs to render, domain-major for tidy progress."""
    for domain in config.domains:
        for index in indices:
            yield domain, int(index)


def _stamp_matches(config: DigitDomainsConfig) -> bool:
    """True when the tree on disk was made from this exact config and format version."""
    stamp_path = config.root / STAMP_FILE
    if not stamp_path.is_file():
        return False
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if stamp.get("format_version") != FORMAT_VERSION or stamp.get("config") != config.to_stamp():
        return False
    return all(
        (config.root / f"{d}_{s}.txt").is_file() for d in config.domains for s in config.split_fractions
    )


def _summary(config: DigitDomainsConfig, num_images: int, regenerated: bool) -> dict:
    """The return value of :func:`write_digit_domains`."""
    return {
        "root": str(config.root),
        "domains": list(config.domains),
        "splits": list(config.split_fractions),
        "classnames": list(CLASS_NAMES),
        "num_images": int(num_images),
        "regenerated": regenerated,
    }


def _render_tree(config: DigitDomainsConfig, target: Path, progress: bool) -> int:
    """Render every image, split file, class list and stamp into ``target``; returns #images."""
    images, labels = source_digits()
    indices = select_digits(config.seed, config.max_digits)
    splits = assign_splits(labels[indices], config.split_fractions, config.seed)
    split_of = dict(zip(indices.tolist(), splits.tolist(), strict=True))
    for domain in config.domains:
        for name in CLASS_NAMES:
            (target / domain / name).mkdir(parents=True, exist_ok=True)

    lines: dict[tuple[str, str], list[str]] = {
        (d, s): [] for d in config.domains for s in config.split_fractions
    }
    total = len(config.domains) * len(indices)
    for domain, index in tqdm(
        _iter_jobs(config, indices), total=total, disable=not progress, desc="DigitDomains", unit="img"
    ):
        label = int(labels[index])
        rel = _image_relpath(domain, label, index)
        rng = image_rng(config.seed, domain, index)
        pixels = render_image(images[index], domain, rng, config.image_size)
        Image.fromarray(pixels, mode="RGB").save(target / rel, format="PNG")
        lines[(domain, split_of[index])].append(f"{rel} {label}")

    for (domain, split), entries in lines.items():
        (target / f"{domain}_{split}.txt").write_text("\n".join(sorted(entries)) + "\n", encoding="utf-8")
    (target / CLASSNAMES_FILE).write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    counts = {
        domain: {split: len(lines[(domain, split)]) for split in config.split_fractions}
        for domain in config.domains
    }
    stamp = {
        "format_version": FORMAT_VERSION,
        "config": config.to_stamp(),
        "num_images": total,
        "num_source_digits": len(indices),
        "counts": counts,
    }
    # Written last: a stamp only ever describes a complete tree.
    (target / STAMP_FILE).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return total


_TREE_ENTRY = re.compile(
    rf"^(({'|'.join(DOMAINS)})(_[A-Za-z0-9][A-Za-z0-9_-]*\.txt)?"
    rf"|{re.escape(CLASSNAMES_FILE)}|{re.escape(STAMP_FILE)})$"
)  # what write_digit_domains puts directly under a root


def _check_replaceable(root: Path) -> None:
    """Refuse to replace a root holding anything but DigitDomains output (a mistyped root
    such as ``data/01_raw`` must never be deleted by the swap)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise FileExistsError(f"DigitDomains root {root} exists and is not a directory")
    foreign = sorted(p.name for p in root.iterdir() if not _TREE_ENTRY.match(p.name))
    if foreign:
        raise FileExistsError(
            f"refusing to replace {root}: it holds entries that DigitDomains did not write "
            f"({', '.join(foreign[:5])}); choose an empty or dedicated root folder"
        )


def write_digit_domains(config: DigitDomainsConfig, progress: bool = True) -> dict:
    """Write (or reuse) the DigitDomains tree at ``config.root``, atomically.

    Rendering happens in a temporary sibling folder that replaces the root only when
    complete, so readers never see a half-written tree and a failure leaves the old one.
    """
    recover(config.root)  # a tree swap or render killed earlier: restore the old tree, drop temporaries
    if _stamp_matches(config):
        stamp = json.loads((config.root / STAMP_FILE).read_text(encoding="utf-8"))
        return _summary(config, stamp.get("num_images", 0), regenerated=False)
    root = config.root
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staged = root.with_name(f".{root.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    staged.mkdir()
    try:
        num_images = _render_tree(config, staged, progress)
        swap_in(staged, root)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return _summary(config, num_images, regenerated=True)


def preview_grid(config: DigitDomainsConfig, per_domain: int = 10) -> np.ndarray:
    """One row per domain of the first ``per_domain`` digits, for READMEs and reports."""
    images, _ = source_digits()
    indices = select_digits(config.seed, config.max_digits)[:per_domain]
    size = config.image_size
    rows = [
        np.concatenate(
            [render_image(images[i], d, image_rng(config.seed, d, int(i)), size) for i in indices],
            axis=1,
        )
        for d in config.domains
    ]
    return np.concatenate(rows, axis=0)
