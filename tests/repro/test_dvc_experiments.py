"""What a newcomer meets on the DVC side, on a committed test project after `dvc repro`:
`dvc exp run evaluate -S` on a fine-tuning parameter changes one line of the parameters file and
re-runs the chain from `finetune` only, `dvc exp show` holds the headline metrics and the training
summaries, the README's comparison command fits a terminal 200 columns wide, `dvc plots show` has the
training curves, and DVCLive warns about nothing."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.repro.dvc_helpers import DVC, GIT, REPO, copy_project, sh, stages_run
from tests.scratch import scratch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def experiment(reproduced, request, tmp_path_factory) -> Iterator[tuple[Path, str, str]]:
    """A copy of the session's reproduced project with its results committed, then one
    `dvc exp run evaluate -S ...` of the peak lr, which moves every fine-tuned number of the headline
    (the widest realistic table): the project, what the repro printed, and what the experiment printed."""
    source, repro = reproduced
    with scratch(request, tmp_path_factory, "experiments") as folder:
        root = copy_project(source, folder / "lipsum-ft")
        sh(GIT + ["add", "-A"], root)
        sh(GIT + ["commit", "-qm", "results"], root)
        run = sh(
            DVC + ["exp", "run", "evaluate", "-S", "conf/base/parameters_finetune.yml:finetune.lr=2.0e-4"],
            root,
        )
        yield root, repro, run


def test_an_experiment_changes_one_line_and_reruns_only_the_chain_from_finetune(experiment):
    root, _, run = experiment
    numstat = subprocess.run(
        GIT + ["diff", "HEAD", "--numstat", "--", "conf"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert numstat == ["1", "1", "conf/base/parameters_finetune.yml"], numstat
    assert stages_run(run) == {"finetune", "posthoc", "evaluate"}


DVCLIVE_WARNINGS = re.compile(r"dvclive|save_dvc_exp|save experiment|in outputs of stage", re.IGNORECASE)


def test_dvclive_warns_neither_under_repro_nor_under_the_experiment(experiment):
    _, repro, run = experiment
    for output in (repro, run):
        warned = [line for line in output.splitlines() if DVCLIVE_WARNINGS.search(line)]
        assert not warned, warned


def test_exp_show_holds_the_headline_and_the_training_summaries(experiment):
    root = experiment[0]
    shown = json.loads(sh(DVC + ["exp", "show", "--json"], root).splitlines()[0])
    flat = json.dumps(shown)
    assert "reports/headline.json" in flat and "dvclive/finetune/metrics.json" in flat
    workspace = next(entry for entry in shown if entry["rev"] == "workspace")
    metrics = workspace["data"]["metrics"]
    assert "reports/metrics.json" not in metrics  # the full table is an output, no DVC metric
    headline = metrics["reports/headline.json"]["data"]
    assert {"zeroshot", "ft", "lipsum", "wise-ft", "wise-lipsum", "tpgm-ft", "tpgm-lipsum"} == set(headline)
    assert set(headline["lipsum"]) == {"ref", "shift", "ece"} and set(headline["wise-lipsum"]) == {"shift"}
    assert sum(len(numbers) for numbers in headline.values()) == 12
    training = metrics["dvclive/finetune/metrics.json"]["data"]
    assert {"best_step", "best_val_acc", "loss"} <= training["lipsum-seed0"].keys()


def readme_command(prefix: str) -> list[str]:
    """The README's command that starts with ``prefix`` (its comment cut off), as arguments."""
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith(prefix):
            return shlex.split(line.split("  #")[0])
    raise AssertionError(f"README.md documents no `{prefix}...` command")


def test_the_readme_comparison_fits_a_terminal_200_columns_wide(experiment):
    """The README's `dvc exp show` comparison after an experiment that moves every fine-tuned headline
    number. DVC sizes its table to its full width (it pages it, whatever the terminal), so the longest
    line is the width a reader needs. The former headline (4 numbers of 7 variants) made it 532 wide,
    this one 176."""
    root = experiment[0]
    command = readme_command("dvc exp show --only-changed")
    table = subprocess.run(
        [*DVC, *command[1:]],
        cwd=root,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    width = max(len(line.rstrip()) for line in table.splitlines())
    assert width <= 200, f"{' '.join(command)}: {width} columns\n{table}"
    assert "lipsum.shift" in table and "finetune.lr" in table  # the changed headline and the parameter
    assert "zeroshot.shift" not in table  # only the changed columns


def test_plots_show_draws_the_training_curves(experiment):
    root = experiment[0]
    plots = json.loads(sh(DVC + ["plots", "show", "--json"], root).splitlines()[0])
    chain = ("dvclive/pretrain", "dvclive/finetune")  # the studies did not run: their files are missing
    errors = [e for e in plots.get("errors", []) if e["name"].startswith(chain)]
    assert not errors, errors
    names = set(plots["data"])
    for curve in (
        "dvclive/finetune/plots/metrics/ft-seed0/train/loss.tsv",
        "dvclive/finetune/plots/metrics/lipsum-seed0/train/reg.tsv",
        "dvclive/finetune/plots/metrics/lipsum-seed0/val/acc.tsv",
        "dvclive/pretrain/plots/metrics/train/loss.tsv",
    ):
        assert curve in names, sorted(names)
    points = plots["data"]["dvclive/finetune/plots/metrics/ft-seed0/train/loss.tsv"][0]["content"]["data"][
        "values"
    ]
    assert len(points) >= 2 and all(re.fullmatch(r"\d+", str(p["step"])) for p in points)
