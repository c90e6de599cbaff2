"""Reading a dataset's source (a DomainNet-layout folder, the ImageNet family) into one manifest, and
the validation rules that source implies. The ``data`` pipeline and ``benchmarks/ingest_scale.py``
both go through here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lipsum_ft.data.imagenet import OBJECTNET_BORDER, ImageNetFamily, read_imagenet_family
from lipsum_ft.data.layout import layout_from_params, read_classnames, read_manifest
from lipsum_ft.data.splits import carve_validation
from lipsum_ft.data.validation import ValidationRules
from lipsum_ft.params.data import DataParams


def read_dataset(params: DataParams) -> tuple[pd.DataFrame, list[str], dict[str, list[list[int]]]]:
    """The dataset as one table (path, label, class_name, domain, split, source) plus class groups.

    Class groups say how to score domains whose label space is part of the model's (ImageNet-R/-A,
    ObjectNet); they are empty for DomainNet-layout data.
    """
    if params.source == "imagenet_family":
        roots = {k: (Path(v) if v else None) for k, v in params.imagenet.model_dump().items()}
        manifest, classnames, groups = read_imagenet_family(ImageNetFamily(**roots))
        # ObjectNet's images are cropped at load time
        manifest["border"] = (manifest["domain"] == "objectnet").astype("int64") * OBJECTNET_BORDER
    else:
        layout = layout_from_params(params.layout.model_dump())
        manifest, classnames, groups = read_manifest(layout), read_classnames(layout), {}
    if params.carve_validation is not None:
        carve = params.carve_validation
        manifest = carve_validation(
            manifest, carve.domain, carve.from_split, carve.to_split, carve.fraction, carve.seed
        )
    return manifest, classnames, groups


def validation_rules(
    params: DataParams,
    manifest: pd.DataFrame,
    classnames: list[str],
    class_groups: dict[str, list[list[int]]],
) -> ValidationRules:
    """What the Great Expectations suite checks of this source's manifest: its classes, domains and
    splits, the (domain, split) pairs that must have rows, and the settings of ``data.validation``."""
    if params.source == "imagenet_family":  # what was found is what is expected
        domains, splits = (
            tuple(dict.fromkeys(manifest["domain"])),
            tuple(dict.fromkeys(manifest["split"])),
        )
        pairs = tuple(dict.fromkeys(manifest["domain"] + "/" + manifest["split"]))
    else:
        domains, splits = tuple(params.layout.domains), tuple(params.layout.splits)
        pairs = tuple(f"{d}/{s}" for d in domains for s in splits)
    partial_pairs: tuple[str, ...] = ()
    if params.carve_validation:
        carve = params.carve_validation
        splits = tuple(dict.fromkeys((*splits, carve.to_split)))
        pairs = tuple(dict.fromkeys((*pairs, f"{carve.domain}/{carve.to_split}")))
        partial_pairs = (f"{carve.domain}/{carve.to_split}",)  # rare classes may round to no val rows
    return ValidationRules(
        classnames=tuple(classnames),
        domains=domains,
        splits=splits,
        required_pairs=pairs,
        partial_domains=tuple(class_groups),
        partial_pairs=partial_pairs,
        **params.validation.model_dump(),
    )
