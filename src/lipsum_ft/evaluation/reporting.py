"""Plain-text renderings of results for people: Markdown tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from lipsum_ft.posthoc.variant_names import without_alpha


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


# the numbers reports/headline.json may hold for a variant, and the variant_summary column of each
HEADLINE_NUMBERS = {"ref": "ref_acc", "shift": "shift_acc", "ece": "shift_ece"}


def headline_metrics(
    results, alpha: float, picks: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """The dozen numbers experiments are compared by (``dvc exp show``): ``picks`` maps each number
    (``ref``: reference accuracy, ``shift``: mean shift accuracy, ``ece``: mean shift ECE) to the
    variants that report it. Keys stay short, because DVC's table is as wide as its column names:
    ``lipsum.shift``. A WiSE variant is named without its alpha (``wise-lipsum``; the alpha is
    ``evaluate.report_alpha``), so no key holds a dot that DVC would read as nesting. A picked variant
    the run lacks is left out. The full table stays in ``reports/metrics.json`` and ``results.csv``.
    """
    summary = variant_summary(results)
    kept = summary.set_index("variant").loc[reported_variants(summary, alpha)]
    names = {without_alpha(variant): variant for variant in kept.index}
    out: dict[str, dict[str, float]] = {}
    for name, variant in names.items():  # the summary table's order: zero-shot, methods, WiSE, TPGM
        for number, column in HEADLINE_NUMBERS.items():
            if name in picks.get(number, ()):
                out.setdefault(name, {})[number] = round(float(kept.loc[variant, column]), 4)
    return out


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


def mean_std(mean: float, std: float, digits: int, scale: float = 1.0, signed: bool = False) -> str:
    """A seed mean and its spread as every report writes them, "71.0 ± 0.6"; one seed's std (NaN) reads 0,
    and a mean that was not measured (NaN: a run that logged no timing) reads "–"."""
    if mean != mean:
        return "–"
    spread = 0.0 if std != std else std
    head = f"{scale * mean:+.{digits}f}" if signed else f"{scale * mean:.{digits}f}"
    return f"{head} ± {scale * spread:.{digits}f}"
