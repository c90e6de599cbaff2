"""Nodes of the ``data`` pipeline: thin, typed wrappers over ``lipsum_ft.ingest`` and DigitDomains."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from lipsum_ft.clip.synthetic import DigitDomainsConfig, write_digit_domains
from lipsum_ft.ingest.layout import layout_from_params, read_classnames, read_manifest
from lipsum_ft.ingest.validation import ValidationRules, validate_manifest
from lipsum_ft.params import DataParams, parse


def prepare_dataset(data: dict[str, Any]) -> dict[str, Any]:
    """Render DigitDomains into the layout root when it is the source (skipped if up to date); describe the dataset."""
    params: DataParams = parse("data", data)
    started = time.perf_counter()
    info: dict[str, Any] = {"source": params.source, "root": params.layout.root}
    if params.source == "digit_domains":
        spec = params.digit_domains
        written = write_digit_domains(
            DigitDomainsConfig(
                root=Path(params.layout.root),
                domains=tuple(params.layout.domains),
                split_fractions=dict(spec.split_fractions),
                image_size=spec.image_size,
                seed=spec.seed,
                max_digits=spec.max_digits,
            )
        )
        info.update(num_images=written["num_images"], regenerated=written["regenerated"])
    info["seconds"] = round(time.perf_counter() - started, 2)
    return info


def build_manifest(dataset_info: dict[str, Any], data: dict[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Read the layout's split files into one table (path, label, class_name, domain, split, source)."""
    params: DataParams = parse("data", data)
    layout = layout_from_params(params.layout.model_dump())
    return read_manifest(layout), read_classnames(layout)


def validate_dataset(
    raw_manifest: pd.DataFrame, raw_classnames: list[str], data: dict[str, Any]
) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    """Gate the manifest with the Great Expectations suite; only a valid manifest is written."""
    params: DataParams = parse("data", data)
    rules = ValidationRules(
        classnames=tuple(raw_classnames),
        domains=tuple(params.layout.domains),
        splits=tuple(params.layout.splits),
        **params.validation.model_dump(),
    )
    report = validate_manifest(raw_manifest, rules)
    return raw_manifest, list(raw_classnames), report
