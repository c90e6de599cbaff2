"""Checkpoints: nothing in a file runs code, a resume under other settings is refused naming the keys,
non-finite state is never written, and a run stopped by SIGTERM resumes to the uninterrupted result.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lipsum_ft.training.checkpoint import (
    CheckpointError,
    NonFiniteCheckpointError,
    StaleCheckpointError,
    save_checkpoint,
)
from lipsum_ft.training.loop import NonFiniteLossError, fit
from lipsum_ft.training.preemption import PREEMPTED_EXIT_CODE, Preempted
from tests.training.loop_helpers import assert_states_equal, config, fault_at, make


class _CreatesFile:
    """Unpickling this calls ``open(marker, "w")``: what a crafted checkpoint could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused(setup, tmp_path):
    checkpoint, marker = tmp_path / "ckpt.pt", tmp_path / "pwned"
    torch.save({"step": 2, "payload": _CreatesFile(marker)}, checkpoint)
    with pytest.raises(CheckpointError, match=rf"{checkpoint}: it holds objects .*could run code"):
        fit(
            make(setup),
            setup[3],
            setup[4],
            config(checkpoint_every=2, checkpoint_path=str(checkpoint), resume="auto"),
        )
    assert not marker.exists()


def test_resume_under_other_settings_is_refused_naming_the_keys(setup, tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    first = config(checkpoint_every=2, checkpoint_path=str(checkpoint), identity={"method": "lipsum"})
    fit(make(setup), setup[3], setup[4], first)  # finished: the checkpoint holds step 6
    changed = config(
        checkpoint_every=2,
        checkpoint_path=str(checkpoint),
        resume="auto",
        lr=2e-3,
        crop_scale=(0.5, 1.0),
        identity={"method": "lipsum", "method_settings": {"lambda": 0.5}},
    )
    with pytest.raises(StaleCheckpointError) as caught:
        fit(make(setup), setup[3], setup[4], changed)
    message = str(caught.value)
    assert "train.lr: 0.001 -> 0.002" in message
    assert "train.crop_scale: [0.08, 1.0] -> [0.5, 1.0]" in message
    assert "method_settings.lambda: '<absent>' -> 0.5" in message
    assert "train.steps" not in message and "train.weight_decay" not in message
    # where and how a run executes is not part of its identity: the same run continues
    same = config(checkpoint_every=2, checkpoint_path=str(checkpoint), resume="auto", eval_batch_size=3)
    again = fit(make(setup), setup[3], setup[4], replace(same, identity={"method": "lipsum"}))
    assert again.best_step == torch.load(checkpoint, weights_only=True)["best_step"]


def test_resume_true_without_a_checkpoint_says_so(setup, tmp_path):
    checkpoint = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match=rf"no checkpoint {checkpoint}"):
        fit(
            make(setup),
            setup[3],
            setup[4],
            config(checkpoint_every=2, checkpoint_path=str(checkpoint), resume=True),
        )


def test_non_finite_state_is_never_written_and_the_old_checkpoint_stays(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    save_checkpoint(checkpoint, {"step": 2, "trainable": {"w": torch.ones(3)}}, {"method": "ft"})
    before = checkpoint.read_bytes()
    bad = {"step": 4, "trainable": {"w": torch.tensor([1.0, float("nan"), 2.0])}}
    with pytest.raises(NonFiniteCheckpointError, match=r"step 4: non-finite values in trainable\.w"):
        save_checkpoint(checkpoint, bad, {"method": "ft"})
    assert checkpoint.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


@pytest.mark.parametrize("grad_clip", [None, 1.0])
def test_nan_without_a_checkpoint_names_none(setup, monkeypatch, grad_clip):
    """With clipping too: a non-finite gradient norm is the flush's to report (step, terms, checkpoint),
    not a bare error of the clip, whose check would read the norm back from the device every step."""
    objective = make(setup)
    fault_at(monkeypatch, objective, 1, "nan")  # step 2
    settings = config(checkpoint_every=0, checkpoint_path=None, grad_clip=grad_clip)
    with pytest.raises(NonFiniteLossError, match="step 2: loss=nan.*no checkpoint of this run was written"):
        fit(objective, setup[3], setup[4], settings)


class _SignalAtStep:
    """Training images that send this process ``number`` while step ``at`` is drawn (a real signal)."""

    def __init__(self, data, at: int, number: int):
        self.data, self.at, self.number = data, at, number
        self.labels = data.labels

    def train_batches(self, start, batch_size, augment, rank=0, world=1, device="cpu"):
        batches = self.data.train_batches(start, batch_size, augment, rank, world, device)
        for step, batch in enumerate(batches, start):
            if step == self.at:
                os.kill(os.getpid(), self.number)
            yield batch


def test_a_signalled_run_without_a_checkpoint_path_says_it_will_start_over(setup):
    with pytest.raises(Preempted) as caught:
        fit(make(setup), _SignalAtStep(setup[3], at=2, number=signal.SIGTERM), setup[4], config())
    assert str(caught.value) == (
        f"preempted by signal {int(signal.SIGTERM)} after step 3 of 6; "
        "no checkpoint path: run again, this run starts from its first step"
    )  # no resume=auto advice: there is nothing to resume from


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signalled_run_resumes_bit_identical_to_an_uninterrupted_one(setup, tmp_path, number):
    straight = fit(make(setup), setup[3], setup[4], config())
    checkpoint = tmp_path / "ckpt.pt"
    settings = config(checkpoint_every=4, checkpoint_path=str(checkpoint), resume="auto")
    previous = signal.getsignal(number)
    with pytest.raises(Preempted) as caught:
        fit(make(setup), _SignalAtStep(setup[3], at=2, number=number), setup[4], settings)
    assert caught.value.code == PREEMPTED_EXIT_CODE
    assert f"after step 3 of 6; checkpoint {checkpoint} written" in str(caught.value)
    assert signal.getsignal(number) == previous  # the handler is the caller's again
    assert torch.load(checkpoint, weights_only=True)["step"] == 3  # the step in flight was finished
    resumed = fit(make(setup), setup[3], setup[4], settings)
    assert [r["step"] for r in resumed.log] == [1, 2, 3, 4, 5, 6]
    assert_states_equal(straight.best_state, resumed.best_state, rtol=0, atol=0)
    assert [r["loss"] for r in straight.log] == [r["loss"] for r in resumed.log]
    assert straight.best_step == resumed.best_step
