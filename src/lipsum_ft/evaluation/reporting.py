"""Plain-text renderings of results for people: Markdown tables."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def domain_table(title: str, results: Mapping[str, Mapping[str, float]], reference: str | None = None) -> str:
    """A Markdown table, one row per domain (accuracy/ECE in %, NLL raw), plus the mean over domains."""
    lines = [f"### {title}", "", "| domain | acc % | NLL | ECE % | n |", "|---|---:|---:|---:|---:|"]
    for domain, m in results.items():
        mark = " (reference)" if domain == reference else ""
        lines.append(
            f"| {domain}{mark} | {100 * m['acc']:.1f} | {m['nll']:.3f} | "
            f"{100 * m['ece']:.1f} | {int(m['n'])} |"
        )
    if results:
        mean = {k: sum(m[k] for m in results.values()) / len(results) for k in ("acc", "nll", "ece")}
        lines.append(
            f"| **mean** | {100 * mean['acc']:.1f} | {mean['nll']:.3f} | {100 * mean['ece']:.1f} | |"
        )
    return "\n".join(lines) + "\n"


def variant_summary(results) -> pd.DataFrame:
    """One row per variant: reference and shift-mean accuracy, ECE, NLL, energy gap and feature distortion."""
    rows = []
    for variant, part in results.groupby("variant", sort=False):
        ref, shift = part[part["role"] == "reference"], part[part["role"] == "shift"]
        first = part.iloc[0]
        rows.append(
            {
                "variant": variant,
                "kind": first["kind"],
                "method": first["method"],
                "alpha": first["alpha"],
                "ref_acc": ref["acc"].mean(),
                "shift_acc": shift["acc"].mean(),
                "ref_ece": ref["ece"].mean(),
                "shift_ece": shift["ece"].mean(),
                "ref_nll": ref["nll"].mean(),
                "shift_nll": shift["nll"].mean(),
                "energy_gap": shift["energy_gap"].mean(),
                "feature_distortion": shift["feature_distortion"].mean(),
                **{f"acc_{d}": a for d, a in zip(part["domain"], part["acc"], strict=True)},
            }
        )
    return pd.DataFrame(rows)


def reported_variants(summary, alpha: float) -> list[str]:
    """The variants a summary shows: zero-shot, each fine-tuned method, WiSE at ``alpha``, TPGM."""
    keep = summary["kind"].isin(["zeroshot", "finetuned", "tpgm"]) | (
        (summary["kind"] == "wise") & ((summary["alpha"] - alpha).abs() < 1e-9)
    )
    return summary.loc[keep, "variant"].tolist()


def summary_markdown(
    results, alpha: float, tpgm_summary: Mapping[str, Mapping[str, float]] | None = None
) -> str:
    """The results table people read: accuracy and calibration on the reference domain and under shift."""
    summary = variant_summary(results).set_index("variant")
    domains = list(dict.fromkeys(results["domain"]))
    reference = results.loc[results["role"] == "reference", "domain"].iloc[0]
    head = [
        "variant",
        f"ref acc ({reference})",
        "shift acc (mean)",
        *[f"{d}" for d in domains if d != reference],
        "ref ECE",
        "shift ECE",
        "shift NLL",
        "energy gap",
        "feature distortion",
    ]
    lines = [
        f"### Results on the {results['split'].iloc[0]} split (accuracy and ECE in %)",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for variant in reported_variants(summary.reset_index(), alpha):
        row = summary.loc[variant]
        cells = [f"{100 * row['ref_acc']:.1f}", f"**{100 * row['shift_acc']:.1f}**"]
        cells += [f"{100 * row[f'acc_{d}']:.1f}" for d in domains if d != reference]
        cells += [
            f"{100 * row['ref_ece']:.1f}",
            f"{100 * row['shift_ece']:.1f}",
            f"{row['shift_nll']:.3f}",
            f"{row['energy_gap']:.4f}",
            f"{row['feature_distortion']:.4f}",
        ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"WiSE rows use alpha = {alpha}; the energy gap is the shift-domain mean, "
        "zero-shot text tower, fixed random texts; the feature distortion is the shift-domain mean of "
        "the squared distance between unit image features of the variant and of zero-shot.",
    ]
    if tpgm_summary:
        ratios = ", ".join(f"{m}: {s['mean_ratio']:.2f}" for m, s in tpgm_summary.items())
        lines.append(f"TPGM mean projection ratio (1 = fine-tuned weights kept): {ratios}.")
    return "\n".join(lines) + "\n"


def flat_metrics(results) -> dict[str, float]:
    """``<variant>.<split>.<domain>.<metric>`` plus per-variant ``reference``/``shift_mean`` keys, for DVC."""
    out: dict[str, float] = {}
    for row in results.itertuples():
        for metric in ("acc", "nll", "ece", "energy_gap", "feature_distortion"):
            out[f"{row.variant}.{row.split}.{row.domain}.{metric}"] = round(float(getattr(row, metric)), 6)
    split = results["split"].iloc[0]
    for row in variant_summary(results).itertuples():
        out[f"{row.variant}.{split}.reference.acc"] = round(float(row.ref_acc), 6)
        out[f"{row.variant}.{split}.shift_mean.acc"] = round(float(row.shift_acc), 6)
        out[f"{row.variant}.{split}.shift_mean.ece"] = round(float(row.shift_ece), 6)
    return out


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
    return (
        f"Best on shift accuracy: {best}, {100 * row['delta_shift_mean']:+.1f} "
        f"± {100 * row['delta_shift_std']:.1f} points over {reference} "
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
            f"{100 * getattr(row, f'{c}_mean'):.1f} ± {100 * _zero_if_nan(getattr(row, f'{c}_std')):.1f}"
            for c in ("ref_acc", "shift_acc", "ref_ece", "shift_ece")
        ]
        delta = (
            f"{100 * row.delta_shift_mean:+.1f} ± {100 * _zero_if_nan(row.delta_shift_std):.1f}"
            if row.paired_seeds == row.paired_seeds and row.paired_seeds
            else "–"
        )
        cost = f"{row.ms_per_step_mean:.0f}" if row.ms_per_step_mean == row.ms_per_step_mean else "–"
        ratio = f"{row.cost_vs_reference:.2f}" if row.cost_vs_reference == row.cost_vs_reference else "–"
        gap = f"{row.energy_gap_mean:.4f} ± {_zero_if_nan(row.energy_gap_std):.4f}"
        lines.append(
            f"| {row.arm} | {row.seeds} | {pct[0]} | **{pct[1]}** | {delta} | "
            f"{pct[2]} | {pct[3]} | {gap} | {cost} | {ratio} |"
        )
    lines += [
        "",
        best_strategy_verdict(summary, strategies, reference),
        "ms/step is the median training step (data, forward, backward, update) of each run, "
        "averaged over seeds, measured in this run.",
    ]
    return "\n".join(lines) + "\n"


def _zero_if_nan(value: float) -> float:
    return 0.0 if value != value else value
