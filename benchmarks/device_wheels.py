r"""Wheels for the GPU check on a lent device machine, which reaches no package registry.

The device image ('cuda': Python 3.12, its own torch, torchvision, numpy, pandas, lightning, ...) lacks
Kedro, Great Expectations, DVCLive, open_clip and the rest of what the project's pipelines import.
This walks the project's runtime requirements as installed in this checkout's ``.venv`` (with the
extras that ``pyproject.toml`` asks for), leaves out Kedro-Viz and every package that
``benchmarks/device_image_packages.txt`` lists as already in the image (its own torch, torchvision and
triton builds among them), and downloads the same
versions as Python 3.12 manylinux wheels (no dependencies resolved: the walk gave them) into
``--dest``. ``benchmarks/device_check.sh`` installs them there with ``pip --no-index --no-deps``.

    .venv/bin/python benchmarks/device_wheels.py --dest .device/wheels     # then carry .device

``--rehearsal FILE`` writes instead the requirements of a Python 3.12 venv standing in for the image
on a CPU: the project's runtime packages that the image provides, pinned to the image's versions
where the listing gives them (torch 2.11.0, torchvision 0.26.0, numpy 2.5.2, ...). With the wheels on
top, ``DEVICE=cpu bash benchmarks/device_check.sh all`` rehearses the check (README).
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PROJECT = "lipsum-ft"
LEFT_OUT = {"kedro-viz"}  # a viewer, not run by the check (it would bring a web server's packages)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")
MARKER_ENVIRONMENT = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux"}


def image_pins(path: Path) -> dict[str, str | None]:
    """The image's packages, one per line as ``name`` or ``name==version`` (``#`` comments allowed):
    canonical name -> version, None where the listing gives none."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    pins = {}
    for line in filter(None, lines):
        requirement = Requirement(line)
        versions = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        pins[canonicalize_name(requirement.name)] = versions[0] if versions else None
    return pins


CHECK_TOOLS = ("pytest",)  # what device_check.sh itself runs, beside the project


def rehearsal_requirements(closure: dict[str, str], pins: dict[str, str | None]) -> list[str]:
    """pip requirements for a stand-in of the image: what of ``closure`` and ``CHECK_TOOLS`` the image
    provides, at the image's version where known (else the registry's), without torch's CUDA
    libraries (its wheel's own requirements, pinned by it)."""
    provided = sorted(name for name in {*closure, *CHECK_TOOLS} if name in pins)
    cuda_libraries = ("nvidia-", "cuda-")
    return [
        f"{name}=={pins[name]}" if pins[name] else name
        for name in provided
        if not name.startswith(cuda_libraries)
    ]


def runtime_closure(root: str, left_out: set[str]) -> dict[str, str]:
    """name -> installed version of ``root`` and everything its runtime requirements pull in, with
    the extras each requirement names (markers evaluated for Linux, Python 3.12; no 'dev' extra),
    except ``left_out`` and what only they pull in."""
    found: dict[str, str] = {}
    pending: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        distribution = metadata.distribution(name)
        found[canonicalize_name(name)] = distribution.version
        for line in distribution.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            wanted = marker is None or any(
                marker.evaluate({**MARKER_ENVIRONMENT, "extra": extra}) for extra in (extras or {""})
            )
            if wanted and canonicalize_name(requirement.name) not in left_out:
                pending.append((requirement.name, frozenset(requirement.extras)))
    found.pop(canonicalize_name(root))
    return found


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def fetch(pin: str, dest: Path) -> str:
    """``pin``'s Python 3.12 manylinux wheel into ``dest``, or, for a pure-Python package published
    only as source (omegaconf's antlr4 runtime), a universal wheel built from it; how it came."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    got = pip(
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        *platforms,
        "--dest",
        str(dest),
        pin,
    )
    if got.returncode == 0:
        return "wheel"
    before = set(dest.glob("*.whl"))
    built = pip("wheel", "--no-deps", "--wheel-dir", str(dest), pin)
    new = set(dest.glob("*.whl")) - before
    if built.returncode != 0 or not new or not all(w.name.endswith("-none-any.whl") for w in new):
        for wheel in new:
            wheel.unlink()
        raise SystemExit(f"{pin}: no Python 3.12 wheel, and no pure-Python build:\n{got.stderr[-800:]}")
    return "built"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=REPO / ".device" / "wheels")
    parser.add_argument("--image", type=Path, default=REPO / "benchmarks" / "device_image_packages.txt")
    parser.add_argument("--budget-mib", type=float, default=48.0, help="what may travel beside the repo")
    parser.add_argument(
        "--rehearsal", type=Path, help="write the image stand-in's requirements here instead (no download)"
    )
    args = parser.parse_args()
    pins = image_pins(args.image)
    closure = runtime_closure(PROJECT, LEFT_OUT)
    if args.rehearsal:
        lines = rehearsal_requirements(closure, pins)
        args.rehearsal.write_text("\n".join(lines) + "\n")
        print(f"{len(lines)} requirements of the image's stand-in in {args.rehearsal}")
        return
    missing = {name: version for name, version in sorted(closure.items()) if name not in pins}
    args.dest.mkdir(parents=True, exist_ok=True)
    how = {name: fetch(f"{name}=={version}", args.dest) for name, version in missing.items()}
    wheels = sorted(args.dest.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{len(missing)} packages beyond the image, {len(wheels)} wheels, {size:.1f} MiB in {args.dest}")
    for name, version in missing.items():
        print(f"  {name}=={version} ({how[name]})")
    if size > args.budget_mib:
        raise SystemExit(
            f"{size:.1f} MiB of wheels exceed --budget-mib {args.budget_mib}: the call carries 64 MiB"
        )


if __name__ == "__main__":
    main()
