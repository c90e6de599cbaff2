"""Choosing a model (per seed) and a configuration (over seeds) with the criteria of ``selection``,
and how each choice fares on test against the oracle and against the no-trade-off target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lipsum_ft.studies import selection
from lipsum_ft.studies.bootstrap import covers_zero, interval, spearman
from lipsum_ft.studies.outcomes import OutcomeMatrices

ZERO_SHOT = "zeroshot"


def _pick(criterion: str, pool: pd.DataFrame, tolerance: float) -> str:
    if criterion == "reference_accuracy":
        return selection.by_reference_accuracy(pool["ref_val_acc"], pool["ref_val_nll"])
    if criterion == "energy_gap":
        return selection.by_energy_gap(pool["shift_val_energy_gap"])
    if criterion == "accuracy_then_energy_gap":
        return selection.by_accuracy_then_energy_gap(
            pool["ref_val_acc"], pool["shift_val_energy_gap"], tolerance
        )
    return selection.oracle(pool["shift_acc"])


def picks_per_seed(candidates: pd.DataFrame, scores: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per seed and criterion: the candidate picked from that seed's runs x alphas (and zero-shot),
    its test accuracies and its shift-accuracy regret to the oracle.
    """
    table = candidates.set_index("candidate").join(scores)
    study = table[table["source"] == "study"]
    rows = []
    for seed in sorted(study["seed"].dropna().unique()):
        pool = table[(table.index == ZERO_SHOT) | ((table["source"] == "study") & (table["seed"] == seed))]
        best = pool.loc[selection.oracle(pool["shift_acc"]), "shift_acc"]
        for criterion in selection.CRITERIA:
            name = _pick(criterion, pool, tolerance)
            pick = pool.loc[name]
            rows.append(
                {
                    "seed": int(seed),
                    "criterion": criterion,
                    "candidate": name,
                    "setting": pick["setting"],
                    "alpha": pick["alpha"],
                    "ref_val_acc": pick["ref_val_acc"],
                    "shift_val_energy_gap": pick["shift_val_energy_gap"],
                    "ref_acc": pick["ref_acc"],
                    "shift_acc": pick["shift_acc"],
                    "regret": best - pick["shift_acc"],
                    "pool": len(pool),
                }
            )
    return pd.DataFrame(rows)


def choice_summary(picks: pd.DataFrame) -> pd.DataFrame:
    """Per criterion: mean and std over seeds of the pick's reference and shift accuracy and regret."""
    table = picks.groupby("criterion", sort=False)[["ref_acc", "shift_acc", "regret"]].agg(["mean", "std"])
    table.columns = [f"{c}_{s}" for c, s in table.columns]
    table["picks"] = picks.groupby("criterion", sort=False)["candidate"].agg(lambda c: ", ".join(c))
    return table.reset_index()


def gap_accuracy_correlation(
    candidates: pd.DataFrame,
    matrices: OutcomeMatrices,
    counts: dict[str, np.ndarray],
    reference: str,
    level: float,
) -> dict[str, float]:
    """Spearman rho between the label-free energy gap (shift val images) and shift test accuracy over
    every candidate of the study, with an interval over resampled test images (the val gap held fixed).
    """
    members = candidates[(candidates["source"] == "study") | (candidates["candidate"] == ZERO_SHOT)]
    column = [matrices.candidates.index(c) for c in members["candidate"]]
    accuracy = matrices.resampled("correct", counts, matrices.shift_domains(reference))[:, column]
    gaps = members["shift_val_energy_gap"].to_numpy()
    point = float(spearman(gaps, _shift_acc(matrices, reference)[column]))
    low, high = interval(spearman(np.broadcast_to(gaps, accuracy.shape), accuracy), level)
    return {"n": len(members), "rho": point, "rho_low": low, "rho_high": high}


def _shift_acc(matrices: OutcomeMatrices, reference: str) -> np.ndarray:
    return matrices.domain_means("correct")[matrices.shift_domains(reference)].mean(axis=1).to_numpy()


def pareto_front(ref: pd.Series, shift: pd.Series) -> pd.Series:
    """True where no other point is at least as good on both axes and better on one."""
    r, s = ref.to_numpy(), shift.to_numpy()
    dominated = ((r[None, :] >= r[:, None]) & (s[None, :] >= s[:, None])) & (
        (r[None, :] > r[:, None]) | (s[None, :] > s[:, None])
    )
    return pd.Series(~dominated.any(axis=1), index=ref.index)


def configurations(candidates: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Per fine-tuned configuration (setting, alpha > 0): means over seeds of the val criteria and of the
    test accuracies, and whether it lies on the test reference-vs-shift front.
    """
    table = candidates[(candidates["source"] == "study") & (candidates["alpha"] > 0)].join(
        scores, on="candidate"
    )
    grouped = table.groupby(["setting", "alpha"], sort=False)
    configs = grouped[["ref_val_acc", "shift_val_energy_gap", "ref_acc", "shift_acc"]].mean()
    configs["seeds"] = grouped["seed"].nunique()
    configs["method"] = grouped["method"].first()
    configs = configs.reset_index()
    configs.index = [f"{s}@{a:.2f}" for s, a in zip(configs["setting"], configs["alpha"], strict=True)]
    configs["on_front"] = pareto_front(configs["ref_acc"], configs["shift_acc"])
    return configs.rename_axis("configuration")


def pick_against_target(
    configs: pd.DataFrame,
    candidates: pd.DataFrame,
    matrices: OutcomeMatrices,
    counts: dict[str, np.ndarray],
    reference: str,
    baseline: str,
    tolerance: float,
    level: float,
) -> dict[str, float | str | bool]:
    """The configuration criterion (c) picks from seed-mean val scores, against the target: reference
    accuracy at least the baseline's and zero-shot's, shift accuracy at least zero-shot's (3-seed means).
    """
    chosen = selection.by_accuracy_then_energy_gap(
        configs["ref_val_acc"], configs["shift_val_energy_gap"], tolerance
    )
    shift_domains = matrices.shift_domains(reference)
    draws = {
        "ref": matrices.resampled("correct", counts, [reference]),
        "shift": matrices.resampled("correct", counts, shift_domains),
    }
    point = {
        "ref": matrices.domain_means("correct")[reference].to_numpy(),
        "shift": _shift_acc(matrices, reference),
    }

    def members(setting: str, alpha: float) -> list[int]:
        rows = candidates[
            (candidates["source"] == "study")
            & (candidates["setting"] == setting)
            & (candidates["alpha"] == alpha)
        ]
        return [matrices.candidates.index(c) for c in rows["candidate"]]

    yardstick = members(baseline, 1.0)
    zero = [matrices.candidates.index(ZERO_SHOT)]
    comparisons = {
        f"ref_minus_{baseline}": ("ref", yardstick),
        "ref_minus_zeroshot": ("ref", zero),
        "shift_minus_zeroshot": ("shift", zero),
    }

    def versus(configuration: str, prefix: str = "") -> dict[str, float | bool]:
        """The configuration's seed means and its differences to the yardsticks, with intervals."""
        picked = members(configs.loc[configuration, "setting"], configs.loc[configuration, "alpha"])
        found: dict[str, float | bool] = {}
        for side in ("ref", "shift"):
            found[f"{prefix}{side}_acc"] = float(point[side][picked].mean())
        for name, (side, other) in comparisons.items():
            values = point[side]
            found[f"{prefix}{name}"] = float(values[picked].mean() - values[other].mean())
            difference = draws[side][:, picked].mean(axis=1) - draws[side][:, other].mean(axis=1)
            low, high = interval(difference, level)
            found[f"{prefix}{name}_low"], found[f"{prefix}{name}_high"] = low, high
            found[f"{prefix}{name}_indistinguishable"] = covers_zero((low, high))
        found[f"{prefix}target_met"] = all(found[f"{prefix}{name}"] >= 0 for name in comparisons)
        return found

    out: dict[str, float | str | bool] = {"configuration": chosen, "baseline": baseline}
    for side in ("ref", "shift"):
        out[f"{baseline}_{side}_acc"] = float(point[side][yardstick].mean())
        out[f"zeroshot_{side}_acc"] = float(point[side][zero].mean())
    out.update(versus(chosen))
    # reading test labels, for reference only: the best shift accuracy at the target's reference accuracy
    target_ref = max(out[f"{baseline}_ref_acc"], out["zeroshot_ref_acc"])
    reaching = configs[configs["ref_acc"] >= target_ref]
    out["front_best_configuration"] = str(reaching["shift_acc"].idxmax()) if len(reaching) else ""
    if len(reaching):
        out.update(versus(out["front_best_configuration"], prefix="front_best_"))
    return out
