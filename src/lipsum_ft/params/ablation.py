"""``params:ablation``: the study of Lipsum-FT's knobs (lambda, M, L) over seeds."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, PositiveInt, model_validator

from lipsum_ft.params.finetune import Method
from lipsum_ft.params.shared import GroupParams, Strict


class AblationKnobs(Strict):
    """The values each Lipsum-FT knob takes, one knob at a time, the others at params:finetune's."""

    coefficient: list[Annotated[float, Field(ge=0)]] = Field(min_length=1, alias="lambda")
    num_texts: list[PositiveInt] = Field(min_length=1)
    length: list[PositiveInt] = Field(min_length=1)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BootstrapParams(Strict):
    samples: PositiveInt = 1000  # resamples of the test images (within each domain)
    seed: int = 0
    level: float = Field(0.95, gt=0, lt=1)  # coverage of the percentile intervals


class AblationParams(GroupParams):
    """``params:ablation``: sensitivity to lambda, M and L over seeds; model choice without shift labels;
    the reference-vs-shift front. The recipe is ``params:finetune``'s, the scoring ``params:evaluate``'s.
    """

    group = "ablation"

    seeds: list[int] = Field(min_length=1)
    baselines: list[Method] = ["ft"]  # fine-tuned beside, per seed; the first is the paired yardstick
    knobs: AblationKnobs
    wise_alphas: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1)
    # criterion (c): reference val accuracy within this of the best
    tolerance: float = Field(0.01, ge=0, le=1)
    bootstrap: BootstrapParams = BootstrapParams()
    progress: bool = True
    dvclive_dir: str | None = (
        None  # DVCLive folder of the study's live curves (one series per run); null: none
    )
    # where each finished run waits until the study's run has saved its outputs (training.run_records),
    # so a study started again after an interruption trains only the runs it had not finished; null: none
    resume_dir: str | None = None

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
