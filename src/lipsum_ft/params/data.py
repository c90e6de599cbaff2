"""``params:data``: where the dataset comes from (embedded, a DomainNet-layout folder, the ImageNet
family) and how it is checked.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from lipsum_ft.params.shared import GroupParams, Strict


class LayoutParams(Strict):
    """A DomainNet-layout folder: ``<root>/<domain>/<class>/<file>`` plus split files."""

    root: str | None
    domains: list[str] = Field(min_length=1)
    splits: list[str] = Field(min_length=1)
    split_file: str = "{domain}_{split}.txt"
    classnames_from: Literal["file", "folders"] = "file"
    classnames_file: str = "classnames.txt"


class DigitDomainsParams(Strict):
    """How the embedded DigitDomains dataset is rendered."""

    seed: int = 0
    image_size: PositiveInt = 32
    split_fractions: dict[str, float]
    max_digits: PositiveInt | None = None


class ValidationParams(Strict):
    """Thresholds of the Great Expectations suite over the manifest."""

    image_size: PositiveInt | None = None
    decode_sample: PositiveInt | None = None
    min_rows_per_domain_split: PositiveInt = 1
    seed: int = 0
    max_examples: PositiveInt = 5


class CarveParams(Strict):
    """A validation split carved from a training split (DomainNet ships only train and test)."""

    domain: str
    from_split: str = "train"
    to_split: str = "val"
    fraction: float = Field(0.1, gt=0, lt=1)
    seed: int = 0


class ImageNetParams(Strict):
    """Roots of the ImageNet family; leave a dataset null to skip it."""

    imagenet: str | None = None
    imagenet_v2: str | None = None
    imagenet_r: str | None = None
    imagenet_a: str | None = None
    imagenet_sketch: str | None = None
    objectnet: str | None = None


class DataParams(GroupParams):
    """``params:data``: where the dataset comes from and how it is checked."""

    group = "data"

    source: Literal["digit_domains", "folders", "imagenet_family"]
    layout: LayoutParams | None = None
    digit_domains: DigitDomainsParams | None = None
    carve_validation: CarveParams | None = None
    imagenet: ImageNetParams | None = None
    validation: ValidationParams = ValidationParams()

    @model_validator(mode="after")
    def _source_has_its_settings(self) -> DataParams:
        if self.source in ("digit_domains", "folders") and (self.layout is None or not self.layout.root):
            raise ValueError(
                f"data.layout.root must be set for data.source {self.source!r} "
                "(conf/local or --params data.layout.root=...)"
            )
        if self.source == "imagenet_family" and (self.imagenet is None or self.imagenet.imagenet is None):
            raise ValueError(
                "data.imagenet.imagenet (the ImageNet root) must be set for data.source 'imagenet_family'"
            )
        return self

    @model_validator(mode="after")
    def _digit_domains_match_layout(self) -> DataParams:
        if self.source == "digit_domains" and self.layout is not None:
            if self.digit_domains is None:
                raise ValueError("data.source is 'digit_domains' but data.digit_domains is missing")
            if sorted(self.digit_domains.split_fractions) != sorted(self.layout.splits):
                raise ValueError(
                    f"data.digit_domains.split_fractions keys {sorted(self.digit_domains.split_fractions)} "
                    f"must equal data.layout.splits {sorted(self.layout.splits)}"
                )
        return self
