"""Running git and DVC on a temporary copy of the project, as a fresh clone would have it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DVC = [sys.executable, "-m", "dvc"]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def sh(args: list[str], cwd: Path) -> str:
    """Run with the venv's python first on PATH (as an activated venv would) and no PYTHONPATH: a
    temp or queued experiment must find the project's code in its own copy of the repo."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        DVC_NO_ANALYTICS="1",
        DVC_STUDIO_OFFLINE="1",
        KEDRO_DISABLE_TELEMETRY="1",
        GX_ANALYTICS_ENABLED="false",
    )
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # Output goes to files, not pipes: `dvc queue start` leaves a worker daemon that inherits them, and a
    # pipe would keep this call waiting until that worker exits. stdout and stderr stay apart so that a
    # command's JSON comes first, whatever DVC warns about on stderr.
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        done = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    return stdout + stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def merge_params(path: Path, values: dict) -> None:
    """Merge ``values`` into a parameters file as `dvc exp run -S` writes one (DVC's own writer), so
    the file keeps the committed style and comments and a later -S changes one line."""
    from dvc.utils.collections import merge_dicts
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(path) as data:
        merge_dicts(data, values)


def small_base(conf: Path) -> None:
    """Fold conf/test into conf/base (the stages run --env=base) so the chain takes about a minute."""
    for test_file in (conf / "test").glob("parameters_*.yml"):
        merge_params(conf / "base" / test_file.name, OmegaConf.to_container(OmegaConf.load(test_file)))
    study = conf / "base" / "parameters_guidance.yml"  # two short runs are enough to prove the stage
    merge_params(
        study,
        {"guidance_study": {"strategies": ["random_tokens", "fixed_pool"], "seeds": [0], "baselines": []}},
    )
    ablation = conf / "base" / "parameters_ablation.yml"  # three short runs: ft, the default, one lambda
    merge_params(ablation, {"ablation": {"seeds": [0], "knobs": {"lambda": [0.3], "length": [8]}}})


def untracked(folder: str, names: list[str]) -> set[str]:
    """What a clone would lack: bytecode, local config, and a nested DVC project's cache and tmp."""
    skipped = set(shutil.ignore_patterns("__pycache__", "*.egg-info", "local")(folder, names))
    if Path(folder).name == ".dvc":
        skipped |= {"tmp", "cache", "config.local"} & set(names)
    return skipped


def fresh_project(root: Path) -> Path:
    """The tracked project (with its committed .dvc/config and default remote) under ``root``,
    conf/test sizes folded into conf/base, committed to a new git repository."""
    root.mkdir(parents=True)
    for name in ("pyproject.toml", "dvc.yaml", ".dvcignore", ".gitignore", ".telemetry"):
        shutil.copy(REPO / name, root / name)
    for folder in ("src", "conf", "envs"):  # links stay links (envs/domainnet/src -> ../../src)
        shutil.copytree(REPO / folder, root / folder, symlinks=True, ignore=untracked)
    (root / "conf" / "local").mkdir()
    (root / ".venv").symlink_to(BIN.parent)
    small_base(root / "conf")
    sh(["git", "init", "-q"], root)
    sh(DVC + ["init", "-q"], root)
    shutil.copy(REPO / ".dvc/config", root / ".dvc/config")
    sh(GIT + ["add", "-A"], root)
    sh(GIT + ["commit", "-qm", "init"], root)
    return root


def copy_project(source: Path, target: Path) -> Path:
    """A working copy of a reproduced project (git history, DVC cache and outputs, the .venv link)."""
    shutil.copytree(source, target, symlinks=True)
    return target
