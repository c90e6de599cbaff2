"""DigitDomains names, file names, seed streams and the validated configuration that fixes a tree's bytes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
"""Label ``i`` is the digit ``i``; its class folder and text-prompt name is ``CLASS_NAMES[i]``."""

DOMAINS: tuple[str, ...] = ("photo", "sketch", "clipart", "painting", "infograph", "quickdraw")
"""All domains, in canonical order; the order fixes each domain's seed stream index."""

FORMAT_VERSION = 1
"""Bump whenever rendering or layout changes, so stale trees on disk get regenerated."""

STAMP_FILE = "digit_domains.json"
CLASSNAMES_FILE = "classnames.txt"

SELECTION_STREAM = 1  # SeedSequence entropy suffix for the digit shuffle (distinct from splits)
IMAGE_STREAM = 2  # SeedSequence entropy prefix for per-image generators

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def validate_domains(domains: tuple[str, ...]) -> None:
    """Reject unknown or repeated domains early, naming the offender."""
    if not domains:
        raise ValueError(f"domains must not be empty; valid domains: {', '.join(DOMAINS)}")
    for name in domains:
        if name not in DOMAINS:
            raise ValueError(f"unknown domain {name!r}; valid domains: {', '.join(DOMAINS)}")
    if len(set(domains)) != len(domains):
        raise ValueError(f"domains must not repeat: {list(domains)}")


def validate_split_fractions(fractions: Mapping[str, float]) -> None:
    """Fractions must be positive and sum to one, so every split gets images."""
    if not fractions:
        raise ValueError("split_fractions must name at least one split")
    for name, value in fractions.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name):
            raise ValueError(f"split name {name!r} must match {_SPLIT_NAME.pattern}")
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"split fraction {name!r}={value!r} must be > 0")
    total = float(sum(fractions.values()))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {total!r} from {dict(fractions)}")


@dataclass(frozen=True)
class DigitDomainsConfig:
    """Everything that determines the generated tree; equal configs give identical bytes."""

    root: Path
    domains: tuple[str, ...]
    split_fractions: Mapping[str, float] = field(hash=False)
    image_size: int = 32
    seed: int = 0
    max_digits: int | None = None

    def __post_init__(self) -> None:
        # Normalise inputs from YAML/Kedro params (lists, str paths) into the declared types.
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "domains", tuple(str(d) for d in self.domains))
        object.__setattr__(
            self, "split_fractions", {str(k): float(v) for k, v in self.split_fractions.items()}
        )
        validate_domains(self.domains)
        validate_split_fractions(self.split_fractions)
        if int(self.image_size) != self.image_size or self.image_size < 8:
            raise ValueError(f"image_size={self.image_size!r} must be an integer >= 8")
        if self.max_digits is not None and self.max_digits < 1:
            raise ValueError(f"max_digits={self.max_digits!r} must be >= 1 or None")

    def to_stamp(self) -> dict:
        """JSON-able identity of the tree (root excluded, so a moved tree is still valid)."""
        return {
            "domains": list(self.domains),
            "split_fractions": dict(self.split_fractions),
            "image_size": int(self.image_size),
            "seed": int(self.seed),
            "max_digits": None if self.max_digits is None else int(self.max_digits),
        }
