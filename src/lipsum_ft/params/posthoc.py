"""``params:posthoc``: WiSE over an alpha grid and TPGM's learned projection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from lipsum_ft.params.shared import GroupParams, LoaderParams, Strict


class WiseParams(Strict):
    alphas: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _alphas_in_unit_interval(self) -> WiseParams:
        bad = [a for a in self.alphas if not 0.0 <= a <= 1.0]
        if bad:
            raise ValueError(f"posthoc.wise.alphas must lie in [0, 1]; got {bad}")
        return self


class TpgmParams(Strict):
    norm: Literal["l2", "mars"] = "l2"
    lr: float = Field(1e-2, gt=0)
    steps: PositiveInt = 200
    batch_size: PositiveInt = 64
    exclude: list[str] = []  # substrings of tensor names left unprojected
    seed: int = 0


class PosthocParams(GroupParams):
    """``params:posthoc``: WiSE over an alpha grid and TPGM, learned on the reference domain's val split."""

    group = "posthoc"

    reference_domain: str
    val_split: str = "val"
    wise: WiseParams
    tpgm: TpgmParams = TpgmParams()
    loader: LoaderParams = LoaderParams()
    device: str = "cpu"
    progress: bool = True
