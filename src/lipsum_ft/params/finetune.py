"""``params:finetune``: the methods, the reference domain, the recipe, and each method's own settings.

A method is named once, in ``Method``; the methods with settings of their own have a model here and a
field of that name on ``FinetuneParams`` (``training/objectives.py`` builds each objective from it).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from lipsum_ft.params.shared import Betas, CropRatio, CropScale, GroupParams, LoaderParams, Strict

Method = Literal["ft", "lp", "lpft", "l2sp", "kd", "carft", "flyp", "lipsum"]
METHODS: tuple[str, ...] = get_args(Method)

GuidanceStrategy = Literal["random_tokens", "random_words", "class_free_captions", "fixed_pool"]


class AugmentParams(Strict):
    """Random-resized-crop + flip, at the model's input size."""

    crop_scale: CropScale = (0.08, 1.0)
    crop_ratio: CropRatio = (0.75, 4 / 3)
    flip: bool = True


class CoefficientParams(Strict):
    """A regulariser's weight; 0 reduces the method to cross-entropy."""

    coefficient: float = Field(1.0, ge=0, alias="lambda")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LipsumParams(CoefficientParams):
    """Lipsum-FT's weight and its text guidance (``training/guidance.py``)."""

    guidance: GuidanceStrategy = "random_tokens"
    num_texts: PositiveInt = Field(80, description="M: texts per step")
    length: PositiveInt = Field(
        8, description="L: token ids (random_tokens) or words (random_words) per text"
    )
    templates: str | list[str] | None = Field(
        None, description="class_free_captions: the prompt templates whose slot gets random words"
    )
    slot_words: tuple[PositiveInt, PositiveInt] = Field(
        (1, 3), description="class_free_captions: words in the slot, uniform in [low, high]"
    )
    pool_size: PositiveInt = Field(80, description="fixed_pool: N texts drawn once")
    pool_source: Literal["random_tokens", "random_words", "class_free_captions"] = Field(
        "random_tokens", description="fixed_pool: the strategy that draws the pool"
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
    """CAR-FT's weight and its contexts (prompt templates), each averaged over the classes."""

    templates: str | list[str]


class LpftParams(Strict):
    """LP-FT: the fraction of the steps that train the head alone."""

    lp_fraction: float = Field(0.5, ge=0, le=1)


class FlypParams(Strict):
    """FLYP: the class-prompt templates of its contrastive loss and of its head."""

    templates: str | list[str]


class FinetuneParams(GroupParams):
    """``params:finetune``: which methods, on which domain, with which recipe."""

    group = "finetune"

    methods: list[Method] = Field(min_length=1)
    # when set, runs this one method instead of ``methods``
    method: Method | None = None
    reference_domain: str
    train_split: str = "train"
    val_split: str = "val"
    seed: int = 0
    steps: PositiveInt
    batch_size: PositiveInt
    lr: float = Field(gt=0)
    # a method's own peak lr (a linear probe needs a far larger one)
    lr_by_method: dict[Method, PositiveFloat] = {}
    weight_decay: float = Field(0.0, ge=0)
    betas: Betas = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    grad_clip: float | None = Field(None, gt=0)
    # bf16-mixed: float32 weights, AdamW and validation under bf16 autocast. Not bf16-true (bf16
    # weights round away updates of lr 1e-5) nor 16-mixed (its loss scale is not checkpointed)
    precision: Literal["32-true", "bf16-mixed"] = "32-true"
    accelerator: Literal["cpu", "gpu", "cuda", "auto"] = "cpu"
    # per node
    devices: PositiveInt = 1
    # > 1: every rank started by torchrun / srun (README "Scaling out")
    num_nodes: PositiveInt = 1
    # seconds a collective waits for the other ranks (a dead or hung rank) before this rank fails
    process_group_timeout_s: float = Field(1800.0, gt=0, allow_inf_nan=False)
    augment: AugmentParams = AugmentParams()
    loader: LoaderParams = LoaderParams()
    eval_every: PositiveInt = 50
    # loss and terms are read from the device (one host sync) every K steps
    log_every: PositiveInt = 10
    eval_batch_size: PositiveInt = 512
    checkpoint_every: int = Field(0, ge=0)
    checkpoint_dir: str = "data/06_models/checkpoints"
    # auto: continue when a checkpoint of this run exists
    resume: bool | Literal["auto"] = False
    progress: bool = True
    # torch.compile the image towers (the same computation, other kernels; README "The published run's time")
    compile: bool = False
    # DVCLive folder of the pipeline's live curves (one series per run inside); null: none
    dvclive_dir: str | None = None
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

    def settings_for(self, method: str) -> BaseModel | None:
        """``method``'s own settings (``finetune.<method>``); None for a method that has none (FT, LP)."""
        if method not in METHODS:
            raise ValueError(f"unknown fine-tuning method {method!r}; valid: {list(METHODS)}")
        return getattr(self, method, None)

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
