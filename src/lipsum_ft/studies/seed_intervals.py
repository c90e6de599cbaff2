"""Paired differences over fine-tuning seeds, with Student-t intervals: how one method compares with another.

Paired: each seed's difference between two variants fine-tuned from the same seed (same data order,
augmentation and zero-shot model), so the seed-to-seed variation common to both cancels. With n seeds,
the interval is mean ± t_{(1+level)/2, n-1} · sd / sqrt(n) of the n differences; it treats the seeds as
independent draws, and says nothing of the test images' own sampling (the ablation's bootstrap does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def paired_interval(differences: Sequence[float], level: float) -> tuple[float, float, float]:
    """(mean, low, high) of the per-seed ``differences``: a two-sided Student-t interval at ``level``."""
    values = np.asarray(differences, dtype=float)
    if values.size < 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"a paired interval needs at least 2 finite differences, got {values.tolist()}")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must lie in (0, 1)")
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1)) * float(values.std(ddof=1))
    half /= math.sqrt(values.size)
    return mean, mean - half, mean + half


def paired_table(per_seed: pd.DataFrame, against: str, metrics: Sequence[str], level: float) -> pd.DataFrame:
    """Every variant's paired difference to ``against``, per metric, over the seeds both have.

    ``per_seed`` has one row per (variant, seed) with the ``metrics`` columns. One row per (variant,
    metric): ``seeds``, ``mean``, ``low``, ``high`` and ``ahead`` (seeds where the variant is higher).
    """
    missing = sorted({"variant", "seed", *metrics} - set(per_seed.columns))
    if missing:
        raise ValueError(f"the per-seed table lacks the columns {missing}")
    if against not in set(per_seed["variant"]):
        raise ValueError(
            f"no variant named {against!r} to pair against; have {sorted(set(per_seed['variant']))}"
        )
    base = per_seed[per_seed["variant"] == against].set_index("seed")
    rows = []
    for variant, part in per_seed.groupby("variant", sort=False):
        if variant == against:
            continue
        for metric in metrics:
            diff = (part.set_index("seed")[metric] - base[metric]).dropna()
            mean, low, high = paired_interval(diff.to_numpy(), level)
            rows.append(
                {
                    "variant": variant,
                    "against": against,
                    "metric": metric,
                    "seeds": len(diff),
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "ahead": int((diff > 0).sum()),
                }
            )
    return pd.DataFrame(rows)
