"""Calibrate the embedded benchmark's design: search a grid of its knobs, scoring zero-shot and FT on val.

For each configuration of ``calibration.grid`` (``conf/<env>/calibration.yml``) this renders the data,
pretrains the tiny CLIP and builds the zero-shot head (the ``data``, ``pretrain`` and ``zeroshot``
pipelines, in a scratch project; configurations that share those values share one model), fine-tunes FT
alone (``training.runs.finetune_one``), and measures on **val** splits only: zero-shot and FT accuracy
on every domain, and how far the zero-shot model tells CAR-FT's contexts apart on the reference train
images (``carft_contexts.py``). No regularised method is trained and no test split is read: the
``zeroshot`` pipeline is run with ``zeroshot.split: val``. Every configuration is judged by the criterion
in ``lipsum_ft.studies.calibration`` (committed before any result) and the chosen one is named by its
tie-break. ``--grid`` names the grid of ``calibration.yml`` to search (``grid``, or a later round such
as ``widened_grid``, searched when the first finds nothing that passes). Writes ``<output>/table.csv``,
``table.md``, ``calibration.png`` and ``chosen.json``.

    .venv/bin/python benchmarks/calibrate_benchmark.py --output reports/calibration/first   # calibration.grid
    .venv/bin/python benchmarks/calibrate_benchmark.py --grid widened_grid --output reports/calibration/wide
    .venv/bin/python benchmarks/calibrate_benchmark.py --env test --output /tmp/calibration  # tiny grid
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from carft_contexts import context_statistics, unit_features
from lipsum_ft.atomic import atomic_path
from lipsum_ft.clip.zeroshot import ClipClassifier
from lipsum_ft.data.images import load_split_for
from lipsum_ft.evaluation.scoring import evaluate_domains
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.params.zeroshot import ZeroshotParams
from lipsum_ft.studies.calibration import (
    CalibrationFigures,
    Condition,
    Criterion,
    choose,
    meets_criterion,
    passes,
)
from lipsum_ft.training.runs import finetune_one, reference_data, run_objective, study_params
from project_session import project_copy, project_session

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ("data", "pretrain", "zeroshot")  # groups a Kedro run in the scratch project takes
DOWNSTREAM = ("finetune",)  # the group the fine-tune here takes
SPLIT = "val"  # the only split the study scores


def load_config(project: Path, env: str, grid: str = "grid") -> dict[str, Any]:
    """``calibration`` of conf/base/calibration.yml, a section replaced by conf/<env>'s where it has one;
    its ``grid`` is the section named ``grid`` (a later round's grid, for example)."""
    config = yaml.safe_load((project / "conf/base/calibration.yml").read_text())["calibration"]
    own = project / "conf" / env / "calibration.yml"
    if env != "base" and own.is_file():
        config = {**config, **(yaml.safe_load(own.read_text()) or {}).get("calibration", {})}
    for section in ("criterion", "make_run_estimate", grid):
        if section not in config:
            raise ValueError(f"calibration.{section} is missing from conf/base/calibration.yml")
    return {**config, "grid": config[grid], "grid_name": grid}


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, as {dotted key: value}, in the file's order."""
    for key, values in grid.items():
        if key.split(".")[0] not in UPSTREAM + DOWNSTREAM:
            raise ValueError(
                f"calibration.grid key {key!r} must start with one of {list(UPSTREAM + DOWNSTREAM)}"
            )
        if not isinstance(values, list) or not values:
            raise ValueError(f"calibration.grid.{key} must be a non-empty list of values, got {values!r}")
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def nested(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b.c": 1} -> {"a": {"b": {"c": 1}}}: the runtime parameters a Kedro session takes."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def deep_update(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update``'s values, nested dicts merged key by key (as Kedro merges runtime params)."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        merged = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = deep_update(out[key], value) if merged else value
    return out


def part_of(knobs: Mapping[str, Any], groups: Sequence[str]) -> dict[str, Any]:
    """The knobs whose group is one of ``groups``."""
    return {key: value for key, value in knobs.items() if key.split(".")[0] in groups}


@dataclass
class Upstream:
    """What one (data, pretrain, zeroshot) configuration gives every fine-tune: models, data, times."""

    folder: Path  # the scratch project: the manifest's image paths are relative to it
    clip: Any
    head: dict
    manifest: pd.DataFrame
    classnames: list[str]
    class_groups: dict
    finetune: dict[str, Any]  # params:finetune of the env, before the fine-tune's own knobs
    zeroshot: ZeroshotParams  # how zero-shot scores (batch, bins, device): FT is scored alike
    pretrain_steps: int
    data_s: float
    pretrain_zeroshot_s: float
    val: dict  # every domain's val images at the model's input


def quiet() -> dict[str, Any]:
    """Runtime parameters that keep the scratch runs' own bars off (the study has one bar)."""
    return {
        "pretrain": {"progress": False},
        "zeroshot": {"progress": False, "split": SPLIT},
        "finetune": {"progress": False},
    }


def prepare(folder: Path, env: str, knobs: Mapping[str, Any], data_s: float | None) -> Upstream:
    """Render the data (timed when it renders), pretrain and build the zero-shot head in ``folder``."""
    runtime = deep_update(quiet(), nested(knobs))
    started = time.perf_counter()
    with project_session(folder, env, runtime) as session:
        session.run(pipeline_names=["data"])
    data_s = data_s if data_s is not None else time.perf_counter() - started
    started = time.perf_counter()
    with project_session(folder, env, runtime) as session:
        session.run(pipeline_names=["pretrain", "zeroshot"])
    pretrain_zeroshot_s = time.perf_counter() - started
    with project_session(folder, env, runtime) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        clip, manifest = catalog.load("pretrained_clip"), catalog.load("manifest")
        finetune = parse(FinetuneParams, params["finetune"])
        val = load_split_for(manifest, SPLIT, clip.spec, finetune.loader, False)
        return Upstream(
            folder=folder,
            clip=clip,
            head=catalog.load("zeroshot_head"),
            manifest=manifest,
            classnames=catalog.load("classnames"),
            class_groups=catalog.load("class_groups"),
            finetune=dict(params["finetune"]),
            zeroshot=parse(ZeroshotParams, params["zeroshot"]),
            pretrain_steps=int(params["pretrain"]["steps"]),
            data_s=data_s,
            pretrain_zeroshot_s=pretrain_zeroshot_s,
            val=val,
        )


def val_accuracy(classifier: ClipClassifier, up: Upstream, reference: str) -> tuple[float, float, float]:
    """(reference, mean over shift domains, mean over every domain) val accuracy of ``classifier``."""
    settings = up.zeroshot
    scores = evaluate_domains(
        classifier, up.val, settings.batch_size, settings.ece_bins, False, settings.device, up.class_groups
    )
    accuracy = {domain: metrics["acc"] for domain, metrics in scores.items()}
    shift = [value for domain, value in accuracy.items() if domain != reference]
    return accuracy[reference], sum(shift) / len(shift), sum(accuracy.values()) / len(accuracy)


def measure(up: Upstream, knobs: Mapping[str, Any], estimate: Mapping[str, float]) -> CalibrationFigures:
    """Fine-tune FT under the configuration's finetune knobs, then every figure of the criterion."""
    params = parse(FinetuneParams, deep_update(up.finetune, nested(knobs).get("finetune", {})))
    params = study_params(params, params.seed)
    with contextlib.chdir(up.folder):
        train, val = reference_data(up.manifest, params, up.clip.spec)
    ft, _ = finetune_one("ft", params, up.clip, up.head, up.classnames, train, val)
    scale = float(up.head["logit_scale"])
    zs_ref, zs_shift, zs_mean = val_accuracy(
        ClipClassifier(up.clip.model.eval().visual, up.head["weight"], scale), up, params.reference_domain
    )
    ft_ref, ft_shift, _ = val_accuracy(
        ClipClassifier(ft.model.eval().visual, ft.head["weight"], scale), up, params.reference_domain
    )
    contexts = run_objective("carft", params, up.clip, up.head, up.classnames).contexts
    zero = unit_features(up.clip.model.eval().visual, train.eval_batches(params.eval_batch_size))
    top = context_statistics(contexts, zero, {}, scale)["p0_max_prob_mean"]
    ft_s = float(ft.spec.extra["finetune"]["seconds"])
    make_run_s = (
        up.data_s
        + up.pretrain_zeroshot_s
        + ft_s * (1.0 + float(estimate["lipsum_over_ft"]))
        + float(estimate["other_s"])
    )
    return CalibrationFigures(zs_ref, ft_ref, zs_shift, ft_shift, zs_mean, top, make_run_s)


def table_row(
    order: int, knobs: Mapping[str, Any], steps: int, figures: CalibrationFigures, conditions
) -> dict[str, Any]:
    """One configuration's row: its knobs, figures, margins and verdicts."""
    return {
        "config": order,
        **knobs,
        "pretrain_steps": steps,
        **asdict(figures),
        **{f"margin_{name}": c.margin for name, c in conditions.items()},
        **{f"pass_{name}": c.passed for name, c in conditions.items()},
        "passes": passes(conditions),
    }


def by_upstream(configurations: Sequence[dict[str, Any]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """The configurations (with their grid order) grouped by their data/pretrain/zeroshot values, groups in
    the order they first appear: each group needs one pretrained model."""
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for order, knobs in enumerate(configurations):
        groups.setdefault(json.dumps(part_of(knobs, UPSTREAM), sort_keys=True), []).append((order, knobs))
    return list(groups.values())


def run_study(project: Path, env: str, config: Mapping[str, Any], workdir: Path) -> pd.DataFrame:
    """Every configuration of the grid measured and judged, one table row each, in grid order.

    One scratch project per distinct ``data`` values (the tree renders once there, timed then); one
    pretraining per distinct data/pretrain/zeroshot values; one FT per configuration."""
    criterion = Criterion.from_mapping(config["criterion"])
    configurations = expand_grid(config["grid"])
    folders: dict[str, Path] = {}
    data_seconds: dict[str, float] = {}
    rows: dict[int, dict[str, Any]] = {}
    bar = tqdm(total=len(configurations), desc="calibration", unit="config")
    for group in by_upstream(configurations):
        upstream = part_of(group[0][1], UPSTREAM)
        data_key = json.dumps(part_of(upstream, ("data",)), sort_keys=True)
        if data_key not in folders:
            folders[data_key] = project_copy(workdir / f"data-{len(folders)}", project)
        up = prepare(folders[data_key], env, upstream, data_seconds.get(data_key))
        data_seconds.setdefault(data_key, up.data_s)
        for order, knobs in group:
            figures = measure(up, part_of(knobs, DOWNSTREAM), config["make_run_estimate"])
            conditions = meets_criterion(figures, criterion)
            rows[order] = table_row(order, knobs, up.pretrain_steps, figures, conditions)
            bar.set_postfix(
                ref=f"{100 * (figures.ft_ref_val - figures.zeroshot_ref_val):+.1f}",
                shift=f"{100 * (figures.ft_shift_val - figures.zeroshot_shift_val):+.1f}",
                passes="yes" if passes(conditions) else "no",
            )
            bar.update()
    bar.close()
    return pd.DataFrame([rows[order] for order in sorted(rows)])


def chosen_index(table: pd.DataFrame) -> int | None:
    """The chosen configuration's row, by the criterion's tie-break (None when none passes)."""
    names = [c[len("margin_") :] for c in table.columns if c.startswith("margin_")]
    candidates = [
        (
            int(row["pretrain_steps"]),
            {n: Condition(n, float(row[f"margin_{n}"]), bool(row[f"pass_{n}"])) for n in names},
        )
        for _, row in table.iterrows()
    ]
    return choose(candidates)


def markdown(table: pd.DataFrame, knob_keys: Sequence[str], chosen: int | None, env: str, grid: str) -> str:
    """The table in points (accuracies), with each margin and the chosen configuration marked."""
    head = [
        "config",
        *knob_keys,
        "ZS ref",
        "FT ref",
        "ZS shift",
        "FT shift",
        "ZS mean",
        "top p0",
        "make run s",
    ]
    margins = [c for c in table.columns if c.startswith("margin_")]
    lines = [
        f"### Calibration of the embedded benchmark (env {env}, calibration.{grid}; val splits; "
        "zero-shot and FT only)",
        "",
        "| " + " | ".join([*head, *(m[len("margin_") :] for m in margins), "passes"]) + " |",
        "|" + "---|" * (len(head) + len(margins) + 1),
    ]
    for _, row in table.iterrows():
        accuracies = [
            "zeroshot_ref_val",
            "ft_ref_val",
            "zeroshot_shift_val",
            "ft_shift_val",
            "zeroshot_mean_val",
        ]
        cells = [
            f"{int(row['config'])}{' (chosen)' if row['config'] == chosen else ''}",
            *(str(row[k]) for k in knob_keys),
            *(f"{100 * row[k]:.1f}" for k in accuracies),
            f"{row['context_top_p']:.3f}",
            f"{row['make_run_s']:.0f}",
            *(f"{row[m]:+.0f}" if m.endswith("make_run_time") else f"{100 * row[m]:+.1f}" for m in margins),
            "yes" if row["passes"] else "no",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    verdict = (
        f"Chosen: configuration {chosen} (criterion and tie-break in lipsum_ft/studies/calibration.py)."
        if chosen is not None
        else "No configuration meets every condition: widen the grid (README, Benchmark design)."
    )
    note = "Margins: accuracy conditions in points (top p0 in points of probability), make run in seconds."
    return "\n".join([*lines, "", verdict, note, ""])


def plot(table: pd.DataFrame, chosen: int | None, criterion: Criterion, path: Path) -> None:
    """Per configuration: the trade-off (FT - zero-shot, reference and shift) and the zero-shot model."""
    figure = Figure(figsize=(11, 4.5))
    left, right = figure.subplots(1, 2)
    colours = ["tab:green" if ok else "tab:red" for ok in table["passes"]]
    gain = 100 * (table["ft_ref_val"] - table["zeroshot_ref_val"])
    drop = 100 * (table["zeroshot_shift_val"] - table["ft_shift_val"])
    left.scatter(gain, drop, c=colours)
    left.axvline(100 * criterion.ref_gain_min, ls="--", c="grey")
    left.axhline(100 * criterion.shift_drop_min, ls="--", c="grey")
    left.set(xlabel="FT - zero-shot, reference val (points)", ylabel="zero-shot - FT, shift val (points)")
    right.scatter(100 * table["zeroshot_mean_val"], table["context_top_p"], c=colours)
    right.axvline(100 * criterion.zeroshot_mean_min, ls="--", c="grey")
    right.axhline(criterion.context_top_min, ls="--", c="grey")
    right.set(xlabel="zero-shot val accuracy, six-domain mean (%)", ylabel="mean top p0(context | x)")
    for axis, (x, y) in (
        (left, (gain, drop)),
        (right, (100 * table["zeroshot_mean_val"], table["context_top_p"])),
    ):
        for i, config in enumerate(table["config"]):
            axis.annotate(f"{config}{'*' if config == chosen else ''}", (x.iloc[i], y.iloc[i]), fontsize=7)
    figure.suptitle("Benchmark calibration: green passes every condition, * chosen; dashed: thresholds")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)


def write_outputs(table: pd.DataFrame, config: Mapping[str, Any], env: str, output: Path) -> int | None:
    """table.csv, table.md, calibration.png and chosen.json in ``output``; returns the chosen row."""
    output.mkdir(parents=True, exist_ok=True)
    chosen = chosen_index(table)
    chosen_config = None if chosen is None else int(table.iloc[chosen]["config"])
    with atomic_path(output / "table.csv") as temporary:
        table.to_csv(temporary, index=False)
    text = markdown(table, list(config["grid"]), chosen_config, env, config.get("grid_name", "grid"))
    with atomic_path(output / "table.md") as temporary:
        temporary.write_text(text)
    plot(table, chosen_config, Criterion.from_mapping(config["criterion"]), output / "calibration.png")
    record = None if chosen is None else json.loads(table.iloc[chosen].to_json())
    with atomic_path(output / "chosen.json") as temporary:
        temporary.write_text(json.dumps({"env": env, "chosen": record}, indent=2) + "\n")
    print(text)
    return chosen_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--env", default="base", help="the Kedro env of the runs and of calibration.yml")
    parser.add_argument("--grid", default="grid", help="the grid of calibration.yml to search")
    parser.add_argument("--output", type=Path, default=ROOT / "reports/calibration")
    parser.add_argument(
        "--workdir", type=Path, help="scratch projects here (kept); default: a temporary folder"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # Kedro's run logs would bury the study's progress bar
    project = args.project.resolve()
    config = load_config(project, args.env, args.grid)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="calibration-"))
    try:
        table = run_study(project, args.env, config, workdir.resolve())
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    write_outputs(table, config, args.env, args.output.resolve())


if __name__ == "__main__":
    main()
