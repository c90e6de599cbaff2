"""``params:evaluate``: every model variant scored on every domain of the test split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from lipsum_ft.params.shared import GroupParams, LoaderParams, Strict

HeadlineMetric = Literal[
    "ref_acc", "shift_acc", "ref_ece", "shift_ece", "ref_nll", "shift_nll", "energy_gap", "feature_distortion"
]


class EnergyParams(Strict):
    num_texts: PositiveInt = 80
    length: PositiveInt = 8
    seed: int = 0


class EvaluateParams(GroupParams):
    """``params:evaluate``: every model variant on every domain of the test split."""

    group = "evaluate"

    split: str = "test"
    reference_domain: str
    batch_size: PositiveInt = 512
    ece_bins: PositiveInt = 15
    energy: EnergyParams = EnergyParams()
    class_subsets: dict[str, list[str]] = {}  # domain -> class names its logits are restricted to
    report_alpha: float = Field(0.5, ge=0, le=1)  # the WiSE alpha the summary table reports
    reliability_variants: list[str] = ["zeroshot", "ft", "lipsum"]
    # the numbers of each reported variant in reports/headline.json, the metric `dvc exp show` reads
    headline_metrics: list[HeadlineMetric] = Field(
        ["ref_acc", "shift_acc", "ref_ece", "shift_ece"], min_length=1
    )
    loader: LoaderParams = LoaderParams()
    device: str = "cpu"
    progress: bool = True
