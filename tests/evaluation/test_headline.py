"""The chain's DVC metric: a few numbers per reported variant, named so DVC reads no nesting in them."""

from __future__ import annotations

import pandas as pd
import pytest

from lipsum_ft.evaluation.reporting import headline_metrics
from lipsum_ft.params.evaluate import EvaluateParams


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


def test_headline_holds_the_picked_numbers_of_the_reported_variants_only():
    picks = {"ref": ["zeroshot", "ft"], "shift": ["ft", "wise-ft", "tpgm-ft", "lipsum"], "ece": ["wise-ft"]}
    headline = headline_metrics(results(), alpha=0.5, picks=picks)
    assert list(headline) == ["zeroshot", "ft", "wise-ft", "tpgm-ft"]  # WiSE at the report alpha, no dot
    assert headline["zeroshot"] == pytest.approx({"ref": 0.5})
    assert headline["ft"] == pytest.approx({"ref": 0.6, "shift": 0.7})
    assert headline["wise-ft"] == pytest.approx({"shift": 0.9, "ece": 0.14})  # ece: the shift ECE
    assert headline["tpgm-ft"] == pytest.approx({"shift": 1.0})
    # lipsum was picked but the run has no such variant: left out, not an error


def test_the_default_headline_is_a_dozen_short_keys():
    """DVC's table is as wide as its column names (``<variant>.<number>``)."""
    picks = EvaluateParams(reference_domain="photo").headline.model_dump()
    keys = [f"{variant}.{number}" for number, variants in picks.items() for variant in variants]
    assert len(keys) == 12 and max(map(len, keys)) <= len("wise-lipsum.shift")
