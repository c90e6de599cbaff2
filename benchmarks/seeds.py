"""Fine-tune every method for several seeds on the embedded benchmark and tabulate mean ± std.

Runs `finetune -> posthoc -> evaluate` once per seed in a scratch copy of the project that shares
this project's data and zero-shot model (run `make run` first), then writes
`reports/seeds/results_seed<N>.csv`, `reports/seeds/summary.csv` and `reports/seeds/summary.md`.

    .venv/bin/python benchmarks/seeds.py [--seeds 0 1 2 3 4] [--methods ft lp lpft l2sp kd carft flyp lipsum]

It also pairs every variant with FT and with zero-shot over the seeds (``lipsum_ft.studies.seed_intervals``):
`reports/seeds/paired.csv`, a second table in `summary.md`, and `paired.png`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from lipsum_ft.atomic import atomic_path
from lipsum_ft.evaluation.plots import colour
from lipsum_ft.evaluation.reporting import reported_variants, variant_summary
from lipsum_ft.studies.seed_intervals import paired_table
from project_session import project_copy, project_session

ROOT = Path(__file__).resolve().parents[1]
PAIRED_AGAINST = ("ft", "zeroshot")  # every variant is paired against these
PAIRED_METRICS = ("ref_acc", "shift_acc")
SHARED = [
    "data/01_raw",
    "data/02_intermediate",
    "data/06_models/pretrained_clip",
    "data/06_models/zeroshot_head.safetensors",
]


def scratch_project(folder: Path) -> Path:
    """conf + pyproject copied, upstream artefacts linked read-only-by-convention."""
    project_copy(folder, ROOT)
    for relative in SHARED:
        source = ROOT / relative
        if not source.exists():
            sys.exit(f"{source} is missing: run `make run` first")
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).symlink_to(source)
    return folder


def run_seed(project: Path, seed: int, methods: list[str], alphas: list[float]) -> pd.DataFrame:
    """finetune -> posthoc -> evaluate in ``project`` for one seed
    (a Kedro session: the CLI cannot pass lists).
    """
    overrides = {
        "finetune": {"seed": seed, "methods": methods, "checkpoint_every": 0, "progress": False},
        "posthoc": {"tpgm": {"seed": seed}, "wise": {"alphas": alphas}, "progress": False},
        "evaluate": {"progress": False},
    }
    with project_session(project, "base", overrides) as session:
        session.run(pipeline_names=["finetune", "posthoc", "evaluate"])
    return pd.read_csv(project / "reports/results.csv").assign(seed=seed)


def per_seed_summary(per_seed: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """One row per (variant, seed): reference and shift accuracy, ECE, energy gap; WiSE at ``alpha`` only."""
    frames = []
    for seed, part in per_seed.groupby("seed"):
        summary = variant_summary(part).assign(seed=seed)
        frames.append(summary[summary["variant"].isin(reported_variants(summary, alpha))])
    return pd.concat(frames, ignore_index=True)


def aggregate(summaries: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each variant's reference and shift accuracy,
    ECE, energy gap.
    """
    columns = ["ref_acc", "shift_acc", "ref_ece", "shift_ece", "energy_gap"]
    table = summaries.groupby("variant", sort=False)[columns].agg(["mean", "std"])
    table.columns = [f"{c}_{s}" for c, s in table.columns]
    return table.reset_index()


def paired(summaries: pd.DataFrame, level: float) -> pd.DataFrame:
    """Every variant's paired difference over seeds to FT and to zero-shot, reference and shift accuracy."""
    return pd.concat(
        [paired_table(summaries, against, PAIRED_METRICS, level) for against in PAIRED_AGAINST],
        ignore_index=True,
    )


def paired_markdown(table: pd.DataFrame, level: float) -> str:
    """One row per variant: its paired differences (points) with their intervals, against FT and zero-shot."""
    cell = {
        (row.variant, row.against, row.metric): (
            f"{100 * row.mean:+.1f} [{100 * row.low:+.1f}, {100 * row.high:+.1f}] ({row.ahead}/{row.seeds})"
        )
        for row in table.itertuples()
    }
    columns = [(against, metric) for against in PAIRED_AGAINST for metric in PAIRED_METRICS]
    names = {"ref_acc": "ref", "shift_acc": "shift"}
    lines = [
        f"Paired differences over seeds, in points: mean [{100 * level:.0f} % Student-t interval] "
        "(seeds where the variant is ahead / seeds).",
        "",
        "| variant | " + " | ".join(f"{names[m]} vs {a}" for a, m in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for variant in dict.fromkeys(table["variant"]):
        cells = [cell.get((variant, a, m), "–") for a, m in columns]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_plot(table: pd.DataFrame, methods: dict[str, str], path: Path) -> None:
    """Per variant: paired reference and shift difference to zero-shot, with the intervals as bars
    (coloured by the variant's method, ``methods``: variant -> method)."""
    part = table[table["against"] == "zeroshot"]
    ref = part[part["metric"] == "ref_acc"].set_index("variant")
    shift = part[part["metric"] == "shift_acc"].set_index("variant")
    figure = Figure(figsize=(8, 6))
    axis = figure.subplots()
    for variant in ref.index:
        x, y = 100 * ref.loc[variant], 100 * shift.loc[variant]
        axis.errorbar(
            x["mean"],
            y["mean"],
            xerr=[[x["mean"] - x["low"]], [x["high"] - x["mean"]]],
            yerr=[[y["mean"] - y["low"]], [y["high"] - y["mean"]]],
            fmt="o",
            color=colour(methods.get(variant, variant)),
            alpha=0.8,
        )
        axis.annotate(variant, (x["mean"], y["mean"]), fontsize=7)
    axis.axhline(0, color="grey", lw=0.8)
    axis.axvline(0, color="grey", lw=0.8)
    axis.set(
        xlabel="reference accuracy - zero-shot (points, paired over seeds)",
        ylabel="shift accuracy - zero-shot (points, paired over seeds)",
        title="Every variant against the zero-shot model (bars: 95 % intervals over seeds)",
    )
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)


def markdown(table: pd.DataFrame, seeds: list[int]) -> str:
    lines = [
        f"### Embedded benchmark, {len(seeds)} fine-tuning seeds ({', '.join(map(str, seeds))}): "
        "mean ± std, accuracy and ECE in %",
        "",
        "| variant | ref acc | shift acc | ref ECE | shift ECE | energy gap |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        cells = [
            f"{100 * getattr(row, f'{c}_mean'):.1f} ± {100 * getattr(row, f'{c}_std'):.1f}"
            for c in ("ref_acc", "shift_acc", "ref_ece", "shift_ece")
        ]
        cells.append(f"{row.energy_gap_mean:.4f} ± {row.energy_gap_std:.4f}")
        lines.append(f"| {row.variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--methods", nargs="+", default=["ft", "lp", "lpft", "l2sp", "kd", "carft", "flyp", "lipsum"]
    )
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="the WiSE alpha of the table (the only one evaluated)"
    )
    parser.add_argument("--level", type=float, default=0.95, help="of the paired intervals")
    args = parser.parse_args()
    out = ROOT / "reports" / "seeds"
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    with tempfile.TemporaryDirectory(prefix="lipsum-ft-seeds-") as scratch:
        project = scratch_project(Path(scratch))
        for seed in tqdm(args.seeds, desc="seeds", unit="seed"):
            frame = run_seed(project, seed, args.methods, [args.alpha])
            with atomic_path(out / f"results_seed{seed}.csv") as temporary:
                frame.to_csv(temporary, index=False)
            frames.append(frame)
    summaries = per_seed_summary(pd.concat(frames), args.alpha)
    table, pairs = aggregate(summaries), paired(summaries, args.level)
    text = markdown(table, args.seeds) + "\n" + paired_markdown(pairs, args.level)
    for name, write in (
        ("summary.csv", lambda path: table.to_csv(path, index=False)),
        ("paired.csv", lambda path: pairs.to_csv(path, index=False)),
        ("summary.md", lambda path: path.write_text(text)),
    ):
        with atomic_path(out / name) as temporary:
            write(temporary)
    methods = dict(zip(summaries["variant"], summaries["method"], strict=True))
    paired_plot(pairs, methods, out / "paired.png")
    print(text)


if __name__ == "__main__":
    main()
