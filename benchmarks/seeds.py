"""Fine-tune every method for several seeds on the embedded benchmark and tabulate mean ± std.

Runs `finetune -> posthoc -> evaluate` once per seed in a scratch copy of the project that shares
this project's data and zero-shot model (run `make run` first), then writes
`reports/seeds/results_seed<N>.csv`, `reports/seeds/summary.csv` and `reports/seeds/summary.md`.

    .venv/bin/python benchmarks/seeds.py [--seeds 0 1 2] [--methods ft lp lpft l2sp kd carft flyp lipsum]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from lipsum_ft.evaluation.reporting import variant_summary
from project_session import project_copy, project_session

ROOT = Path(__file__).resolve().parents[1]
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


def aggregate(per_seed: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each variant's reference and shift accuracy,
    ECE, energy gap.
    """
    summaries = pd.concat(
        [variant_summary(part).assign(seed=seed) for seed, part in per_seed.groupby("seed")]
    )
    keep = summaries["kind"].isin(["zeroshot", "finetuned", "tpgm"]) | (
        (summaries["kind"] == "wise") & ((summaries["alpha"] - alpha).abs() < 1e-9)
    )
    columns = ["ref_acc", "shift_acc", "ref_ece", "shift_ece", "energy_gap"]
    table = summaries[keep].groupby("variant", sort=False)[columns].agg(["mean", "std"])
    table.columns = [f"{c}_{s}" for c, s in table.columns]
    return table.reset_index()


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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods", nargs="+", default=["ft", "lp", "lpft", "l2sp", "kd", "carft", "flyp", "lipsum"]
    )
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="the WiSE alpha of the table (the only one evaluated)"
    )
    args = parser.parse_args()
    out = ROOT / "reports" / "seeds"
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    with tempfile.TemporaryDirectory(prefix="lipsum-ft-seeds-") as scratch:
        project = scratch_project(Path(scratch))
        for seed in args.seeds:
            frame = run_seed(project, seed, args.methods, [args.alpha])
            frame.to_csv(out / f"results_seed{seed}.csv", index=False)
            frames.append(frame)
    table = aggregate(pd.concat(frames), args.alpha)
    table.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(markdown(table, args.seeds))
    print(markdown(table, args.seeds))


if __name__ == "__main__":
    main()
