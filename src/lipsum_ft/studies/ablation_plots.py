"""Figures of the ablation study: sensitivity per knob, the two diagnostics, the reference-vs-shift front."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lipsum_ft.evaluation.plots import DIAGNOSTICS, METHOD_COLOURS

KNOB_LABELS = {
    "lambda": "λ (weight of the regulariser)",
    "num_texts": "M (texts per step)",
    "length": "L (tokens per text)",
}


def _zero_shot(scored: pd.DataFrame) -> pd.Series:
    return scored[scored["candidate"] == "zeroshot"].iloc[0]


def sensitivity(
    runs: pd.DataFrame, scored: pd.DataFrame, baseline: str, default: str, default_values: dict[str, float]
) -> Figure:
    """Shift accuracy against each knob: seeds as dots, the seed mean as a line, the default's knob
    value included; the baseline's mean and zero-shot as horizontal lines.
    """
    knobs = [k for k in KNOB_LABELS if (runs["knob"] == k).any()]
    fig = Figure(figsize=(4.2 * max(len(knobs), 1), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(knobs), 1), sharey=True))
    base_shift = 100 * runs.loc[runs["setting"] == baseline, "shift_acc"].mean()
    zero_shift = 100 * _zero_shot(scored)["shift_acc"]
    defaults = runs[runs["setting"] == default]
    for ax, knob in zip(axes, knobs, strict=False):
        part = runs[runs["knob"] == knob]
        value = default_values[knob]
        points = pd.concat([part, defaults.assign(value=value)])
        ax.scatter(points["value"], 100 * points["shift_acc"], s=16, color="black", zorder=3, label="seeds")
        means = points.groupby("value")["shift_acc"].mean() * 100
        ax.plot(means.index, means.to_numpy(), "-o", color=METHOD_COLOURS["lipsum"], label="Lipsum-FT mean")
        ax.axvline(value, color="#999999", lw=0.8, ls=":")
        ax.axhline(base_shift, color=METHOD_COLOURS["ft"], ls="--", lw=1, label=f"{baseline} (mean)")
        ax.axhline(zero_shift, color=METHOD_COLOURS["zeroshot"], ls=":", lw=1.2, label="zero-shot")
        ax.set_xscale("log")
        ticks = sorted(points["value"].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(KNOB_LABELS[knob])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("shift-domain mean accuracy (%)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Lipsum-FT sensitivity, one knob at a time (dotted vertical: the default)")
    return fig


def diagnostics(scored: pd.DataFrame, correlations: dict[str, Any]) -> Figure:
    """Shift accuracy against the energy gap and against feature distortion, every candidate."""
    tuned = scored[(scored["source"] == "study") & (scored["alpha"] == 1.0)]
    wise = scored[(scored["source"] == "study") & (scored["alpha"] < 1.0)]
    chain = scored[scored["source"] == "chain"]
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    tuned_rho = correlations.get("finetuned", {})
    for ax, (column, label) in zip(fig.subplots(1, 2, sharey=True), DIAGNOSTICS.items(), strict=True):
        ax.scatter(wise[column], 100 * wise["shift_acc"], s=6, color="#bbbbbb", label="WiSE (α < 1)")
        for method, part in tuned.groupby("method"):
            ax.scatter(
                part[column],
                100 * part["shift_acc"],
                s=28,
                color=METHOD_COLOURS.get(method, "#7f7f7f"),
                edgecolor="black",
                label=method,
                zorder=3,
            )
        ax.scatter(
            chain[column],
            100 * chain["shift_acc"],
            marker="D",
            s=40,
            color="white",
            edgecolor="black",
            label="TPGM",
        )
        title = label
        if tuned_rho:
            title += (
                f"\nfine-tuned models: ρ = {tuned_rho[f'rho_{column}']:+.2f} "
                f"[{tuned_rho[f'rho_{column}_low']:+.2f}, {tuned_rho[f'rho_{column}_high']:+.2f}]"
            )
        ax.set_title(title, fontsize=10)
        ax.set_xscale("symlog", linthresh=max(float(scored[column].replace(0, np.nan).min()), 1e-6))
        ax.set_xlabel(f"{column.replace('_', ' ')} (shift-domain mean, test)")
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("shift-domain mean accuracy (%)")
    fig.axes[0].legend(fontsize=7, loc="lower left")
    return fig


def front(configs: pd.DataFrame, scored: pd.DataFrame, verdict: dict[str, Any]) -> Figure:
    """Every configuration (seed means) on the reference-vs-shift plane with its Pareto front, the
    zero-shot and baseline points, the target corner and criterion (c)'s pick.
    """
    base = verdict["baseline"]
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.subplots()
    for method, part in configs.groupby("method"):
        ax.scatter(
            100 * part["ref_acc"],
            100 * part["shift_acc"],
            s=14,
            alpha=0.7,
            color=METHOD_COLOURS.get(method, "#7f7f7f"),
            label=f"{method} configurations",
        )
    edge = configs[configs["on_front"]].sort_values("ref_acc")
    ax.plot(
        100 * edge["ref_acc"], 100 * edge["shift_acc"], "-", color="black", lw=1, label="Pareto front (test)"
    )
    zero = (100 * verdict["zeroshot_ref_acc"], 100 * verdict["zeroshot_shift_acc"])
    yard = (100 * verdict[f"{base}_ref_acc"], 100 * verdict[f"{base}_shift_acc"])
    ax.scatter(
        *zero,
        marker="*",
        s=220,
        color=METHOD_COLOURS["zeroshot"],
        edgecolor="black",
        label="zero-shot",
        zorder=4,
    )
    ax.scatter(
        *yard,
        marker="s",
        s=70,
        color=METHOD_COLOURS["ft"],
        edgecolor="black",
        label=f"{base} (α = 1)",
        zorder=4,
    )
    ax.scatter(
        100 * verdict["ref_acc"],
        100 * verdict["shift_acc"],
        marker="o",
        s=160,
        facecolor="none",
        edgecolor="#2ca02c",
        lw=2,
        label=f"chosen by (c): {verdict['configuration']}",
        zorder=5,
    )
    corner = (max(zero[0], yard[0]), zero[1])
    ax.axvline(corner[0], color="#2ca02c", ls=":", lw=1)
    ax.axhline(corner[1], color="#2ca02c", ls=":", lw=1)
    ax.fill_between(
        [corner[0], ax.get_xlim()[1]],
        corner[1],
        ax.get_ylim()[1],
        color="#2ca02c",
        alpha=0.08,
        label="no trade-off",
    )
    ax.set_xlabel("reference-domain accuracy (%, test, seed mean)")
    ax.set_ylabel("shift-domain mean accuracy (%, test, seed mean)")
    ax.set_title("Every configuration (setting × WiSE α) against the no-trade-off target")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: no point hidden
    return fig
