"""``params:zeroshot``: the zero-shot head's prompt templates and the zero-shot evaluation."""

from __future__ import annotations

from pydantic import PositiveInt

from lipsum_ft.params.shared import GroupParams, LoaderParams


class ZeroshotParams(GroupParams):
    """``params:zeroshot``: the head's prompt templates and the zero-shot evaluation."""

    group = "zeroshot"

    templates: str | list[str]
    split: str = "test"
    batch_size: PositiveInt = 512
    ece_bins: PositiveInt = 15
    loader: LoaderParams = LoaderParams()
    device: str = "cpu"
    progress: bool = True
