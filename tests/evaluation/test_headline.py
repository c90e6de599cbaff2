"""The chain's DVC metric: a few numbers per reported variant, named so DVC reads no nesting in them."""

from __future__ import annotations

import pandas as pd
import pytest

from lipsum_ft.evaluation.reporting import headline_metrics


def results() -> pd.DataFrame:
    """Two domains (photo the reference); WiSE at two alphas; made-up scores."""
    variants = [
        ("zeroshot", "zeroshot", "zeroshot", 0.0),
        ("ft", "finetuned", "ft", 1.0),
        ("wise-ft-0.30", "wise", "ft", 0.3),
        ("wise-ft-0.50", "wise", "ft", 0.5),
        ("tpgm-ft", "tpgm", "ft", 1.0),
    ]
    rows = []
    for index, (variant, kind, method, alpha) in enumerate(variants):
        for domain, role, offset in (("photo", "reference", 0.0), ("sketch", "shift", 0.1)):
            rows.append(
                {
                    "variant": variant,
                    "kind": kind,
                    "method": method,
                    "alpha": alpha,
                    "domain": domain,
                    "role": role,
                    "split": "test",
                    "acc": 0.5 + index / 10 + offset,
                    "nll": 1.0,
                    "ece": 0.01 * (index + 1) + offset,
                    "n": 10,
                    "energy_gap": 0.0,
                    "feature_distortion": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_headline_holds_the_asked_metrics_of_the_reported_variants_only():
    headline = headline_metrics(results(), alpha=0.5, metrics=["ref_acc", "shift_acc", "shift_ece"])
    assert list(headline) == ["zeroshot", "ft", "wise-ft", "tpgm-ft"]  # WiSE at the report alpha, no dot
    assert headline["wise-ft"] == pytest.approx({"ref_acc": 0.8, "shift_acc": 0.9, "shift_ece": 0.14})
    assert headline["zeroshot"] == pytest.approx({"ref_acc": 0.5, "shift_acc": 0.6, "shift_ece": 0.11})
    assert sum(len(v) for v in headline.values()) == 12
