"""The names of a run's model variants, formed and read back in one place: ``zeroshot``, ``<method>``,
``wise-<method>-<alpha>`` and ``tpgm-<method>`` (``posthoc`` forms them, ``evaluate`` reads them,
``benchmarks/gpu_chain.py`` checks that every one was scored)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def wise_name(method: str, alpha: float | None) -> str:
    """WiSE of ``method`` at ``alpha``: ``wise-<method>-<alpha to two decimals>``; ``wise-<method>``
    for ``alpha=None`` (where the alpha is given elsewhere and a dot would read as nesting: DVC keys)."""
    return f"wise-{method}" if alpha is None else f"wise-{method}-{alpha:.2f}"


def tpgm_name(method: str) -> str:
    """TPGM's projection of ``method``: ``tpgm-<method>``."""
    return f"tpgm-{method}"


def variant_names(methods: Iterable[str], alphas: Iterable[float]) -> list[str]:
    """Every variant a run of ``methods`` with the WiSE grid ``alphas`` has: zero-shot, each method,
    each method's WiSE grid, each method's TPGM (what ``evaluate`` scores)."""
    methods, alphas = list(methods), list(alphas)
    return [
        "zeroshot",
        *methods,
        *(wise_name(method, alpha) for method in methods for alpha in alphas),
        *(tpgm_name(method) for method in methods),
    ]


def without_alpha(name: str) -> str:
    """``name`` with a WiSE variant's alpha left out (``wise-lipsum-0.50`` -> ``wise-lipsum``)."""
    described = describe(name)
    return wise_name(described["method"], None) if described["kind"] == "wise" else name


def describe(name: str) -> dict[str, Any]:
    """variant name -> (kind, method, alpha):
    ``zeroshot``, ``<method>``, ``wise-<method>-<alpha>``, ``tpgm-<method>``.
    """
    if name == "zeroshot":
        return {"kind": "zeroshot", "method": "zeroshot", "alpha": 0.0}
    if name.startswith("wise-"):
        _, method, alpha = name.split("-")
        return {"kind": "wise", "method": method, "alpha": float(alpha)}
    if name.startswith("tpgm-"):
        return {"kind": "tpgm", "method": name[5:], "alpha": float("nan")}
    return {"kind": "finetuned", "method": name, "alpha": 1.0}
