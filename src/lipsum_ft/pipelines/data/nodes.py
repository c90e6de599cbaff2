"""Nodes of the ``data`` pipeline: thin, typed wrappers over ``lipsum_ft.data``
(layouts, validation, DigitDomains).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from lipsum_ft.data.imagenet import OBJECTNET_BORDER, ImageNetFamily, read_imagenet_family
from lipsum_ft.data.layout import layout_from_params, read_classnames, read_manifest
from lipsum_ft.data.splits import carve_validation
from lipsum_ft.data.validation import ValidationRules, validate_manifest
from lipsum_ft.digit_domains import DigitDomainsConfig, write_digit_domains
from lipsum_ft.params import DataParams, parse


def prepare_dataset(data: dict[str, Any]) -> dict[str, Any]:
    """Render DigitDomains into the layout root when it is the source (skipped if up to date);
    describe the dataset.
    """
    params: DataParams = parse("data", data)
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
    """Read the dataset into one table (path, label, class_name, domain, split, source) plus class groups.

    Class groups say how to score domains whose label space is part of the model's (ImageNet-R/-A,
    ObjectNet); they are empty for DomainNet-layout data.
    """
    params: DataParams = parse("data", data)
    if params.source == "imagenet_family":
        roots = {k: (Path(v) if v else None) for k, v in params.imagenet.model_dump().items()}
        manifest, classnames, groups = read_imagenet_family(ImageNetFamily(**roots))
        manifest["border"] = (manifest["domain"] == "objectnet").astype(
            "int64"
        ) * OBJECTNET_BORDER  # cropped at load time
    else:
        layout = layout_from_params(params.layout.model_dump())
        manifest, classnames, groups = read_manifest(layout), read_classnames(layout), {}
    if params.carve_validation is not None:
        carve = params.carve_validation
        manifest = carve_validation(
            manifest, carve.domain, carve.from_split, carve.to_split, carve.fraction, carve.seed
        )
    return manifest, classnames, groups


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
    params: DataParams = parse("data", data)
    if params.source == "imagenet_family":  # what was found is what is expected
        domains, splits = (
            tuple(dict.fromkeys(raw_manifest["domain"])),
            tuple(dict.fromkeys(raw_manifest["split"])),
        )
        pairs = tuple(dict.fromkeys(raw_manifest["domain"] + "/" + raw_manifest["split"]))
    else:
        domains, splits = tuple(params.layout.domains), tuple(params.layout.splits)
        pairs = tuple(f"{d}/{s}" for d in domains for s in splits)
    partial_pairs: tuple[str, ...] = ()
    if params.carve_validation:
        carve = params.carve_validation
        splits = tuple(dict.fromkeys((*splits, carve.to_split)))
        pairs = tuple(dict.fromkeys((*pairs, f"{carve.domain}/{carve.to_split}")))
        partial_pairs = (f"{carve.domain}/{carve.to_split}",)  # rare classes may round to no val rows
    rules = ValidationRules(
        classnames=tuple(raw_classnames),
        domains=domains,
        splits=splits,
        required_pairs=pairs,
        partial_domains=tuple(raw_class_groups),
        partial_pairs=partial_pairs,
        **params.validation.model_dump(),
    )
    report = validate_manifest(raw_manifest, rules)
    return raw_manifest, list(raw_classnames), dict(raw_class_groups), report, dict(prepared_dataset)
