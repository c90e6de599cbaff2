"""Typed parameters, one model per pipeline, validated before any node runs (see ``hooks.py``).

A wrong key or value fails at start-up with the dotted key named, instead of deep inside a node.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)


class _Strict(BaseModel):
    # allow_inf_nan=False: no float setting anywhere accepts inf or NaN (e.g. lr=inf)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _ordered_range(low_bound: float, high_bound: float | None, what: str):
    """A ``[low, high]`` pair with ``low_bound < low <= high`` (and ``high <= high_bound`` when given)."""

    def check(pair: tuple[float, float]) -> tuple[float, float]:
        low, high = pair
        if not (low_bound < low <= high and (high_bound is None or high <= high_bound)):
            upper = f" <= {high_bound}" if high_bound is not None else ""
            raise ValueError(
                f"{what} must be [low, high] with {low_bound} < low <= high{upper}; got {list(pair)}"
            )
        return pair

    return AfterValidator(check)


def _unit_interval_open_above(pair: tuple[float, float]) -> tuple[float, float]:
    if not all(0.0 <= b < 1.0 for b in pair):
        raise ValueError(f"Adam betas must each lie in [0, 1); got {list(pair)}")
    return pair


CropScale = Annotated[tuple[float, float], _ordered_range(0.0, 1.0, "a crop scale (area fraction)")]
CropRatio = Annotated[tuple[float, float], _ordered_range(0.0, None, "a crop aspect ratio")]
Betas = Annotated[tuple[float, float], AfterValidator(_unit_interval_open_above)]


class LayoutParams(_Strict):
    """A DomainNet-layout folder: ``<root>/<domain>/<class>/<file>`` plus split files."""

    root: str | None
    domains: list[str] = Field(min_length=1)
    splits: list[str] = Field(min_length=1)
    split_file: str = "{domain}_{split}.txt"
    classnames_from: Literal["file", "folders"] = "file"
    classnames_file: str = "classnames.txt"


class DigitDomainsParams(_Strict):
    """How the embedded DigitDomains dataset is rendered."""

    seed: int = 0
    image_size: PositiveInt = 32
    split_fractions: dict[str, float]
    max_digits: PositiveInt | None = None


class ValidationParams(_Strict):
    """Thresholds of the Great Expectations suite over the manifest."""

    image_size: PositiveInt | None = None
    decode_sample: PositiveInt | None = None
    min_rows_per_domain_split: PositiveInt = 1
    seed: int = 0
    max_examples: PositiveInt = 5


class CarveParams(_Strict):
    """A validation split carved from a training split (DomainNet ships only train and test)."""

    domain: str
    from_split: str = "train"
    to_split: str = "val"
    fraction: float = Field(0.1, gt=0, lt=1)
    seed: int = 0


class ImageNetParams(_Strict):
    """Roots of the ImageNet family; leave a dataset null to skip it."""

    imagenet: str | None = None
    imagenet_v2: str | None = None
    imagenet_r: str | None = None
    imagenet_a: str | None = None
    imagenet_sketch: str | None = None
    objectnet: str | None = None


class DataParams(_Strict):
    """``params:data``: where the dataset comes from and how it is checked."""

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


class CaptionParams(_Strict):
    """Captions of the embedded pretraining: templates with ``{domain}`` and ``{name}`` slots."""

    templates: list[str] = Field(min_length=1)
    domain_words: dict[str, list[str]] = {}
    class_aliases: dict[str, list[str]] = {}


class PretrainParams(_Strict):
    """``params:pretrain``: train the tiny CLIP (``embedded``) or load real open_clip weights."""

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
    captions: CaptionParams | None = None
    progress: bool = True

    @model_validator(mode="after")
    def _source_needs(self) -> PretrainParams:
        if self.source == "embedded" and self.captions is None:
            raise ValueError("pretrain.source is 'embedded' but pretrain.captions is missing")
        return self


class LoaderParams(_Strict):
    """How images reach the model: decoded once in memory (small data) or streamed by DataLoader workers."""

    mode: Literal["memory", "stream"] = "memory"
    workers: int = Field(0, ge=0)
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: PositiveInt | None = None

    def settings(self):
        from lipsum_ft.data.images import LoaderSettings

        return LoaderSettings(self.workers, self.pin_memory, self.persistent_workers, self.prefetch_factor)


class ZeroshotParams(_Strict):
    """``params:zeroshot``: the head's prompt templates and the zero-shot evaluation."""

    templates: str | list[str]
    split: str = "test"
    batch_size: PositiveInt = 512
    ece_bins: PositiveInt = 15
    loader: LoaderParams = LoaderParams()
    device: str = "cpu"
    progress: bool = True


METHOD_NAMES = ("ft", "lp", "lpft", "l2sp", "kd", "carft", "flyp", "lipsum")
Method = Literal["ft", "lp", "lpft", "l2sp", "kd", "carft", "flyp", "lipsum"]


class AugmentParams(_Strict):
    """Random-resized-crop + flip, at the model's input size."""

    crop_scale: CropScale = (0.08, 1.0)
    crop_ratio: CropRatio = (0.75, 4 / 3)
    flip: bool = True


class CoefficientParams(_Strict):
    """A regulariser's weight; 0 reduces the method to cross-entropy."""

    coefficient: float = Field(1.0, ge=0, alias="lambda")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


GuidanceStrategy = Literal["random_tokens", "random_words", "class_free_captions", "fixed_pool"]


class LipsumParams(CoefficientParams):
    """Lipsum-FT's weight and its text guidance (``clip/guidance.py``)."""

    guidance: GuidanceStrategy = "random_tokens"
    num_texts: PositiveInt = 80  # M texts per step
    length: PositiveInt = 8  # L token ids (random_tokens) or words (random_words) per text
    templates: str | list[str] | None = (
        None  # class_free_captions: the prompt templates whose slot gets random words
    )
    slot_words: tuple[PositiveInt, PositiveInt] = (
        1,
        3,
    )  # class_free_captions: words in the slot, uniform in [low, high]
    pool_size: PositiveInt = 80  # fixed_pool: N texts drawn once
    pool_source: Literal["random_tokens", "random_words", "class_free_captions"] = (
        "random_tokens"  # fixed_pool: who draws them
    )

    @model_validator(mode="after")
    def _captions_need_templates(self) -> LipsumParams:
        if self.slot_words[0] > self.slot_words[1]:
            raise ValueError(f"slot_words {list(self.slot_words)} must be [low, high] with low <= high")
        uses_captions = "class_free_captions" in (
            self.guidance,
            self.pool_source if self.guidance == "fixed_pool" else None,
        )
        if uses_captions and not self.templates:
            raise ValueError("guidance class_free_captions needs finetune.lipsum.templates")
        return self


class CarftParams(CoefficientParams):
    templates: str | list[str]  # the contexts; each is averaged over the classes


class LpftParams(_Strict):
    lp_fraction: float = Field(0.5, ge=0, le=1)


class FlypParams(_Strict):
    templates: str | list[str]


class FinetuneParams(_Strict):
    """``params:finetune``: which methods, on which domain, with which recipe."""

    methods: list[Method] = Field(min_length=1)
    method: Method | None = None  # when set, runs this one method instead of ``methods``
    reference_domain: str
    train_split: str = "train"
    val_split: str = "val"
    seed: int = 0
    steps: PositiveInt
    batch_size: PositiveInt
    lr: float = Field(gt=0)
    lr_by_method: dict[
        Method, PositiveFloat
    ] = {}  # a method's own peak lr (a linear probe needs a far larger one)
    weight_decay: float = Field(0.0, ge=0)
    betas: Betas = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    grad_clip: float | None = Field(None, gt=0)
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true"] = "32-true"
    accelerator: Literal["cpu", "gpu", "cuda", "auto"] = "cpu"
    devices: PositiveInt = 1  # per node
    num_nodes: PositiveInt = 1  # > 1: every rank started by torchrun / srun (README "Scaling out")
    augment: AugmentParams = AugmentParams()
    loader: LoaderParams = LoaderParams()
    eval_every: PositiveInt = 50
    log_every: PositiveInt = 10  # loss and terms are read from the device (one host sync) every K steps
    eval_batch_size: PositiveInt = 512
    checkpoint_every: int = Field(0, ge=0)
    checkpoint_dir: str = "data/06_models/checkpoints"
    resume: bool | Literal["auto"] = False  # auto: continue when a checkpoint of this run exists
    progress: bool = True
    lipsum: LipsumParams = LipsumParams()
    l2sp: CoefficientParams = CoefficientParams()
    kd: CoefficientParams = CoefficientParams()
    carft: CarftParams
    lpft: LpftParams = LpftParams()
    flyp: FlypParams

    @property
    def selected_methods(self) -> list[str]:
        return [self.method] if self.method else list(dict.fromkeys(self.methods))

    def lr_for(self, method: str) -> float:
        return self.lr_by_method.get(method, self.lr)

    @model_validator(mode="after")
    def _train_and_val_differ(self) -> FinetuneParams:
        if self.train_split == self.val_split:
            raise ValueError(
                f"finetune.train_split and finetune.val_split are both {self.train_split!r}: "
                "model selection must not use the training split"
            )
        return self

    @model_validator(mode="after")
    def _batch_splits_over_devices(self) -> FinetuneParams:
        if self.batch_size % (self.devices * self.num_nodes):
            raise ValueError(
                f"finetune.batch_size {self.batch_size} must be divisible by finetune.devices {self.devices}"
                f" x finetune.num_nodes {self.num_nodes} (the number of ranks)"
            )
        return self


class WiseParams(_Strict):
    alphas: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _alphas_in_unit_interval(self) -> WiseParams:
        bad = [a for a in self.alphas if not 0.0 <= a <= 1.0]
        if bad:
            raise ValueError(f"posthoc.wise.alphas must lie in [0, 1]; got {bad}")
        return self


class TpgmParams(_Strict):
    norm: Literal["l2", "mars"] = "l2"
    lr: float = Field(1e-2, gt=0)
    steps: PositiveInt = 200
    batch_size: PositiveInt = 64
    exclude: list[str] = []  # substrings of tensor names left unprojected
    seed: int = 0


class PosthocParams(_Strict):
    """``params:posthoc``: WiSE over an alpha grid and TPGM, learned on the reference domain's val split."""

    reference_domain: str
    val_split: str = "val"
    wise: WiseParams
    tpgm: TpgmParams = TpgmParams()
    loader: LoaderParams = LoaderParams()
    device: str = "cpu"
    progress: bool = True


class EnergyParams(_Strict):
    num_texts: PositiveInt = 80
    length: PositiveInt = 8
    seed: int = 0


class EvaluateParams(_Strict):
    """``params:evaluate``: every model variant on every domain of the test split."""

    split: str = "test"
    reference_domain: str
    batch_size: PositiveInt = 512
    ece_bins: PositiveInt = 15
    energy: EnergyParams = EnergyParams()
    class_subsets: dict[str, list[str]] = {}  # domain -> class names its logits are restricted to
    report_alpha: float = Field(0.5, ge=0, le=1)  # the WiSE alpha the summary table reports
    reliability_variants: list[str] = ["zeroshot", "ft", "lipsum"]
    loader: LoaderParams = LoaderParams()
    device: str = "cpu"
    progress: bool = True


class GuidanceStudyParams(_Strict):
    """``params:guidance_study``: Lipsum-FT under each text-guidance strategy, beside baselines, over seeds.

    The recipe (steps, lr, lambda, M, L, templates, pool) is ``params:finetune``'s.
    """

    strategies: list[GuidanceStrategy] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    baselines: list[Method] = []  # fine-tuned beside, per seed: context for accuracy and for the step cost
    reference: GuidanceStrategy = "random_tokens"  # paired differences and cost ratios are taken against it
    progress: bool = True

    @model_validator(mode="after")
    def _reference_is_run(self) -> GuidanceStudyParams:
        if self.reference not in self.strategies:
            raise ValueError(f"reference {self.reference!r} must be one of the strategies {self.strategies}")
        if "lipsum" in self.baselines:
            raise ValueError("baselines must not include lipsum: each strategy is a Lipsum-FT arm already")
        if len(set(self.strategies)) != len(self.strategies) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("strategies and seeds must not repeat")
        return self


class AblationKnobs(_Strict):
    """The values each Lipsum-FT knob takes, one knob at a time, the others at params:finetune's."""

    coefficient: list[Annotated[float, Field(ge=0)]] = Field(min_length=1, alias="lambda")
    num_texts: list[PositiveInt] = Field(min_length=1)
    length: list[PositiveInt] = Field(min_length=1)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BootstrapParams(_Strict):
    samples: PositiveInt = 1000  # resamples of the test images (within each domain)
    seed: int = 0
    level: float = Field(0.95, gt=0, lt=1)  # coverage of the percentile intervals


class AblationParams(_Strict):
    """``params:ablation``: sensitivity to lambda, M and L over seeds; model choice without shift labels;
    the reference-vs-shift front. The recipe is ``params:finetune``'s, the scoring ``params:evaluate``'s.
    """

    seeds: list[int] = Field(min_length=1)
    baselines: list[Method] = ["ft"]  # fine-tuned beside, per seed; the first is the paired yardstick
    knobs: AblationKnobs
    wise_alphas: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1)
    tolerance: float = Field(
        0.01, ge=0, le=1
    )  # criterion (c): reference val accuracy within this of the best
    bootstrap: BootstrapParams = BootstrapParams()
    progress: bool = True

    @model_validator(mode="after")
    def _well_formed(self) -> AblationParams:
        if "lipsum" in self.baselines or not self.baselines:
            raise ValueError(
                "baselines: name at least one method other than lipsum (the knobs vary Lipsum-FT)"
            )
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.wise_alphas)) != len(self.wise_alphas):
            raise ValueError("seeds and wise_alphas must not repeat")
        if 1.0 not in self.wise_alphas:
            raise ValueError(f"wise_alphas {self.wise_alphas} must contain 1.0 (the fine-tuned model itself)")
        return self


PARAMETER_MODELS: dict[str, type[BaseModel]] = {
    "data": DataParams,
    "pretrain": PretrainParams,
    "zeroshot": ZeroshotParams,
    "finetune": FinetuneParams,
    "posthoc": PosthocParams,
    "evaluate": EvaluateParams,
    "guidance_study": GuidanceStudyParams,
    "ablation": AblationParams,
}


Config = TypeVar("Config")


def config_from(target: type[Config], *sources: BaseModel, **explicit: Any) -> Config:
    """The library dataclass ``target`` filled from the same-named fields of ``sources``; ``explicit`` wins.

    One definition per recipe knob: a field that exists on both sides is carried without being
    copied by hand, and a ``target`` field no source has must be given explicitly (or keeps its default).
    """
    names = {f.name for f in dataclasses.fields(target)}
    values = {
        name: getattr(source, name)
        for source in sources
        for name in type(source).model_fields
        if name in names
    }
    return target(**{**values, **explicit})


class ParameterError(ValueError):
    """A parameter failed validation; the message names the dotted key and the reason."""


def _test_split_stays_unseen(validated: Mapping[str, BaseModel]) -> list[str]:
    """The split ``evaluate`` reports on is never trained on or selected on, by any pipeline."""
    if "evaluate" not in validated:
        return []
    test = validated["evaluate"].split
    used = {
        "finetune.train_split": getattr(validated.get("finetune"), "train_split", None),
        "finetune.val_split": getattr(validated.get("finetune"), "val_split", None),
        "posthoc.val_split": getattr(validated.get("posthoc"), "val_split", None),
    }
    return [
        f"{key}: must not be the test split evaluate.split={test!r} (got {value!r})"
        for key, value in used.items()
        if value == test
    ]


def validate_parameters(params: Mapping[str, Any]) -> dict[str, BaseModel]:
    """Validate every parameter group in ``params``; raise naming each bad or unknown key.

    An unknown top-level key (e.g. ``--params finetun.lr=-1``) is an error, not silently ignored.
    """
    validated, problems = {}, []
    for group in params:
        if group not in PARAMETER_MODELS:
            close = difflib.get_close_matches(str(group), PARAMETER_MODELS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{group}: unknown parameter group (known: {', '.join(PARAMETER_MODELS)}){hint}")
    for group, model in PARAMETER_MODELS.items():
        if group not in params:
            continue
        try:
            validated[group] = model.model_validate(params[group])
        except ValidationError as error:
            for item in error.errors():
                key = ".".join(str(p) for p in (group, *item["loc"]))
                problems.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    problems += _test_split_stays_unseen(validated)
    domains = {
        f"{group}.reference_domain": validated[group].reference_domain
        for group in ("finetune", "posthoc", "evaluate")
        if group in validated
    }
    if len(set(domains.values())) > 1:  # each file states it (DVC's -S cannot read Kedro's ${globals:})
        named = ", ".join(f"{key}={value!r}" for key, value in domains.items())
        problems.append(f"the reference domains differ: {named}; set the same domain in each file")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    return validated


def parse(group: str, value: Mapping[str, Any]) -> Any:
    """Parse one group inside a node (nodes receive plain dicts from Kedro)."""
    return validate_parameters({group: value})[group]
