"""Which distance to the zero-shot model explains robustness: the energy gap (the paper's joint
energy view) or feature distortion (the motivation of LP-FT)?

Both are rank-correlated with shift accuracy over a population of models; the correlations and their
difference get intervals from the same image resamples (accuracy, gap and distortion all resampled).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lipsum_ft.studies.bootstrap import covers_zero, interval, spearman
from lipsum_ft.studies.outcomes import OutcomeMatrices

DIAGNOSTICS = ("energy_gap", "feature_distortion")


def rank_correlations(
    matrices: OutcomeMatrices,
    scores: pd.DataFrame,
    members: list[str],
    counts: dict[str, np.ndarray],
    reference: str,
    level: float,
) -> dict[str, float]:
    """Spearman rho of each diagnostic with shift accuracy over ``members``, with intervals, and the
    difference |rho_energy_gap| - |rho_feature_distortion| (> 0: the energy gap orders them better).
    """
    shift = matrices.shift_domains(reference)
    column = [matrices.candidates.index(m) for m in members]
    scores = scores.loc[members]  # OutcomeMatrices.scores
    accuracy = matrices.resampled("correct", counts, shift)[:, column]
    out: dict[str, float] = {"n": len(members)}
    draws = {}
    for name in DIAGNOSTICS:
        out[f"rho_{name}"] = float(spearman(scores[name].to_numpy(), scores["shift_acc"].to_numpy()))
        draws[name] = spearman(matrices.resampled(name, counts, shift)[:, column], accuracy)
        out[f"rho_{name}_low"], out[f"rho_{name}_high"] = interval(draws[name], level)
    out["abs_rho_difference"] = abs(out["rho_energy_gap"]) - abs(out["rho_feature_distortion"])
    difference = np.abs(draws["energy_gap"]) - np.abs(draws["feature_distortion"])
    out["abs_rho_difference_low"], out["abs_rho_difference_high"] = interval(difference, level)
    out["distinguishable"] = not covers_zero((out["abs_rho_difference_low"], out["abs_rho_difference_high"]))
    return out


def method_profile(runs: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per method (seed means): distortion, energy gap, reference and shift accuracy, and each
    method's rank on both diagnostics (1 = closest to zero-shot).
    """
    columns = ["feature_distortion", "energy_gap", "ref_acc", "shift_acc"]
    table = runs[runs["setting"].isin(methods)].groupby("setting")[columns].mean().loc[methods]
    table["distortion_rank"] = table["feature_distortion"].rank().astype(int)
    table["energy_gap_rank"] = table["energy_gap"].rank().astype(int)
    table["shift_rank"] = table["shift_acc"].rank(ascending=False).astype(int)
    return table.rename_axis("method").reset_index()
