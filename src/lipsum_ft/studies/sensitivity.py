"""Sensitivity of Lipsum-FT to one knob at a time (lambda, M, L), over seeds, paired against the default.

Paired: each seed's difference to the default setting at the same seed (same data order, augmentation
and zero-shot model), so what the seeds share cancels. Intervals resample the test images, the same
resample for both sides of every difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lipsum_ft.evaluation.reporting import mean_std
from lipsum_ft.studies.bootstrap import covers_zero, interval
from lipsum_ft.studies.outcomes import OutcomeMatrices

RUN_METRICS = (
    "ref_acc",
    "shift_acc",
    "ref_ece",
    "shift_ece",
    "energy_gap",
    "feature_distortion",
    "ms_per_step",
)


def run_table(
    scores: pd.DataFrame, candidates: pd.DataFrame, log: pd.DataFrame, batch_size: int
) -> pd.DataFrame:
    """One row per fine-tuning run of the study (its alpha = 1 candidate): scores and median step time."""
    runs = candidates[(candidates["source"] == "study") & (candidates["alpha"] == 1.0)]
    table = runs.join(scores, on="candidate")
    step_rate = log.groupby("run")["images_per_s"].median()
    table["ms_per_step"] = 1000 * batch_size / table["run"].map(step_rate)
    return table.reset_index(drop=True)


def paired_draws(
    resampled: np.ndarray, candidates: list[str], runs: pd.DataFrame, setting: str, default: str
) -> tuple[np.ndarray, int]:
    """Bootstrap draws of the seed-mean difference setting - default, and how many seeds paired."""
    column = {name: i for i, name in enumerate(candidates)}
    mine = runs[runs["setting"] == setting].set_index("seed")["candidate"]
    base = runs[runs["setting"] == default].set_index("seed")["candidate"]
    seeds = sorted(set(mine.index) & set(base.index))
    if not seeds:
        return np.full(resampled.shape[0], np.nan), 0
    differences = [resampled[:, column[mine[s]]] - resampled[:, column[base[s]]] for s in seeds]
    return np.mean(differences, axis=0), len(seeds)


def sensitivity_summary(
    runs: pd.DataFrame,
    matrices: OutcomeMatrices,
    counts: dict[str, np.ndarray],
    reference: str,
    default: str,
    level: float,
) -> pd.DataFrame:
    """Per setting: mean and std over seeds, and the paired shift and reference accuracy differences to
    ``default`` with bootstrap intervals (and whether the interval covers zero).
    """
    shift = matrices.resampled("correct", counts, matrices.shift_domains(reference))
    ref = matrices.resampled("correct", counts, [reference])
    settings = list(dict.fromkeys(runs["setting"]))
    grouped = runs.groupby("setting", sort=False)
    table = grouped[list(RUN_METRICS)].agg(["mean", "std"])
    table.columns = [f"{c}_{s}" for c, s in table.columns]
    first = grouped[["method", "knob", "value"]].first()
    table = first.join(table)
    table["seeds"] = grouped["seed"].nunique()
    base = runs[runs["setting"] == default].set_index("seed")
    for setting in settings:
        mine = runs[runs["setting"] == setting].set_index("seed")
        for name, draws_of in (("shift", shift), ("ref", ref)):
            paired = (mine[f"{name}_acc"] - base[f"{name}_acc"]).dropna()
            draws, _ = paired_draws(draws_of, matrices.candidates, runs, setting, default)
            low, high = interval(draws, level)
            table.loc[setting, f"delta_{name}_mean"] = paired.mean() if len(paired) else np.nan
            table.loc[setting, f"delta_{name}_low"] = low
            table.loc[setting, f"delta_{name}_high"] = high
            table.loc[setting, f"delta_{name}_distinguishable"] = (
                setting != default and low == low and not covers_zero((low, high))
            )
    return table.loc[settings].rename_axis("setting").reset_index()


def sensitivity_markdown(summary: pd.DataFrame, default: str, level: float) -> str:
    """The sensitivity table (accuracy and ECE in %) with paired differences and their intervals."""
    lines = [
        f"### Sensitivity of Lipsum-FT (one knob at a time from `{default}`): mean ± std over seeds, "
        f"paired Δ vs `{default}` with {100 * level:.0f}% bootstrap intervals over test images",
        "",
        "| setting | seeds | ref acc | shift acc | Δ shift (paired) | Δ ref (paired) | ref ECE | shift ECE "
        "| energy gap | feature distortion | ms/step |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary.itertuples():
        pct = [
            mean_std(getattr(row, f"{c}_mean"), getattr(row, f"{c}_std"), 1, scale=100)
            for c in ("ref_acc", "shift_acc", "ref_ece", "shift_ece")
        ]
        deltas = [_delta(row, name, default) for name in ("shift", "ref")]
        cost = mean_std(row.ms_per_step_mean, row.ms_per_step_std, 0)
        lines.append(
            f"| {row.setting} | {row.seeds} | {pct[0]} | **{pct[1]}** | {deltas[0]} | {deltas[1]} | "
            f"{pct[2]} | {pct[3]} | {row.energy_gap_mean:.4f} | {row.feature_distortion_mean:.4f} | {cost} |"
        )
    lines += [
        "",
        "Δ in points; an interval that covers zero is marked *indistinguishable*. ms/step is the median "
        "training step of each run (data, forward, backward, update), mean ± std over seeds, measured in "
        "this run; a loaded machine moves the means between runs by more than the seeds' spread.",
    ]
    return "\n".join(lines) + "\n"


def _delta(row, name: str, default: str) -> str:
    if row.setting == default:
        return "–"
    mean, low, high = (getattr(row, f"delta_{name}_{k}") for k in ("mean", "low", "high"))
    if mean != mean:
        return "–"
    verdict = "" if getattr(row, f"delta_{name}_distinguishable") else " *indistinguishable*"
    return f"{100 * mean:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]{verdict}"
