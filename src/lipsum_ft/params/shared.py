"""What every parameter group shares: strict models, range validators, the loader settings, and parsing
one group with errors that name the dotted key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, ValidationError


class Strict(BaseModel):
    """A frozen model that refuses unknown keys and, for every float setting, inf and NaN (e.g. lr=inf)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GroupParams(Strict):
    """A top-level parameter group (``params:<group>``); ``group`` names it in error messages."""

    group: ClassVar[str]


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


class LoaderParams(Strict):
    """How images reach the model: decoded once in memory (small data) or streamed by DataLoader workers."""

    mode: Literal["memory", "stream"] = "memory"
    workers: int = Field(0, ge=0)
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: PositiveInt | None = None

    def settings(self):
        from lipsum_ft.data.images import LoaderSettings

        return LoaderSettings(self.workers, self.pin_memory, self.persistent_workers, self.prefetch_factor)


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


def problems_of(model: type[BaseModel], group: str, value: Any) -> tuple[BaseModel | None, list[str]]:
    """``value`` validated as ``model``, or None and one message per failure naming its dotted key."""
    try:
        return model.model_validate(value), []
    except ValidationError as error:
        return None, [
            f"{'.'.join(str(p) for p in (group, *item['loc']))}: {item['msg']} (got {item.get('input')!r})"
            for item in error.errors()
        ]


Group = TypeVar("Group", bound=GroupParams)


def parse(model: type[Group], value: Mapping[str, Any]) -> Group:
    """One group parsed inside a node (nodes receive plain dicts from Kedro); the project hook has
    already checked the groups against each other before any node ran."""
    validated, problems = problems_of(model, model.group, value)
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    return validated  # type: ignore[return-value]
