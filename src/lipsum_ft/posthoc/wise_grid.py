"""A run's WiSE grid: every fine-tuned method at every alpha, each state made when it is read.

The grid holds methods x alphas states: 22 for two methods and eleven alphas, 88 for all eight
methods, each 330 MiB for a ViT-B/16 image tower and head. Made up front, they would all sit in memory
until the catalog had written the last one. Made on demand, the catalog writes them one by one, and
only the state being written (and the next) is in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lipsum_ft.on_demand import OnDemand
from lipsum_ft.posthoc.state import State
from lipsum_ft.posthoc.variant_names import wise_name
from lipsum_ft.posthoc.wise import wise


def wise_grid(zero: State, tuned: Mapping[str, State], alphas: Sequence[float]) -> OnDemand[State]:
    """WiSE(method, alpha) by variant name (``wise-<method>-<alpha>``), methods in order, then alphas;
    each read of a name merges that state again."""
    cells = {wise_name(method, alpha): (state, alpha) for method, state in tuned.items() for alpha in alphas}
    return OnDemand(cells, lambda name: wise(zero, *cells[name]))
