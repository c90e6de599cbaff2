"""``params:pretrain``: the tiny CLIP trained on captions of the embedded data, or real open_clip weights."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from lipsum_ft.params.shared import CropScale, GroupParams, Strict


class CaptionParams(Strict):
    """Captions of the embedded pretraining: templates with ``{domain}`` and ``{name}`` slots."""

    templates: list[str] = Field(min_length=1)
    domain_words: dict[str, list[str]] = {}
    class_aliases: dict[str, list[str]] = {}


class PretrainParams(GroupParams):
    """``params:pretrain``: train the tiny CLIP (``embedded``) or load real open_clip weights."""

    group = "pretrain"

    source: Literal["embedded", "open_clip"]
    model: str
    pretrained: str | None = None
    seed: int = 0
    steps: PositiveInt = 1000
    batch_size: PositiveInt = 256
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    crop_scale: CropScale = (0.5, 1.0)
    flip: bool = False
    max_logit_scale: float = Field(100.0, gt=0)
    cross_domain_weight: float = Field(1.0, ge=0, le=1)
    # benchmark design (embedded only): web captions that name another class, and how much of each
    # domain pretraining sees; 0 and {} (or null) give the clean, complete pretraining set
    caption_noise: float = Field(0.0, ge=0, le=1)
    domain_shares: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}
    captions: CaptionParams | None = None
    progress: bool = True
    # DVCLive folder of the live curves (one point every log_every steps); null: none
    dvclive_dir: str | None = None
    log_every: PositiveInt = 10

    @field_validator("domain_shares", mode="before")
    @classmethod
    def _null_is_none(cls, value: object) -> object:
        """null keeps every domain: an env over base (soft-merged) cannot empty base's dict, only null it."""
        return {} if value is None else value

    @model_validator(mode="after")
    def _source_needs(self) -> PretrainParams:
        if self.source == "embedded" and self.captions is None:
            raise ValueError("pretrain.source is 'embedded' but pretrain.captions is missing")
        if self.source == "open_clip" and (self.caption_noise or self.domain_shares):
            raise ValueError(
                "pretrain.caption_noise and pretrain.domain_shares shape the embedded pretraining; "
                "with pretrain.source 'open_clip' set them to 0.0 and null (an env over base: null, "
                "since merging cannot empty base's dict)"
            )
        return self
