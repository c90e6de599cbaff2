"""Atomic writes: a writer killed at any point leaves the old or the new output (never neither), the next
writer removes what it left, and files get the user's umask; a write onto a full disk (ENOSPC while
writing or at the fsync) names its target and leaves the previous output and no temporary.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError

from lipsum_ft.atomic import OutputWriteError, atomic_path, recover, staged_folder

REPO = Path(__file__).resolve().parents[1]


def run_and_get_killed(code: str) -> int:
    """Run ``code`` in a child that SIGKILLs itself where the code says; return the child's pid."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True
    )
    assert child.returncode == -9, child.stderr
    return int(child.stdout.split()[0])


def test_a_folder_swap_killed_between_its_renames_is_restored(tmp_path):
    target = tmp_path / "finetuned"
    target.mkdir()
    (target / "model.bin").write_text("old")
    run_and_get_killed(
        f"""
        import os, signal
        from pathlib import Path
        from lipsum_ft.atomic import staged_folder
        print(os.getpid(), flush=True)
        original = Path.rename
        def rename_then_die(self, to):
            result = original(self, to)
            os.kill(os.getpid(), signal.SIGKILL)  # after "old aside", before "new in"
        Path.rename = rename_then_die
        with staged_folder({str(target)!r}) as staging:
            (staging / "model.bin").write_text("new")
        """
    )
    assert not target.exists()  # the state the kill left: the models hidden in temporaries
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith(".finetuned.old-") for n in leftovers)
    assert any(n.startswith(".finetuned.tmp-") for n in leftovers)
    recover(target)
    assert (target / "model.bin").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finetuned"]


def test_the_next_save_removes_a_killed_writers_temporaries_but_not_a_live_ones(tmp_path):
    target = tmp_path / "ckpt.pt"
    target.write_text("old")
    pid = run_and_get_killed(
        f"""
        import os, signal
        from lipsum_ft.atomic import atomic_path, staged_folder
        print(os.getpid(), flush=True)
        with staged_folder({str(tmp_path / "wise")!r}) as staging:
            (staging / "a.safetensors").write_text("partial")
            with atomic_path({str(target)!r}) as temporary:
                temporary.write_text("half")
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    live = tmp_path / f".ckpt.pt.{os.getppid()}.abcd1234.tmp"  # a concurrent writer that is still running
    live.write_text("in progress")
    assert (tmp_path / "ckpt.pt").read_text() == "old"
    assert any(p.name.startswith(f".ckpt.pt.{pid}.") for p in tmp_path.iterdir())
    with atomic_path(target) as temporary:
        temporary.write_text("new")
    with staged_folder(tmp_path / "wise") as staging:
        (staging / "a.safetensors").write_text("whole")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt.pt", "wise", live.name])


@pytest.mark.parametrize(
    ("umask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_outputs_get_the_users_umask(tmp_path, umask, file_mode, folder_mode):
    previous = os.umask(umask)
    try:
        with atomic_path(tmp_path / "metrics.json") as temporary:
            temporary.write_text("{}")
        with staged_folder(tmp_path / "models") as staging:
            (staging / "a.bin").write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "models").stat().st_mode) == folder_mode


# A full disk: the writer (or the fsync before the rename) fails with ENOSPC part-way through.


def _fills_the_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


_real_fsync = os.fsync


def _fsync_of_a_file_fills_the_disk(descriptor: int) -> None:
    """A file's data does not fit at its fsync (folders still sync: the files' own fsync is tested)."""
    if stat.S_ISREG(os.fstat(descriptor).st_mode):
        _fills_the_disk()
    _real_fsync(descriptor)


def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``, temporaries included, with the bytes of each file."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_keeps_the_old_file_and_the_one_before_and_leaves_no_temporary(
    tmp_path, monkeypatch, where
):
    target, previous = tmp_path / "ckpt.pt", tmp_path / "ckpt.prev.pt"
    target.write_text("old")
    previous.write_text("older")
    before = _listing(tmp_path)
    if where == "fsync":
        monkeypatch.setattr(os, "fsync", _fsync_of_a_file_fills_the_disk)
    with (
        pytest.raises(OutputWriteError) as caught,
        atomic_path(target, previous) as temporary,
        open(temporary, "wb") as handle,
    ):
        handle.write(b"half of the new file")
        if where == "write":
            _fills_the_disk()
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert str(caught.value).startswith(f"[Errno 28] cannot write {target}: No space left on device")
    assert "temporary" in str(caught.value) and caught.value.target == target
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("hard_links", [True, False])
def test_without_a_failure_the_old_file_becomes_the_previous_one(tmp_path, monkeypatch, hard_links):
    if not hard_links:
        monkeypatch.setattr(os, "link", lambda *_: _raises(errno.EPERM))
    target, previous = tmp_path / "ckpt.pt", tmp_path / "ckpt.prev.pt"
    for text in ("first", "second", "third"):
        with atomic_path(target, previous) as temporary:
            temporary.write_text(text)
    assert (target.read_text(), previous.read_text()) == ("third", "second")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.prev.pt", "ckpt.pt"]


def _raises(code: int):
    raise OSError(code, os.strerror(code))


def test_a_failed_final_rename_leaves_both_old_files(tmp_path, monkeypatch):
    target, previous = tmp_path / "ckpt.pt", tmp_path / "ckpt.prev.pt"
    target.write_text("old")
    previous.write_text("older")
    real_replace = os.replace

    def fails_onto_the_target(source, destination):
        if Path(destination) == target:
            _raises(errno.EIO)
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", fails_onto_the_target)
    with (
        pytest.raises(OutputWriteError, match=rf"cannot write {target}: Input/output error"),
        atomic_path(target, previous) as temporary,
    ):
        temporary.write_text("new")
    monkeypatch.undo()
    assert (target.read_text(), previous.read_text()) == ("old", "older")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.prev.pt", "ckpt.pt"]


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_in_a_staged_folder_keeps_the_old_folder(tmp_path, monkeypatch, where):
    target = tmp_path / "wise"
    target.mkdir()
    (target / "a.safetensors").write_text("old")
    before = _listing(tmp_path)
    if where == "fsync":
        monkeypatch.setattr(os, "fsync", _fsync_of_a_file_fills_the_disk)
    with (
        pytest.raises(OutputWriteError, match=rf"cannot write {target}: No space left on device"),
        staged_folder(target) as staging,
    ):
        (staging / "a.safetensors").write_text("new, whole")
        (staging / "b.safetensors").write_text("new, ha")
        if where == "write":
            _fills_the_disk()
    assert _listing(tmp_path) == before


def test_other_errors_in_the_block_pass_through_unchanged(tmp_path):
    with pytest.raises(ValueError, match="^not a write$"), atomic_path(tmp_path / "x.json"):
        raise ValueError("not a write")
    assert list(tmp_path.iterdir()) == []


def _tiny_bundle():
    from lipsum_ft.clip.backbone import ClipBundle, new_model

    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    return ClipBundle(
        model=model, spec=spec, head={"weight": torch.ones(4, 2), "logit_scale": torch.tensor(14.0)}
    )


def test_a_model_saved_onto_a_full_disk_keeps_the_previous_model(tmp_path, monkeypatch):
    """The models' own writer (safetensors, native code) reports ENOSPC in its text only."""
    import lipsum_ft.clip.backbone as backbone
    from lipsum_ft.io.models import ClipModelCollectionDataset, ClipModelDataset

    single, collection = tmp_path / "pretrained_clip", tmp_path / "finetuned"
    ClipModelDataset(str(single)).save(_tiny_bundle())
    ClipModelCollectionDataset(str(collection)).save({"ft": _tiny_bundle(), "lipsum": _tiny_bundle()})
    before = _listing(tmp_path)
    real_save_file = backbone.save_file

    def half_then_full(tensors, filename, *args, **kwargs):
        real_save_file(tensors, filename)
        with open(filename, "r+b") as handle:
            handle.truncate(os.path.getsize(filename) // 2)
        raise RuntimeError(  # what safetensors' Rust writer raises
            "Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
            'message: "No space left on device" })'
        )

    monkeypatch.setattr(backbone, "save_file", half_then_full)
    for dataset, data, target in (
        (ClipModelDataset(str(single)), _tiny_bundle(), single),
        (ClipModelCollectionDataset(str(collection)), {"ft": _tiny_bundle()}, collection),
    ):
        with pytest.raises(DatasetError) as caught:  # Kedro wraps it, keeping the message
            dataset.save(data)
        assert isinstance(caught.value.__cause__, OutputWriteError)
        assert f"[Errno 28] cannot write {target}: No space left on device" in str(caught.value)
    assert _listing(tmp_path) == before


def _half_then_full(path: Path) -> None:
    """What a full disk leaves of a write: half a file, then ENOSPC."""
    path = Path(path)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    _fills_the_disk()


def test_tables_and_tensors_saved_onto_a_full_disk_keep_the_previous_file(tmp_path, monkeypatch):
    import pandas as pd

    import lipsum_ft.io.models as models
    from lipsum_ft.io.files import AtomicCSVDataset, AtomicJSONDataset
    from lipsum_ft.io.models import TensorsDataset

    datasets = {
        "metrics.json": (AtomicJSONDataset, {"accuracy": 0.5}),
        "log.csv": (AtomicCSVDataset, pd.DataFrame({"step": [1, 2], "loss": [2.0, 1.0]})),
        "head.safetensors": (TensorsDataset, {"weight": torch.ones(3)}),
    }
    for name, (kind, data) in datasets.items():
        kind(str(tmp_path / name)).save(data)
    before = _listing(tmp_path)
    write_text, to_csv, save_file = Path.write_text, pd.DataFrame.to_csv, models.save_file
    monkeypatch.setattr(
        Path, "write_text", lambda self, *a, **k: (write_text(self, *a, **k), _half_then_full(self))
    )
    monkeypatch.setattr(
        pd.DataFrame, "to_csv", lambda self, p, **k: (to_csv(self, p, **k), _half_then_full(p))
    )
    monkeypatch.setattr(models, "save_file", lambda t, p: (save_file(t, p), _half_then_full(p)))
    for name, (kind, data) in datasets.items():
        with pytest.raises(DatasetError) as caught:
            kind(str(tmp_path / name)).save(data)
        assert isinstance(caught.value.__cause__, OutputWriteError)
        assert f"cannot write {tmp_path / name}: No space left on device" in str(caught.value)
    monkeypatch.undo()
    assert _listing(tmp_path) == before
