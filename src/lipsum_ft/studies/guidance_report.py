"""The guidance study's report: per-run rows, the per-arm summary over seeds (mean, std, paired
difference to the reference strategy, step cost), its Markdown table and its figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lipsum_ft.evaluation.plots import METHOD_COLOURS, colour
from lipsum_ft.evaluation.reporting import mean_std, variant_summary

STUDY_METRICS = ("ref_acc", "shift_acc", "ref_ece", "shift_ece", "energy_gap", "ms_per_step")


def study_runs(results, log, batch_size: int) -> pd.DataFrame:
    """One row per (arm, seed) run of a study: its scores and its median training-step time.

    ``results`` carries ``arm`` and ``seed`` columns; ``log`` is the per-step training log with ``arm``,
    ``seed`` and ``images_per_s`` (data, forward, backward and update; validation excluded).
    """
    scores = variant_summary(results).merge(
        results[["variant", "arm", "seed"]].drop_duplicates(), on="variant"
    )
    steps = log.groupby(["arm", "seed"])["images_per_s"].median().rename("images_per_s").reset_index()
    runs = scores.merge(steps, on=["arm", "seed"], how="left")
    runs["ms_per_step"] = 1000 * batch_size / runs["images_per_s"]
    return runs


def study_summary(runs, reference: str) -> pd.DataFrame:
    """Mean and std over seeds per arm, plus the paired shift-accuracy difference to ``reference``
    and the cost ratio.

    Paired: each seed's difference to the reference arm at the same seed (same data order, augmentation
    and zero-shot model), so seed-to-seed variation common to both arms cancels.
    """
    arms = list(dict.fromkeys(runs["arm"]))
    table = runs.groupby("arm", sort=False)[list(STUDY_METRICS)].agg(["mean", "std"])
    table.columns = [f"{c}_{s}" for c, s in table.columns]
    table["seeds"] = runs.groupby("arm", sort=False)["seed"].nunique()
    base = runs[runs["arm"] == reference].set_index("seed")
    paired = {}
    for arm, part in runs.groupby("arm", sort=False):
        diff = part.set_index("seed")["shift_acc"] - base["shift_acc"]
        diff = diff.dropna()
        paired[arm] = {
            "delta_shift_mean": diff.mean(),
            "delta_shift_std": diff.std(),
            "delta_shift_wins": int((diff > 0).sum()),
            "paired_seeds": len(diff),
        }
    table = table.join(pd.DataFrame.from_dict(paired, orient="index"))
    table["cost_vs_reference"] = table["ms_per_step_mean"] / table.loc[reference, "ms_per_step_mean"]
    return table.loc[arms].rename_axis("arm").reset_index()


def best_strategy_verdict(summary, strategies, reference: str) -> str:
    """Which strategy leads on shift accuracy, by how much, and whether that beats the seed spread.

    "Exceeds the seed spread" means the mean difference is larger than the seed standard deviation of
    both arms' shift accuracy; the paired count says on how many seeds the leader won.
    """
    rows = summary.set_index("arm").loc[list(strategies)]
    best = rows["shift_acc_mean"].idxmax()
    if best == reference:
        runner = rows.drop(index=reference)["shift_acc_mean"].idxmax() if len(rows) > 1 else None
        if runner is None:
            return f"Only {reference} was run."
        gap = rows.loc[reference, "shift_acc_mean"] - rows.loc[runner, "shift_acc_mean"]
        spread = max(rows.loc[reference, "shift_acc_std"], rows.loc[runner, "shift_acc_std"])
        beats = "exceeds" if gap > spread else "does not exceed"
        return (
            f"Best on shift accuracy: {reference} (the paper's guidance), "
            f"{100 * gap:.1f} points above the next, {runner}; "
            f"the gap {beats} the seed spread (std up to {100 * spread:.1f} points)."
        )
    row = rows.loc[best]
    spread = max(row["shift_acc_std"], rows.loc[reference, "shift_acc_std"])
    beats = "exceeds" if row["delta_shift_mean"] > spread else "does not exceed"
    delta = mean_std(row["delta_shift_mean"], row["delta_shift_std"], 1, scale=100, signed=True)
    return (
        f"Best on shift accuracy: {best}, {delta} points over {reference} "
        f"(paired over {int(row['paired_seeds'])} seeds, ahead on {int(row['delta_shift_wins'])}); "
        f"the difference {beats} the seed spread "
        f"(std up to {100 * spread:.1f} points)."
    )


def study_markdown(summary, strategies, reference: str, title: str) -> str:
    """The study's table: mean ± std over seeds (accuracy and ECE in %), paired difference and step cost."""
    lines = [
        f"### {title}",
        "",
        "| arm | seeds | ref acc | shift acc | Δ shift vs "
        + reference
        + " (paired) | ref ECE | shift ECE | energy gap | ms/step | cost × "
        + reference
        + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary.itertuples():
        pct = [
            mean_std(getattr(row, f"{c}_mean"), getattr(row, f"{c}_std"), 1, scale=100)
            for c in ("ref_acc", "shift_acc", "ref_ece", "shift_ece")
        ]
        delta = (
            mean_std(row.delta_shift_mean, row.delta_shift_std, 1, scale=100, signed=True)
            if row.paired_seeds == row.paired_seeds and row.paired_seeds
            else "–"
        )
        cost = mean_std(row.ms_per_step_mean, row.ms_per_step_std, 0)
        ratio = f"{row.cost_vs_reference:.2f}" if row.cost_vs_reference == row.cost_vs_reference else "–"
        gap = mean_std(row.energy_gap_mean, row.energy_gap_std, 4)
        lines.append(
            f"| {row.arm} | {row.seeds} | {pct[0]} | **{pct[1]}** | {delta} | "
            f"{pct[2]} | {pct[3]} | {gap} | {cost} | {ratio} |"
        )
    lines += [
        "",
        best_strategy_verdict(summary, strategies, reference),
        "ms/step is the median training step (data, forward, backward, update) of each run, mean ± std "
        "over seeds, measured in this run; the cost ratio compares the means, which a loaded machine "
        "moves by more than the seeds' spread between runs.",
    ]
    return "\n".join(lines) + "\n"


def study_comparison(runs: pd.DataFrame, summary: pd.DataFrame, reference: str) -> Figure:
    """A guidance study at a glance: shift and reference accuracy per arm (seeds as dots),
    and the step cost.
    """
    arms = summary["arm"].tolist()
    x = np.arange(len(arms))
    fig = Figure(figsize=(4 + 1.3 * len(arms), 4.2), layout="constrained")
    acc_ax, ref_ax, cost_ax = fig.subplots(1, 3, width_ratios=[2, 2, 1.4])
    for ax, metric, label in (
        (acc_ax, "shift_acc", "shift-domain mean accuracy (%)"),
        (ref_ax, "ref_acc", "reference-domain accuracy (%)"),
    ):
        means, stds = 100 * summary[f"{metric}_mean"], 100 * summary[f"{metric}_std"].fillna(0)
        for i, arm in enumerate(arms):  # points, not bars: the axis does not start at zero
            arm_colour = colour(arm) if arm in METHOD_COLOURS else colour("lipsum")
            ax.errorbar(
                i,
                means.iloc[i],
                yerr=stds.iloc[i],
                fmt="D",
                color=arm_colour,
                markeredgecolor="black",
                markersize=8,
                capsize=5,
                zorder=3,
            )
            seeds = runs.loc[runs["arm"] == arm, metric]
            ax.scatter(np.full(len(seeds), i + 0.18), 100 * seeds, s=14, color="black", zorder=3)
        ax.margins(y=0.15)
        ax.set_xticks(x, arms, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    acc_ax.axhline(
        100 * summary.set_index("arm").loc[reference, "shift_acc_mean"],
        ls="--",
        lw=1,
        color="black",
        label=reference,
    )
    acc_ax.legend(fontsize=7, loc="lower right")
    acc_ax.set_title("under shift (diamonds: mean ± std; dots: seeds)", fontsize=9)
    ref_ax.set_title("on the fine-tuning domain", fontsize=9)
    timed = summary[summary["ms_per_step_mean"].notna()]
    cost_ax.barh(
        np.arange(len(timed)),
        timed["ms_per_step_mean"],
        xerr=timed["ms_per_step_std"].fillna(0),
        color="#7f7f7f",
        capsize=3,
    )
    cost_ax.set_yticks(np.arange(len(timed)), timed["arm"], fontsize=8)
    cost_ax.invert_yaxis()
    cost_ax.set_xlabel("ms per training step (median)")
    cost_ax.set_title("step cost", fontsize=9)
    cost_ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Lipsum-FT text-guidance strategies on the embedded benchmark")
    return fig
