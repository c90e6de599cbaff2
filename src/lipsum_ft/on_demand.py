"""A read-only mapping whose values are made when they are read and never kept.

For collections too large to hold, which their consumers go through one value at a time: a run's
WiSE grid as the catalog writes it, and each state's file as evaluation loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

Value = TypeVar("Value")


class OnDemand(Mapping[str, Value]):
    """``mapping[key]`` calls ``make(key)`` on every read: read each value once (as a save loop and
    ``load_state_dict`` do), or bind it."""

    def __init__(self, keys: Iterable[str], make: Callable[[str], Value]):
        self._keys = dict.fromkeys(keys)  # ordered, and a key test in constant time
        self._make = make

    def __getitem__(self, key: str) -> Value:
        if key not in self._keys:
            raise KeyError(key)
        return self._make(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._keys)})"
