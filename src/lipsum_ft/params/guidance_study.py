"""``params:guidance_study``: the study of Lipsum-FT's text-guidance strategies."""

from __future__ import annotations

from pydantic import Field, model_validator

from lipsum_ft.params.finetune import GuidanceStrategy, Method
from lipsum_ft.params.shared import GroupParams


class GuidanceStudyParams(GroupParams):
    """``params:guidance_study``: Lipsum-FT under each text-guidance strategy, beside baselines, over seeds.

    The recipe (steps, lr, lambda, M, L, templates, pool) is ``params:finetune``'s.
    """

    group = "guidance_study"

    strategies: list[GuidanceStrategy] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    baselines: list[Method] = []  # fine-tuned beside, per seed: context for accuracy and for the step cost
    reference: GuidanceStrategy = "random_tokens"  # paired differences and cost ratios are taken against it
    progress: bool = True
    dvclive_dir: str | None = (
        None  # DVCLive folder of the study's live curves (one series per run); null: none
    )
    # where each finished run waits until the study's run has saved its outputs (training.run_records),
    # so a study started again after an interruption trains only the runs it had not finished; null: none
    resume_dir: str | None = None

    @model_validator(mode="after")
    def _reference_is_run(self) -> GuidanceStudyParams:
        if self.reference not in self.strategies:
            raise ValueError(f"reference {self.reference!r} must be one of the strategies {self.strategies}")
        if "lipsum" in self.baselines:
            raise ValueError("baselines must not include lipsum: each strategy is a Lipsum-FT arm already")
        if len(set(self.strategies)) != len(self.strategies) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("strategies and seeds must not repeat")
        return self
