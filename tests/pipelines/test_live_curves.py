"""Live curves of real `kedro run`s at conf/test sizes (the session's chain): pretraining and fine-tuning
write DVCLive series fed by the rows of their own log datasets, one point per log block plus the val
points, and the series grow while the run is still going."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.kedro_helpers import linked_after_zeroshot

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def series(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / "plots" / "metrics" / f"{name}.tsv", sep="\t")


def test_pretraining_streams_one_point_per_block(chain):
    log = pd.read_csv(chain / "data/08_reporting/pretrain_log.csv")
    loss = series(chain / "dvclive/pretrain", "train/loss")
    assert loss["step"].tolist() == [50, 100, 150, 200, 250, 300]  # conf/test: 300 steps, log_every 50
    assert loss["loss"].tolist() == pytest.approx(log.set_index("step").loc[loss["step"], "loss"].tolist())
    assert set(series(chain / "dvclive/pretrain", "train/logit_scale")["step"]) == set(loss["step"])


def test_fine_tuning_streams_the_rows_of_its_log_one_per_block_and_the_val_points(chain):
    log = pd.read_csv(chain / "data/08_reporting/finetune_log.csv")
    folder = chain / "dvclive/finetune"
    for method in ("ft", "lipsum"):
        rows = log[log["method"] == method].set_index("step")
        loss = series(folder, f"{method}-seed0/train/loss")
        assert loss["step"].tolist() == [2, 4, 6, 8]  # conf/test: 8 steps, log_every 2
        assert loss["loss"].tolist() == pytest.approx(rows.loc[loss["step"], "loss"].tolist(), rel=1e-12)
        val = series(folder, f"{method}-seed0/val/acc")
        assert val["step"].tolist() == [4, 8]  # eval_every 4
        assert val["acc"].tolist() == pytest.approx(rows.loc[[4, 8], "val_acc"].tolist(), rel=1e-12)
    assert (folder / "plots/metrics/lipsum-seed0/train/reg.tsv").is_file()  # each loss term


def test_the_series_grow_while_the_run_goes(chain, tmp_path):
    prepared = linked_after_zeroshot(chain, tmp_path / "project")
    curve = prepared / "dvclive/finetune/plots/metrics/ft-seed0/train/loss.tsv"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    params = "finetune.method=ft,finetune.steps=240,finetune.eval_every=80,finetune.checkpoint_every=0"
    run = subprocess.Popen(
        [str(BIN / "kedro"), "run", "--pipeline=finetune", "--env=test", f"--params={params}"],
        cwd=prepared,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []  # rows of the loss series, read while the run is alive
    while run.poll() is None:
        if curve.is_file():
            seen.append(len(curve.read_text().splitlines()) - 1)
        time.sleep(0.05)
    assert run.returncode == 0, run.stderr.read()[-3000:]
    final = len(curve.read_text().splitlines()) - 1
    growing = sorted(set(seen) - {final})
    print(f"rows seen while running: {growing[:5]}...{growing[-3:]} of {final}")
    assert final == 120  # 240 steps, one point per block of 2
    assert len(growing) >= 3, f"saw {sorted(set(seen))} before the run ended"
