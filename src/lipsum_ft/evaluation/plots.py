"""Figures of the evaluation, built with matplotlib's object API (no global pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lipsum_ft.evaluation.reporting import reported_variants, variant_summary

METHOD_COLOURS = {
    "zeroshot": "#444444",
    "ft": "#d62728",
    "lipsum": "#1f77b4",
    "lp": "#8c564b",
    "lpft": "#e377c2",
    "l2sp": "#ff7f0e",
    "kd": "#2ca02c",
    "carft": "#9467bd",
    "flyp": "#17becf",
}
KIND_MARKERS = {"zeroshot": "*", "finetuned": "o", "wise": "s", "tpgm": "D"}


def colour(method: str) -> str:
    """The colour a method has in every figure (grey for one without its own)."""
    return METHOD_COLOURS.get(method, "#7f7f7f")


def _pooled(reliability: dict[str, Any], variant: str, domains: Sequence[str]) -> dict[str, np.ndarray]:
    """Reliability bins pooled over ``domains`` (counts add; confidence and accuracy are count-weighted)."""
    counts = np.sum([reliability[f"{variant}/{d}"]["count"] for d in domains], axis=0)
    weights = np.maximum(counts, 1)
    conf = (
        np.sum(
            [
                np.multiply(
                    reliability[f"{variant}/{d}"]["confidence"], reliability[f"{variant}/{d}"]["count"]
                )
                for d in domains
            ],
            axis=0,
        )
        / weights
    )
    acc = (
        np.sum(
            [
                np.multiply(reliability[f"{variant}/{d}"]["accuracy"], reliability[f"{variant}/{d}"]["count"])
                for d in domains
            ],
            axis=0,
        )
        / weights
    )
    return {"count": counts, "confidence": conf, "accuracy": acc}


def reliability_diagrams(
    results: pd.DataFrame, reliability: dict[str, Any], variants: Sequence[str]
) -> Figure:
    """One row per variant; reference domain on the left, all shift domains pooled on the right."""
    reference = results.loc[results["role"] == "reference", "domain"].iloc[0]
    shifts = list(dict.fromkeys(results.loc[results["role"] == "shift", "domain"]))
    fig = Figure(figsize=(8, 3.2 * max(1, len(variants))), layout="constrained")
    axes = fig.subplots(max(1, len(variants)), 2, squeeze=False)
    for row, variant in enumerate(variants):
        for col, (title, domains) in enumerate(
            [(f"reference ({reference})", [reference]), ("shift domains (pooled)", shifts)]
        ):
            ax = axes[row][col]
            bins = _pooled(reliability, variant, domains)
            edges = np.linspace(0, 1, len(bins["count"]) + 1)
            centres = (edges[:-1] + edges[1:]) / 2
            filled = bins["count"] > 0
            ax.bar(
                centres[filled],
                bins["accuracy"][filled],
                width=edges[1] - edges[0],
                color=colour(variant),
                alpha=0.75,
                edgecolor="white",
                label="accuracy",
            )
            ax.plot([0, 1], [0, 1], ls="--", color="black", lw=1, label="perfect calibration")
            ax.scatter(bins["confidence"][filled], bins["accuracy"][filled], s=8, color="black", zorder=3)
            part = results[(results["variant"] == variant) & results["domain"].isin(domains)]
            ax.set_title(
                f"{variant}: {title}\n"
                f"acc {100 * part['acc'].mean():.1f}%, ECE {100 * part['ece'].mean():.1f}%",
                fontsize=9,
            )
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence")
            ax.set_ylabel("accuracy")
            if row == 0 and col == 0:
                ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Reliability diagrams (15 equal-width bins)")
    return fig


def wise_curves(results: pd.DataFrame) -> Figure:
    """Reference vs shift-mean accuracy along WiSE's alpha grid, one curve per fine-tuning method."""
    summary = variant_summary(results)
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    for method, part in summary[summary["kind"] == "wise"].groupby("method"):
        part = part.sort_values("alpha")
        ax.plot(
            100 * part["ref_acc"],
            100 * part["shift_acc"],
            "-o",
            ms=3,
            color=colour(method),
            label=f"WiSE({method})",
        )
        for _, point in part.iloc[[0, len(part) // 2, -1]].iterrows():
            ax.annotate(
                f"α={point['alpha']:.1f}",
                (100 * point["ref_acc"], 100 * point["shift_acc"]),
                fontsize=7,
                xytext=(3, -9),
                textcoords="offset points",
            )
    for _, point in summary[summary["kind"].isin(["zeroshot", "tpgm"])].iterrows():
        ax.scatter(
            100 * point["ref_acc"],
            100 * point["shift_acc"],
            marker=KIND_MARKERS[point["kind"]],
            s=90,
            color=colour(point["method"]),
            edgecolor="black",
            zorder=4,
            label=point["variant"],
        )
    ax.set_xlabel("reference-domain accuracy (%)")
    ax.set_ylabel("shift-domain mean accuracy (%)")
    ax.set_title("WiSE: interpolating zero-shot (α=0) and fine-tuned (α=1) weights")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def reference_vs_shift(results: pd.DataFrame, alpha: float) -> Figure:
    """Every reported variant as one point: reference accuracy against shift-mean accuracy."""
    summary = variant_summary(results)
    shown = summary[summary["variant"].isin(reported_variants(summary, alpha))]
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    for _, point in shown.iterrows():
        ax.scatter(
            100 * point["ref_acc"],
            100 * point["shift_acc"],
            marker=KIND_MARKERS[point["kind"]],
            s=70,
            color=colour(point["method"]),
            edgecolor="black",
            zorder=3,
        )
        ax.annotate(
            point["variant"],
            (100 * point["ref_acc"], 100 * point["shift_acc"]),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("reference-domain accuracy (%)")
    ax.set_ylabel("shift-domain mean accuracy (%)")
    ax.set_title("Accuracy on the fine-tuning domain vs under distribution shift")
    ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost points
    handles = [
        ax.scatter([], [], marker=m, color="white", edgecolor="black", label=k)
        for k, m in KIND_MARKERS.items()
    ]
    ax.legend(handles=handles, fontsize=8, title="marker", loc="best")
    ax.grid(alpha=0.3)
    return fig


DIAGNOSTICS = {
    "energy_gap": "energy gap to zero-shot (the paper's view)",
    "feature_distortion": "feature distortion from zero-shot (LP-FT's view)",
}


def energy_gap_vs_shift(results: pd.DataFrame, alpha: float) -> Figure:
    """The paper's diagnostic beside feature distortion: which distance to the zero-shot model goes
    with better shift accuracy?
    """
    summary = variant_summary(results)
    shown = summary[
        summary["variant"].isin(reported_variants(summary, alpha)) & (summary["kind"] != "zeroshot")
    ]
    fig = Figure(figsize=(11, 5), layout="constrained")
    for ax, (column, label) in zip(fig.subplots(1, 2, sharey=True), DIAGNOSTICS.items(), strict=True):
        for _, point in shown.iterrows():
            ax.scatter(
                point[column],
                100 * point["shift_acc"],
                marker=KIND_MARKERS[point["kind"]],
                s=70,
                color=colour(point["method"]),
                edgecolor="black",
                zorder=3,
            )
            ax.annotate(
                point["variant"],
                (point[column], 100 * point["shift_acc"]),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
        title = label
        if len(shown) > 2:
            rho = shown[column].rank().corr(shown["shift_acc"].rank())
            title += f"\n(Spearman ρ = {rho:.2f} over {len(shown)} variants)"
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.12, y=0.08)
        ax.set_xlabel(f"{column.replace('_', ' ')} (shift-domain mean)")
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("shift-domain mean accuracy (%)")
    return fig
