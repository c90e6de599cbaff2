"""``params:evaluate``: every model variant scored on every domain of the test split."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from lipsum_ft.params.shared import GroupParams, LoaderParams, Strict


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
    loader: LoaderParams = LoaderParams()
    device: str = "cpu"
    progress: bool = True
