"""Ranks agree each step on whether any of them was signalled, over a host-side gloo group.

Two real processes over gloo on the CPU; the GPU side (that a vote never waits for the device) is in
``test_host_sync.py``.
"""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import torch.distributed as dist
import torch.multiprocessing as mp

from lipsum_ft.training.preemption import PreemptionFlag, stop_vote
from tests.training.rank_helpers import free_port

# which ranks are signalled before each vote: rank 1 only, nobody, rank 0 only, both
SIGNALLED = [{1}, set(), {0}, {0, 1}]


def vote_on_rank(rank: int, port: int, folder: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=60)
    )
    answers, groups = [], []
    for signalled in SIGNALLED:
        flag = PreemptionFlag()
        if rank in signalled:
            flag.signal = signal.SIGTERM
        with stop_vote(timedelta(seconds=60)) as vote:
            answers.append(vote.any(flag))
            groups.append(vote.group is not None and vote.group is not dist.group.WORLD)
    dist.destroy_process_group()
    Path(folder, f"rank{rank}.json").write_text(json.dumps({"answers": answers, "own_group": groups}))


def test_every_rank_stops_when_any_rank_was_signalled(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(vote_on_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert seen["answers"] == [True, False, True, True], rank
        assert seen["own_group"] == [True] * 4, rank  # a gloo group of its own, whatever the default


def test_a_process_training_alone_reads_its_own_flag_without_a_collective():
    assert not dist.is_initialized()
    flag = PreemptionFlag()
    with stop_vote(timedelta(seconds=1)) as vote:
        assert vote.group is None
        assert vote.any(flag) is False
        flag.signal = signal.SIGUSR1
        assert vote.any(flag) is True
