"""The ablation study's answers in words, generated from its tables (README's "Findings" section).

Every number is read from the study's outputs; every comparison states its interval, and one whose
interval covers zero is called indistinguishable.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lipsum_ft.evaluation.reporting import mean_std

POPULATIONS = {
    "finetuned": "fine-tuned models (every run at α = 1, and the default chain's TPGM)",
    "candidates": "candidates (every run × WiSE α > 0, and TPGM)",
}
CRITERION_NAMES = {
    "reference_accuracy": "(a) reference val accuracy",
    "energy_gap": "(b) energy gap, shift val images (no labels)",
    "accuracy_then_energy_gap": "(c) (a) within tolerance, then smallest (b)",
    "oracle": "(d) oracle: best shift test accuracy",
}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _points(mean: float, low: float, high: float) -> str:
    return f"{100 * mean:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _rho(c: dict[str, Any], name: str) -> str:
    return f"{c[f'rho_{name}']:+.2f} [{c[f'rho_{name}_low']:+.2f}, {c[f'rho_{name}_high']:+.2f}]"


def diagnostics_paragraph(correlations: dict[str, Any], profile: pd.DataFrame, level: float) -> list[str]:
    lines = ["**0. Energy gap or feature distortion?**", ""]
    for population, c in correlations.items():
        difference = c["abs_rho_difference"]
        interval = f"[{c['abs_rho_difference_low']:+.2f}, {c['abs_rho_difference_high']:+.2f}]"
        if not c["distinguishable"]:
            verdict = "the two are indistinguishable"
        elif difference > 0:
            verdict = "the energy gap orders them better"
        else:
            verdict = "feature distortion orders them better"
        lines.append(
            f"- Over {c['n']} {POPULATIONS[population]}, shift accuracy has Spearman "
            f"ρ = {_rho(c, 'energy_gap')} with "
            f"the energy gap and ρ = {_rho(c, 'feature_distortion')} with feature distortion "
            f"({100 * level:.0f}% intervals over test images). |ρ_gap| − |ρ_distortion| = "
            f"{difference:+.2f} {interval}: {verdict}."
        )
    table = profile.set_index("method")
    if "lpft" in table.index:
        lp = table.loc["lpft"]
        others = ", ".join(
            f"{m} {row['feature_distortion']:.4f}" for m, row in table.drop(index="lpft").iterrows()
        )
        rank = int(lp["distortion_rank"])
        closer = "the lowest" if rank == 1 else f"rank {rank} of {len(table)}"
        lines.append(
            f"- LP-FT, designed to distort features less, has {closer} feature distortion "
            f"({lp['feature_distortion']:.4f}; {others}), energy-gap rank {int(lp['energy_gap_rank'])} and "
            f"shift-accuracy rank {int(lp['shift_rank'])} of {len(table)} "
            f"(shift {_pct(lp['shift_acc'])}%, seed means)."
        )
    return lines


def sensitivity_paragraph(summary: pd.DataFrame, default: str, defaults: dict[str, float]) -> list[str]:
    """Paired differences per knob, the best setting, and step cost over M (``defaults``: the default's
    value of each knob)."""
    lines = ["", "**1. Sensitivity to λ, M and L** (paired Δ shift accuracy vs the default, points):", ""]
    for knob, part in summary[summary["knob"] != "none"].groupby("knob", sort=False):
        cells = []
        for row in part.itertuples():
            mark = "" if row.delta_shift_distinguishable else " (indistinguishable)"
            delta = _points(row.delta_shift_mean, row.delta_shift_low, row.delta_shift_high)
            cells.append(f"{row.setting.split('=')[1]}: {delta}{mark}")
        lines.append(f"- {knob}: " + "; ".join(cells) + ".")
    ranked = summary[summary["method"] == "lipsum"].sort_values("shift_acc_mean", ascending=False)
    best = ranked.iloc[0]
    base = summary.set_index("setting").loc[default]
    lines.append(
        f"- Best Lipsum-FT setting on shift accuracy: `{best['setting']}` at {_pct(best['shift_acc_mean'])}% "
        f"(default {_pct(base['shift_acc_mean'])}%, reference {_pct(best['ref_acc_mean'])}% vs "
        f"{_pct(base['ref_acc_mean'])}%)."
    )
    costs = summary[summary["knob"] == "num_texts"]
    if len(costs):
        m = defaults["num_texts"]
        own = pd.DataFrame([{**base.to_dict(), "setting": f"{default} (num_texts={m:g})", "value": m}])
        costs = pd.concat([costs, own]).sort_values("value")  # the default is one M of the order
        cost = "; ".join(
            f"{r.setting}: {mean_std(r.ms_per_step_mean, r.ms_per_step_std, 0)} ms"
            for r in costs.itertuples()
        )
        trend = (
            "rises with M, at every step beyond the seeds' spread"
            if rises_beyond_spread(costs)
            else "does not rise with M beyond the seeds' spread at every step"
        )
        lines.append(f"- Step cost (median step, mean ± std over seeds) {trend}: {cost}.")
    return lines


def rises_beyond_spread(costs: pd.DataFrame) -> bool:
    """Whether each larger M's mean step time exceeds the one before by more than either's seed std:
    on a loaded machine medians move by tens of ms between runs, and an order within that says nothing."""
    rise = costs["ms_per_step_mean"].diff().iloc[1:]
    std = costs["ms_per_step_std"].fillna(0.0)
    spread = pd.concat([std, std.shift()], axis=1).max(axis=1).iloc[1:]
    return bool((rise > spread).all())


def choice_paragraph(choice: pd.DataFrame, gap_correlation: dict[str, float], tolerance: float) -> list[str]:
    lines = [
        "",
        f"**2. Choosing without shift labels** (per seed, every run × WiSE α and zero-shot; "
        f"(c) admits reference val accuracy within {100 * tolerance:.1f} points of the best):",
        "",
        "| criterion | ref test acc | shift test acc | regret to oracle | picks |",
        "|---|---:|---:|---:|---|",
    ]
    for row in choice.itertuples():
        lines.append(
            f"| {CRITERION_NAMES[row.criterion]} | "
            f"{mean_std(row.ref_acc_mean, row.ref_acc_std, 1, scale=100)} | "
            f"{mean_std(row.shift_acc_mean, row.shift_acc_std, 1, scale=100)} | "
            f"{mean_std(row.regret_mean, row.regret_std, 1, scale=100)} | {row.picks} |"
        )
    c = gap_correlation
    lines += [
        "",
        f"Over all {c['n']} candidates, the label-free energy gap and shift test accuracy have Spearman "
        f"ρ = {c['rho']:+.2f} [{c['rho_low']:+.2f}, {c['rho_high']:+.2f}]. Accuracies are mean ± std "
        "over seeds, in %.",
    ]
    return lines


def front_paragraph(front: dict[str, Any], seeds: int) -> list[str]:
    base = front["baseline"]
    met = "met" if front["target_met"] else "not met"
    lines = [
        "",
        "**3. No trade-off left?** Criterion (c) over configurations (seed-mean val scores) chose "
        f"`{front['configuration']}`: reference {_pct(front['ref_acc'])}% "
        f"({base} {_pct(front[f'{base}_ref_acc'])}%, zero-shot {_pct(front['zeroshot_ref_acc'])}%), "
        f"shift {_pct(front['shift_acc'])}% (zero-shot {_pct(front['zeroshot_shift_acc'])}%).",
        "",
    ]
    lines += _differences(front, base, "")
    lines.append(
        f"- Target (reference ≥ {base} and zero-shot, shift ≥ zero-shot, {seeds}-seed means): {met}."
    )
    best = front["front_best_configuration"]
    if best:
        p = "front_best_"
        lines += [
            "- Reading test labels (for reference only): among configurations whose reference accuracy "
            f"reaches the target, the best on shift is `{best}`: reference {_pct(front[p + 'ref_acc'])}%, "
            f"shift {_pct(front[p + 'shift_acc'])}%, target "
            + ("met" if front[p + "target_met"] else "not met")
            + ":",
            *[f"  {line}" for line in _differences(front, base, p)],
        ]
    return lines


def _differences(front: dict[str, Any], base: str, prefix: str) -> list[str]:
    lines = []
    for name, label in (
        (f"ref_minus_{base}", f"reference vs {base}"),
        ("ref_minus_zeroshot", "reference vs zero-shot"),
        ("shift_minus_zeroshot", "shift vs zero-shot"),
    ):
        key = prefix + name
        mark = " (indistinguishable)" if front[f"{key}_indistinguishable"] else ""
        lines.append(f"- {label}: {_points(front[key], front[f'{key}_low'], front[f'{key}_high'])}{mark}")
    return lines


def findings_markdown(
    sensitivity_summary: pd.DataFrame,
    correlations: dict[str, Any],
    profile: pd.DataFrame,
    choice: pd.DataFrame,
    gap_correlation: dict[str, float],
    front: dict[str, Any],
    study,
    default: str,
    defaults: dict[str, float],
) -> str:
    seeds = ", ".join(map(str, study.seeds))
    lines = [
        f"### Findings of the ablation study ({len(study.seeds)} seeds: {seeds}; "
        "generated from reports/ablation/)",
        "",
        *diagnostics_paragraph(correlations, profile, study.bootstrap.level),
        *sensitivity_paragraph(sensitivity_summary, default, defaults),
        *choice_paragraph(choice, gap_correlation, study.tolerance),
        *front_paragraph(front, len(study.seeds)),
    ]
    return "\n".join(lines) + "\n"


def flat_metrics(
    sensitivity_summary: pd.DataFrame,
    correlations: dict[str, Any],
    choice: pd.DataFrame,
    gap_correlation: dict[str, float],
    front: dict[str, Any],
) -> dict[str, float]:
    """Numbers DVC tracks: per setting shift/ref means and paired Δ, correlations, picks, the target."""
    out: dict[str, float] = {}
    for row in sensitivity_summary.itertuples():
        for column in ("shift_acc_mean", "ref_acc_mean", "delta_shift_mean", "ms_per_step_mean"):
            value = getattr(row, column)
            if value == value:
                out[f"sensitivity.{row.setting}.{column}"] = round(float(value), 6)
    for population, c in correlations.items():
        for name in ("rho_energy_gap", "rho_feature_distortion", "abs_rho_difference"):
            out[f"diagnostics.{population}.{name}"] = round(float(c[name]), 6)
    for row in choice.itertuples():
        out[f"choice.{row.criterion}.shift_acc_mean"] = round(float(row.shift_acc_mean), 6)
        out[f"choice.{row.criterion}.regret_mean"] = round(float(row.regret_mean), 6)
    out["choice.gap_vs_shift_rho"] = round(float(gap_correlation["rho"]), 6)
    for key in ("ref_acc", "shift_acc", "ref_minus_zeroshot", "shift_minus_zeroshot"):
        out[f"front.{key}"] = round(float(front[key]), 6)
        if f"front_best_{key}" in front:
            out[f"front.test_best.{key}"] = round(float(front[f"front_best_{key}"]), 6)
    out["front.target_met"] = float(bool(front["target_met"]))
    return out
