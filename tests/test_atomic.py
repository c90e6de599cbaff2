"""Atomic writes: a writer killed at any point leaves the old or the new output (never neither), the next
writer removes what it left, and files get the user's umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lipsum_ft.atomic import atomic_path, recover, staged_folder

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
