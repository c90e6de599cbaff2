"""A run's WiSE grid: every fine-tuned method at every alpha, each state made when it is read.

The grid holds methods x alphas states: 22 for two methods and eleven alphas, 88 for all eight
methods, each 330 MiB for a ViT-B/16 image tower and head. Made up front, they would all sit in memory
until the catalog had written the last one. Deferred, the catalog writes them one by one, and only the
state being written (and the next) is in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial

from lipsum_ft.posthoc.state import State
from lipsum_ft.posthoc.variant_names import wise_name
from lipsum_ft.posthoc.wise import wise


class DeferredStates(Mapping[str, State]):
    """A read-only mapping whose every read of ``states[name]`` makes that state anew and keeps
    nothing: read each once (as the catalog's save and ``load_state_dict`` do), or bind it."""

    def __init__(self, makers: Mapping[str, Callable[[], State]]):
        self._makers = dict(makers)

    def __getitem__(self, name: str) -> State:
        return self._makers[name]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)

    def __repr__(self) -> str:
        return f"DeferredStates({list(self._makers)})"


def wise_grid(zero: State, tuned: Mapping[str, State], alphas: Sequence[float]) -> DeferredStates:
    """WiSE(method, alpha) by variant name (``wise-<method>-<alpha>``), methods in order, then alphas."""
    return DeferredStates(
        {
            wise_name(method, alpha): partial(wise, zero, state, alpha)
            for method, state in tuned.items()
            for alpha in alphas
        }
    )
