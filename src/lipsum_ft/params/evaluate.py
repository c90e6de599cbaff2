"""``params:evaluate``: every model variant scored on every domain of the test split."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from lipsum_ft.params.shared import GroupParams, LoaderParams, Strict


class EnergyParams(Strict):
    num_texts: PositiveInt = 80
    length: PositiveInt = 8
    seed: int = 0


class HeadlineParams(Strict):
    """Which variants report each number of reports/headline.json (``<variant>.<number>``), the metric
    ``dvc exp show`` reads: about a dozen, so its table fits a terminal. ``wise-<method>`` is WiSE at
    ``report_alpha``."""

    ref: list[str] = ["zeroshot", "ft", "lipsum"]  # accuracy on the reference domain
    shift: list[str] = ["zeroshot", "ft", "lipsum", "wise-ft", "wise-lipsum", "tpgm-ft", "tpgm-lipsum"]
    ece: list[str] = ["ft", "lipsum"]  # mean ECE over the shift domains


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
    headline: HeadlineParams = HeadlineParams()  # reports/headline.json, the metric `dvc exp show` reads
    loader: LoaderParams = LoaderParams()
    hold_decoded_gib: float = Field(0, ge=0)  # stream mode: decode each image set once, hold up to this
    device: str = "cpu"
    progress: bool = True
