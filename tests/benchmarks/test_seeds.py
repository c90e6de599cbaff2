"""benchmarks/seeds.py: the per-seed summary, the paired tables against FT and zero-shot, and their outputs.

The seeds' fine-tuning itself is the `finetune -> posthoc -> evaluate` run that the pipeline tests cover;
here the results of three seeds are constructed so that each paired difference is known.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lipsum_ft.studies.seed_intervals import paired_interval
from tests.benchmarks.script_loader import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks/seeds.py"
DOMAINS = [("photo", "reference"), ("sketch", "shift"), ("quickdraw", "shift")]
# (variant, kind, method, alpha) -> per seed: (photo, sketch, quickdraw) accuracy
ACCURACY = {
    ("zeroshot", "zeroshot", "zeroshot", 0.0): [(0.80, 0.70, 0.60)] * 3,
    ("ft", "finetuned", "ft", 1.0): [(0.90, 0.62, 0.50), (0.88, 0.64, 0.54), (0.91, 0.60, 0.52)],
    ("lipsum", "finetuned", "lipsum", 1.0): [(0.91, 0.69, 0.55), (0.90, 0.66, 0.57), (0.92, 0.68, 0.56)],
    ("wise-ft-0.50", "wise", "ft", 0.5): [(0.86, 0.68, 0.58), (0.85, 0.69, 0.58), (0.87, 0.67, 0.59)],
    ("wise-ft-0.30", "wise", "ft", 0.3): [(0.84, 0.70, 0.59), (0.83, 0.70, 0.60), (0.85, 0.69, 0.61)],
}


@pytest.fixture
def seeds(monkeypatch):
    return load_script(monkeypatch, SCRIPT)


def results() -> pd.DataFrame:
    """results.csv rows of three seeds, as the evaluate pipeline writes them."""
    rows = []
    for (variant, kind, method, alpha), per_seed in ACCURACY.items():
        for seed, accuracies in enumerate(per_seed):
            for (domain, role), acc in zip(DOMAINS, accuracies, strict=True):
                rows.append(
                    {
                        "variant": variant,
                        "kind": kind,
                        "method": method,
                        "alpha": alpha,
                        "domain": domain,
                        "role": role,
                        "split": "test",
                        "acc": acc,
                        "nll": 0.5,
                        "ece": 0.05,
                        "n": 360,
                        "energy_gap": 0.001,
                        "feature_distortion": 0.01,
                        "seed": seed,
                    }
                )
    return pd.DataFrame(rows)


def test_per_seed_summary_keeps_wise_at_the_table_alpha_only(seeds):
    summaries = seeds.per_seed_summary(results(), alpha=0.5)
    assert set(summaries["variant"]) == {"zeroshot", "ft", "lipsum", "wise-ft-0.50"}
    lipsum = summaries[summaries["variant"] == "lipsum"].set_index("seed")
    assert lipsum.loc[1, "shift_acc"] == pytest.approx((0.66 + 0.57) / 2)
    assert lipsum.loc[2, "ref_acc"] == pytest.approx(0.92)


def test_paired_against_ft_and_zeroshot(seeds):
    pairs = seeds.paired(seeds.per_seed_summary(results(), 0.5), 0.95)
    index = pairs.set_index(["variant", "against", "metric"])
    shift = [
        (0.69 + 0.55 - 0.62 - 0.50) / 2,
        (0.66 + 0.57 - 0.64 - 0.54) / 2,
        (0.68 + 0.56 - 0.60 - 0.52) / 2,
    ]
    row = index.loc[("lipsum", "ft", "shift_acc")]
    assert (row["mean"], row["low"], row["high"]) == pytest.approx(paired_interval(shift, 0.95))
    assert row["ahead"] == 3
    ref = index.loc[("ft", "zeroshot", "ref_acc")]
    assert ref["mean"] == pytest.approx((0.10 + 0.08 + 0.11) / 3)
    assert ("ft", "ft", "ref_acc") not in index.index and (
        "zeroshot",
        "zeroshot",
        "ref_acc",
    ) not in index.index
    assert ("zeroshot", "ft", "shift_acc") in index.index  # zero-shot's place against FT is reported too


def test_paired_markdown_and_plot(seeds, tmp_path):
    summaries = seeds.per_seed_summary(results(), 0.5)
    pairs = seeds.paired(summaries, 0.95)
    text = seeds.paired_markdown(pairs, 0.95)
    lipsum = next(line for line in text.splitlines() if line.startswith("| lipsum |"))
    mean, low, high = paired_interval([0.06, 0.025, 0.06], 0.95)  # lipsum - ft, shift mean, per seed
    assert f"{100 * mean:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] (3/3)" in lipsum
    ft = next(line for line in text.splitlines() if line.startswith("| ft |"))
    assert ft.count("–") == 2  # FT is not paired with itself
    methods = dict(zip(summaries["variant"], summaries["method"], strict=True))
    seeds.paired_plot(pairs, methods, tmp_path / "paired.png")
    assert (tmp_path / "paired.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
