"""Nodes of the ``data`` pipeline: thin, typed wrappers over ``lipsum_ft.data``
(layouts, validation, DigitDomains).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from lipsum_ft.data.ingest import read_dataset, validation_rules
from lipsum_ft.data.validation import validate_manifest
from lipsum_ft.digit_domains import DigitDomainsConfig, write_digit_domains
from lipsum_ft.params.data import DataParams
from lipsum_ft.params.shared import parse


def prepare_dataset(data: dict[str, Any]) -> dict[str, Any]:
    """Render DigitDomains into the layout root when it is the source (skipped if up to date);
    describe the dataset.
    """
    params = parse(DataParams, data)
    started = time.perf_counter()
    info: dict[str, Any] = {
        "source": params.source,
        "root": params.layout.root if params.layout else params.imagenet.model_dump(),
    }
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


def build_manifest(
    prepared_dataset: dict[str, Any], data: dict[str, Any]
) -> tuple[pd.DataFrame, list[str], dict[str, list[list[int]]]]:
    """Read the dataset into one table (path, label, class_name, domain, split, source) plus class groups."""
    return read_dataset(parse(DataParams, data))


def validate_dataset(
    raw_manifest: pd.DataFrame,
    raw_classnames: list[str],
    raw_class_groups: dict[str, list[list[int]]],
    prepared_dataset: dict[str, Any],
    data: dict[str, Any],
) -> tuple[pd.DataFrame, list[str], dict[str, list[list[int]]], dict[str, Any], dict[str, Any]]:
    """Gate the manifest with the Great Expectations suite; only a valid manifest is written,
    and the dataset's description (``dataset_info``, a DVC output) only with it.
    """
    rules = validation_rules(parse(DataParams, data), raw_manifest, raw_classnames, raw_class_groups)
    report = validate_manifest(raw_manifest, rules)
    return raw_manifest, list(raw_classnames), dict(raw_class_groups), report, dict(prepared_dataset)
