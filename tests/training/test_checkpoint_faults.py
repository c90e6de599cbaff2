"""Checkpoints that cannot be trusted: each carries a checksum of its contents, the two last are kept,
a truncated, corrupt or non-finite one is refused with its path and the reason, ``resume: auto`` falls
back to the previous good one and says so (never a fresh start over a bad file), a NaN names a
checkpoint that exists, and a full disk stops a save leaving both files.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
from pathlib import Path

import pytest
import torch

import lipsum_ft.training.checkpoint as checkpoint_module
from lipsum_ft.atomic import OutputWriteError
from lipsum_ft.training.checkpoint import (
    CheckpointError,
    checksum,
    previous_path,
    read_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)
from lipsum_ft.training.loop import NonFiniteLossError, fit
from tests.training.loop_helpers import assert_states_equal, config, fault_at, make

IDENTITY = {"method": "ft"}


def payload(step: int) -> dict:
    return {"step": step, "trainable": {"w": torch.full((64,), 1.625), "b": torch.arange(3.0)}, "log": []}


def test_each_save_keeps_the_one_before_and_carries_a_checksum(tmp_path):
    path = tmp_path / "ft-seed0.pt"
    for step in (2, 4, 6):
        save_checkpoint(path, payload(step), IDENTITY)
    assert previous_path(path) == tmp_path / "ft-seed0.prev.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ft-seed0.prev.pt", "ft-seed0.pt"]
    assert read_checkpoint(path)["step"] == 6 and read_checkpoint(previous_path(path))["step"] == 4
    saved = torch.load(path, weights_only=True)
    assert saved["checksum"] == checksum(saved)
    changed = {**saved, "trainable": {**saved["trainable"], "b": torch.tensor([0.0, 1.0, 2.5])}}
    assert checksum(changed) != saved["checksum"]  # the tensors' bytes are in it
    assert checksum({**saved, "step": 7}) != saved["checksum"]  # and the other values


def test_a_save_that_is_told_the_file_is_bad_keeps_the_previous_one(tmp_path):
    path = tmp_path / "ft-seed0.pt"
    save_checkpoint(path, payload(2), IDENTITY)
    save_checkpoint(path, payload(4), IDENTITY)
    save_checkpoint(path, payload(6), IDENTITY, keep_previous=False)
    assert read_checkpoint(path)["step"] == 6 and read_checkpoint(previous_path(path))["step"] == 2


def truncate(path: Path) -> str:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "cannot read it, truncated or corrupt"


def _first_trainable(saved: dict) -> tuple[str, torch.Tensor]:
    return max(saved["trainable"].items(), key=lambda item: item[1].numel())


def flip_a_tensor_byte(path: Path) -> str:
    raw, saved = bytearray(path.read_bytes()), torch.load(path, weights_only=True)
    name, tensor = _first_trainable(saved)
    position = bytes(raw).index(tensor.contiguous().numpy().tobytes()[:64])
    raw[position + 21] ^= 0x40
    path.write_bytes(bytes(raw))
    flipped = torch.load(path, weights_only=True)  # torch.load still succeeds: only the checksum can tell
    assert checksum(flipped) != saved["checksum"] == flipped["checksum"]
    return "its contents do not match its checksum"


def make_non_finite(path: Path) -> str:
    saved = torch.load(path, weights_only=True)
    name, tensor = _first_trainable(saved)
    tensor.view(-1)[1] = float("nan")
    saved["checksum"] = checksum(saved)  # a file whose checksum is right, written by a broken writer
    torch.save(saved, path)
    return rf"non-finite values in trainable\.{re.escape(name)}"


def delete(path: Path) -> str:  # a kill between the rotation's renames leaves only the previous one
    path.unlink()
    return "missing"


FAULTS = [truncate, flip_a_tensor_byte, make_non_finite]


@pytest.fixture(scope="module")
def finished(setup, tmp_path_factory):
    """An uninterrupted 6-step run checkpointing every 2 steps: its result and its two checkpoints."""
    path = tmp_path_factory.mktemp("finished") / "ckpt.pt"
    result = fit(make(setup), setup[3], setup[4], config(checkpoint_every=2, checkpoint_path=str(path)))
    assert read_checkpoint(path)["step"] == 6 and read_checkpoint(previous_path(path))["step"] == 4
    return result, {p.name: p.read_bytes() for p in path.parent.iterdir()}


def checkpoints_of(finished, folder: Path) -> Path:
    for name, raw in finished[1].items():
        (folder / name).write_bytes(raw)
    return folder / "ckpt.pt"


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bad_checkpoint_is_refused_with_its_path_and_the_reason(tmp_path, fault):
    path = tmp_path / "ft-seed0.pt"
    save_checkpoint(path, payload(2), IDENTITY)
    reason = fault(path)
    with pytest.raises(CheckpointError, match=rf"^refusing checkpoint {path}: {reason}"):
        checkpoint_module.load_checkpoint(path, IDENTITY)


@pytest.mark.parametrize("fault", [*FAULTS, delete])
def test_resume_auto_falls_back_to_the_previous_checkpoint_and_says_so(
    setup, finished, tmp_path, caplog, fault
):
    straight, path = finished[0], checkpoints_of(finished, tmp_path)
    reason = fault(path)
    settings = config(checkpoint_every=2, checkpoint_path=str(path), resume="auto")
    with caplog.at_level(logging.INFO, logger="lipsum_ft.training"):
        resumed = fit(make(setup), setup[3], setup[4], settings)
    warning = [r.getMessage() for r in caplog.records if r.name == "lipsum_ft.training.checkpoint"]
    assert len(warning) == 1, warning
    assert f"checkpoint {path} cannot be used (" in warning[0]
    assert f"resuming from the previous checkpoint {previous_path(path)} (step 4)" in warning[0]
    assert re.search(reason, warning[0])
    assert f"from {previous_path(path)} at step 4 of 6" in caplog.text
    assert [r["step"] for r in resumed.log] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in straight.log]
    assert_states_equal(straight.best_state, resumed.best_state, rtol=0, atol=0)
    # the bad file was replaced by the run's step-6 checkpoint; the good one before it was not rotated away
    assert read_checkpoint(path)["step"] == 6 and read_checkpoint(previous_path(path))["step"] == 4


@pytest.mark.parametrize("resume", ["auto", True])
def test_with_no_good_checkpoint_left_resume_fails_naming_each_file_and_never_starts_afresh(
    setup, finished, tmp_path, resume
):
    path = checkpoints_of(finished, tmp_path)
    truncate(path)
    flip_a_tensor_byte(previous_path(path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(CheckpointError) as caught:
        fit(
            make(setup),
            setup[3],
            setup[4],
            config(checkpoint_every=2, checkpoint_path=str(path), resume=resume),
        )
    message = str(caught.value)
    assert message.startswith("no usable checkpoint to resume from")
    assert f"\n  {path}: cannot read it, truncated or corrupt (" in message
    assert f"\n  {previous_path(path)}: its contents do not match its checksum" in message
    assert "finetune.resume=false" in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing overwritten


def test_resume_true_without_either_file_says_so_and_auto_starts_afresh(setup, tmp_path):
    path = tmp_path / "ckpt.pt"
    assert resume_checkpoint(path, IDENTITY) is None
    with pytest.raises(FileNotFoundError, match=rf"no checkpoint {path} \(nor {previous_path(path)}\)"):
        fit(
            make(setup),
            setup[3],
            setup[4],
            config(checkpoint_every=2, checkpoint_path=str(path), resume=True),
        )


def test_a_nan_after_a_fallback_names_the_previous_checkpoint_which_exists_and_is_finite(
    setup, tmp_path, monkeypatch
):
    path = tmp_path / "ckpt.pt"
    fit(make(setup), setup[3], setup[4], config(checkpoint_every=3, checkpoint_path=str(path), steps=9))
    truncate(path)  # the step-9 checkpoint; the step-6 one is good
    objective = make(setup)
    fault_at(monkeypatch, objective, 7, "nan")  # step 8
    settings = config(checkpoint_every=3, checkpoint_path=str(path), steps=9, resume="auto")
    with pytest.raises(NonFiniteLossError) as caught:
        fit(objective, setup[3], setup[4], settings)
    named = previous_path(path)
    assert "step 8: loss=nan" in str(caught.value)
    assert str(caught.value).endswith(f"last good checkpoint: {named} (step 6)")
    assert read_checkpoint(named)["step"] == 6  # it exists, its checksum holds, and it is finite
    assert checkpoint_module.non_finite(read_checkpoint(named)) == []


class _FullDisk(io.FileIO):
    """A checkpoint file that takes ``room`` bytes, then fails as a full disk does."""

    room = 4096

    def write(self, data):
        if self.tell() + len(data) > self.room:
            super().write(bytes(data)[: max(self.room - self.tell(), 0)])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_a_checkpoint_saved_onto_a_full_disk_stops_the_run_leaving_both_checkpoints(
    setup, tmp_path, monkeypatch
):
    path, opened, before = tmp_path / "ckpt.pt", [], {}

    def disk_fills_at_the_third_save(file, mode):
        opened.append(file)
        if len(opened) < 3:
            return io.FileIO(file, "w")
        before.update({p.name: p.read_bytes() for p in tmp_path.iterdir() if p != Path(file)})
        return _FullDisk(file, "w")

    monkeypatch.setattr(checkpoint_module, "open", disk_fills_at_the_third_save, raising=False)
    with pytest.raises(OutputWriteError) as caught:
        fit(make(setup), setup[3], setup[4], config(checkpoint_every=2, checkpoint_path=str(path)))
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value).startswith(f"[Errno 28] cannot write {path}: No space left on device")
    assert sorted(before) == ["ckpt.prev.pt", "ckpt.pt"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # and no temporary
    assert read_checkpoint(path)["step"] == 4 and read_checkpoint(previous_path(path))["step"] == 2
