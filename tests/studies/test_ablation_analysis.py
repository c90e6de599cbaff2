"""The ablation study's analysis on small constructed outcomes whose answers are known by hand:
paired differences and their intervals, rank correlations of the two diagnostics, picks and regret,
the Pareto front and the no-trade-off verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lipsum_ft.studies import diagnostics, model_choice, sensitivity
from lipsum_ft.studies.bootstrap import resample_counts
from lipsum_ft.studies.outcomes import OUTCOMES, OutcomeMatrices

N = 60  # images per domain


def _matrices(correct: dict[str, dict[str, list[int]]], extra: dict[str, dict[str, float]] | None = None):
    """candidate -> domain -> indices of the images it gets right; extra: candidate -> outcome -> value."""
    candidates = list(correct)
    domains = list(next(iter(correct.values())))
    values = {}
    for d in domains:
        values[d] = {name: np.zeros((len(candidates), N), dtype=np.float32) for name in OUTCOMES}
        for row, c in enumerate(candidates):
            values[d]["correct"][row, correct[c][d]] = 1
            values[d]["confidence"][row] = 0.8
            for name, value in (extra or {}).get(c, {}).items():
                values[d][name][row] = value
    return OutcomeMatrices(candidates, domains, values)


def test_paired_shift_difference_averages_seedwise_differences_and_brackets_them():
    first = list(range(30))
    # default gets 30 of 60 sketch images right at both seeds; lambda=3 gets 36 (seed 0) and 33 (seed 1)
    correct = {
        "default/seed0@1.00": {"photo": first, "sketch": first},
        "default/seed1@1.00": {"photo": first, "sketch": first},
        "lambda=3/seed0@1.00": {"photo": first, "sketch": list(range(36))},
        "lambda=3/seed1@1.00": {"photo": first, "sketch": list(range(33))},
    }
    matrices = _matrices(correct)
    runs = pd.DataFrame(
        {
            "candidate": list(correct),
            "setting": ["default", "default", "lambda=3", "lambda=3"],
            "seed": [0, 1, 0, 1],
            "method": "lipsum",
            "knob": ["none", "none", "lambda", "lambda"],
            "value": [np.nan, np.nan, 3.0, 3.0],
        }
    ).join(matrices.scores("photo", bins=15), on="candidate")
    runs["ms_per_step"] = [100.0, 110.0, 100.0, 100.0]
    counts = resample_counts(matrices.image_counts(), 400, 0)
    summary = sensitivity.sensitivity_summary(runs, matrices, counts, "photo", "default", 0.95).set_index(
        "setting"
    )
    row = summary.loc["lambda=3"]
    assert row["delta_shift_mean"] == pytest.approx((6 / 60 + 3 / 60) / 2)  # seed-wise, then averaged
    assert row["delta_shift_low"] <= row["delta_shift_mean"] <= row["delta_shift_high"]
    assert row["delta_shift_low"] > 0 and row["delta_shift_distinguishable"]  # right on 3-6 more, never fewer
    assert row["delta_ref_mean"] == 0 and not row["delta_ref_distinguishable"]  # identical reference images
    assert row["shift_acc_std"] == pytest.approx(pd.Series([36 / 60, 33 / 60]).std())
    assert summary.loc["default", "ms_per_step_mean"] == 105.0
    table = sensitivity.sensitivity_markdown(summary.reset_index(), "default", 0.95)
    # step cost as mean ± std over seeds (100 and 110 ms: std 7.07), as load moves it by more between runs
    assert table.count("| 105 ± 7 |") == 1 and table.count("| 100 ± 0 |") == 1


def test_rank_correlations_credit_the_diagnostic_that_orders_the_models():
    # shift accuracy falls as the energy gap grows; feature distortion is shuffled against it
    rights = [50, 45, 40, 35, 30, 25]
    gaps = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]
    distortions = [0.3, 0.1, 0.6, 0.2, 0.5, 0.4]
    correct = {f"m{i}": {"photo": [0], "sketch": list(range(r))} for i, r in enumerate(rights)}
    extra = {
        f"m{i}": {"energy_gap": g, "feature_distortion": x}
        for i, (g, x) in enumerate(zip(gaps, distortions, strict=True))
    }
    matrices = _matrices(correct, extra)
    scores = matrices.scores("photo", bins=15)
    counts = resample_counts(matrices.image_counts(), 300, 1)
    c = diagnostics.rank_correlations(matrices, scores, list(correct), counts, "photo", 0.95)
    expected_distortion = np.corrcoef([3, 1, 6, 2, 5, 4], [6, 5, 4, 3, 2, 1])[0, 1]
    assert c["rho_energy_gap"] == pytest.approx(-1.0)
    assert c["rho_feature_distortion"] == pytest.approx(expected_distortion)
    assert c["abs_rho_difference"] == pytest.approx(1 - abs(expected_distortion)) and c["distinguishable"]


def _candidates_and_scores():
    rows = [
        # candidate, seed, setting, alpha, ref_val_acc, ref_val_nll, val gap, ref test, shift test
        ("zeroshot", np.nan, "zeroshot", 0.0, 0.80, 0.5, 0.0000, 0.82, 0.70),
        ("ft/seed0@1.00", 0, "ft", 1.0, 0.90, 0.3, 0.0040, 0.90, 0.60),
        ("default/seed0@0.50", 0, "default", 0.5, 0.895, 0.3, 0.0005, 0.89, 0.74),
        ("default/seed0@1.00", 0, "default", 1.0, 0.91, 0.3, 0.0010, 0.91, 0.68),
        ("ft/seed1@1.00", 1, "ft", 1.0, 0.88, 0.3, 0.0050, 0.88, 0.62),
        ("default/seed1@0.50", 1, "default", 0.5, 0.89, 0.3, 0.0006, 0.90, 0.73),
        ("default/seed1@1.00", 1, "default", 1.0, 0.90, 0.3, 0.0011, 0.92, 0.69),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "candidate",
            "seed",
            "setting",
            "alpha",
            "ref_val_acc",
            "ref_val_nll",
            "shift_val_energy_gap",
            "ref_acc",
            "shift_acc",
        ],
    )
    frame["source"] = np.where(frame["candidate"] == "zeroshot", "zeroshot", "study")
    frame["method"] = frame["setting"].replace({"default": "lipsum"})
    scores = frame.set_index("candidate")[["ref_acc", "shift_acc"]]
    return frame.drop(columns=["ref_acc", "shift_acc"]), scores


def test_picks_per_seed_and_their_regret_to_the_oracle():
    candidates, scores = _candidates_and_scores()
    picks = model_choice.picks_per_seed(candidates, scores, tolerance=0.01).set_index(["seed", "criterion"])
    assert picks.loc[(0, "reference_accuracy"), "candidate"] == "default/seed0@1.00"
    assert picks.loc[(0, "energy_gap"), "candidate"] == "zeroshot"  # the gap is a distance to zero-shot
    # seed 0: within 1 point of 0.91 are ft (0.90), default@0.5 (0.895 is out) and default@1 -> smallest gap
    assert picks.loc[(0, "accuracy_then_energy_gap"), "candidate"] == "default/seed0@1.00"
    assert picks.loc[(1, "accuracy_then_energy_gap"), "candidate"] == "default/seed1@0.50"
    assert picks.loc[(0, "oracle"), "candidate"] == "default/seed0@0.50"
    assert picks.loc[(0, "reference_accuracy"), "regret"] == pytest.approx(0.74 - 0.68)
    assert picks.loc[(1, "energy_gap"), "regret"] == pytest.approx(0.73 - 0.70)
    summary = model_choice.choice_summary(picks.reset_index()).set_index("criterion")
    assert summary.loc["oracle", "regret_mean"] == 0
    assert summary.loc["accuracy_then_energy_gap", "regret_mean"] == pytest.approx((0.06 + 0.0) / 2)


def test_pareto_front_keeps_only_undominated_points():
    ref = pd.Series([0.90, 0.88, 0.92, 0.88, 0.85], index=list("abcde"))
    shift = pd.Series([0.70, 0.74, 0.65, 0.72, 0.74], index=list("abcde"))
    # d is dominated by b (same ref, lower shift); e by b (lower ref, same shift)
    assert model_choice.pareto_front(ref, shift).to_dict() == {
        "a": True,
        "b": True,
        "c": True,
        "d": False,
        "e": False,
    }


def test_moonshot_compares_the_chosen_configuration_with_ft_and_zero_shot():
    # per seed, on 60 images per domain: configuration default@0.50 beats zero-shot on both sides
    def right(n):
        return list(range(n))

    correct = {
        "zeroshot": {"photo": right(48), "sketch": right(42)},
        "ft/seed0@1.00": {"photo": right(54), "sketch": right(36)},
        "ft/seed1@1.00": {"photo": right(52), "sketch": right(36)},
        "default/seed0@0.50": {"photo": right(55), "sketch": right(50)},
        "default/seed1@0.50": {"photo": right(53), "sketch": right(48)},
    }
    matrices = _matrices(correct)
    candidates = pd.DataFrame(
        {
            "candidate": list(correct),
            "source": ["zeroshot", "study", "study", "study", "study"],
            "setting": ["zeroshot", "ft", "ft", "default", "default"],
            "method": ["zeroshot", "ft", "ft", "lipsum", "lipsum"],
            "seed": [np.nan, 0, 1, 0, 1],
            "alpha": [0.0, 1.0, 1.0, 0.5, 0.5],
            "ref_val_acc": [0.8, 0.9, 0.9, 0.9, 0.9],
            "shift_val_energy_gap": [0.0, 0.004, 0.004, 0.001, 0.001],
        }
    )
    scores = matrices.scores("photo", bins=15)[["ref_acc", "shift_acc"]]
    configs = model_choice.configurations(candidates, scores)
    assert configs.loc["default@0.50", "seeds"] == 2 and configs.loc["default@0.50", "on_front"]
    counts = resample_counts(matrices.image_counts(), 300, 2)
    verdict = model_choice.pick_against_target(
        configs, candidates, matrices, counts, "photo", "ft", 0.01, 0.95
    )
    assert verdict["configuration"] == "default@0.50"  # ties on val accuracy, smaller gap
    assert verdict["ref_minus_ft"] == pytest.approx((55 + 53) / 120 - (54 + 52) / 120)
    assert verdict["shift_minus_zeroshot"] == pytest.approx(49 / 60 - 42 / 60)
    assert verdict["target_met"] and not verdict["shift_minus_zeroshot_indistinguishable"]
    assert verdict["front_best_configuration"] == "default@0.50" and verdict["front_best_target_met"]


@pytest.mark.parametrize(
    ("costs", "stds", "trend"),
    [  # M = 8, 20, 80 (the default), 320
        ((150.0, 160.0, 171.0, 190.0), (3.0, 4.0, 4.4, 5.0), "rises"),
        ((164.0, 154.0, 171.0, 188.0), (3.0, 4.0, 4.4, 5.0), "does not"),  # out of order
        ((150.0, 160.0, 171.0, 190.0), (3.0, 12.0, 4.4, 5.0), "does not"),  # 8 -> 20 within the larger's std
        ((150.0, 160.0, 171.0, 190.0), (12.0, 3.0, 4.4, 5.0), "does not"),  # 8 -> 20 within the smaller's
        ((150.0, 160.0, 153.0, 190.0), (3.0, 4.0, 4.4, 5.0), "does not"),  # the default breaks the order
    ],
)
def test_the_step_cost_sentence_follows_the_measured_costs_and_their_spread(costs, stds, trend):
    # Rows arrive out of order (320, 8, default, 20): the sentence orders them by M, the default at its
    # own M, and says "rises" only when each larger M costs more than the one before by more than either's
    # seed std (a loaded machine moves medians by tens of ms between runs).
    from lipsum_ft.studies.findings import sensitivity_paragraph

    rows = [("default", "none", np.nan, costs[2], stds[2])] + [
        (f"num_texts={m}", "num_texts", float(m), costs[i], stds[i])
        for m, i in zip((320, 8, 20), (3, 0, 1), strict=True)
    ]
    summary = pd.DataFrame(
        [
            {
                "setting": s,
                "method": "lipsum",
                "knob": k,
                "value": v,
                "ms_per_step_mean": c,
                "ms_per_step_std": d,
                "shift_acc_mean": 0.7,
                "ref_acc_mean": 0.9,
                "delta_shift_mean": 0.0,
                "delta_shift_low": -0.01,
                "delta_shift_high": 0.01,
                "delta_shift_distinguishable": False,
            }
            for s, k, v, c, d in rows
        ]
    )
    defaults = {"lambda": 1.0, "num_texts": 80.0, "length": 8.0}
    paragraph = sensitivity_paragraph(summary, "default", defaults)
    line = [x for x in paragraph if x.startswith("- Step cost")][0]
    assert f" {trend} " in line
    order = ["num_texts=8:", "num_texts=20:", "default (num_texts=80):", "num_texts=320:"]
    assert [line.index(setting) for setting in order] == sorted(line.index(setting) for setting in order)
    assert f"num_texts=8: {costs[0]:.0f} ± {stds[0]:.0f} ms" in line
    assert f"default (num_texts=80): {costs[2]:.0f} ± {stds[2]:.0f} ms" in line
    assert line.endswith(f"num_texts=320: {costs[3]:.0f} ± {stds[3]:.0f} ms.")
