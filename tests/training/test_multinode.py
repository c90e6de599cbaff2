"""Two "nodes" on this machine: torchrun --nnodes=2 --nproc-per-node=1 over gloo on localhost, each
node starting ``kedro run --pipeline=finetune --env=test`` in its own copy of the project (as if each
node had pulled the inputs). The weights equal a one-process run's, and only global rank 0 wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.kedro_helpers import run_in
from tests.training.rank_helpers import FINETUNE_OUTPUTS, RECIPE, free_port, node_copy, weights

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_two_nodes_under_torchrun_equal_one_process_and_only_rank_zero_writes(chain, tmp_path):
    one = node_copy(chain, tmp_path / "one")
    run_in(one, pipelines=["finetune"], finetune=RECIPE)
    nodes = [node_copy(chain, tmp_path / f"node{rank}") for rank in (0, 1)]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    params = "finetune.num_nodes=2," + ",".join(f"finetune.{k}={v}" for k, v in RECIPE.items())
    procs = [
        subprocess.Popen(
            [
                str(BIN / "torchrun"),
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "--no-python",
                str(BIN / "kedro"),
                "run",
                "--pipeline=finetune",
                "--env=test",
                f"--params={params}",
            ],
            cwd=node,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank, node in enumerate(nodes)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for rank, (proc, out) in enumerate(zip(procs, outputs, strict=True)):
        assert proc.returncode == 0, f"node {rank} failed:\n{out[-4000:]}"

    for relative in FINETUNE_OUTPUTS:  # rank 1 read its inputs and wrote nothing
        assert not (nodes[1] / relative).exists(), relative
    assert (nodes[0] / "data/08_reporting/finetune_log.csv").is_file()
    assert (nodes[0] / "data/06_models/checkpoints").is_dir()  # rank 0 checkpointed
    assert (nodes[0] / "dvclive/finetune/plots/metrics/lipsum-seed0/train/loss.tsv").is_file()  # and streamed
    single, double = weights(one), weights(nodes[0])
    assert single.keys() == double.keys()
    pretrained = load_file(next((chain / "data/06_models/pretrained_clip").rglob("*.safetensors")))
    assert any(  # training moved the weights, so equality below is not the equality of untouched ones
        not torch.equal(v, pretrained[k.split(":")[1].removeprefix("visual.")])
        for k, v in single.items()
        if k.split(":")[1].removeprefix("visual.") in pretrained
    )
    worst = max((single[k] - double[k]).abs().max().item() for k in single)
    print(f"two nodes vs one process: max |diff| = {worst:.3g}")
    for key in single:
        torch.testing.assert_close(double[key], single[key], rtol=1e-5, atol=1e-6)
