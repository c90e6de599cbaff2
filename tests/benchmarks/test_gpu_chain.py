"""benchmarks/gpu_chain.py: its generated DomainNet tree, and the ``domainnet`` chain at tiny size on CPU.

The CPU figures mean nothing (a random-init TinyCLIP for six steps); what is checked is that every
pipeline ran and was timed, both methods trained, and every variant was scored on every domain.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lipsum_ft.data.layout import FolderLayout, read_classnames, read_split_file
from lipsum_ft.posthoc.variant_names import describe, variant_names
from tests.benchmarks.script_loader import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks/gpu_chain.py"
STAGES = ["data", "pretrain", "zeroshot", "finetune", "posthoc", "evaluate"]


@pytest.fixture
def script(monkeypatch):
    return load_script(monkeypatch, SCRIPT)


def small_spec(script, seed: int = 0):
    return script.TreeSpec(classes=10, train=3, test=2, min_size=48, size=72, seed=seed)


def test_the_tree_is_in_domainnet_layout_and_the_data_reader_takes_it(script, tmp_path):
    spec = small_spec(script)
    described = script.build_tree(tmp_path / "tree", spec)
    root = tmp_path / "tree"
    names = script.class_names(spec.classes)
    assert len(set(names)) == spec.classes
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(script.DOMAINS)
    for domain in script.DOMAINS:
        assert sorted(p.name for p in (root / domain).iterdir()) == sorted(names)
    assert (root / "classnames.txt").read_text().split() == sorted(names)
    assert described["images"] == len(script.DOMAINS) * spec.classes * (spec.train + spec.test)
    # the project's own reader (split files, labels against class folders) takes it as DomainNet
    layout = FolderLayout(
        root=root, domains=script.DOMAINS, splits=("train", "test"), classnames_from="folders"
    )
    classnames = read_classnames(layout)
    assert classnames == sorted(names)
    for domain in script.DOMAINS:
        for split, count in (("train", spec.train), ("test", spec.test)):
            rows = read_split_file(layout, domain, split)
            assert len(rows) == spec.classes * count
            assert all(Path(p).is_file() for p in rows["path"])
            assert all(
                Path(p).parent.name == classnames[label]
                for p, label in zip(rows["path"], rows["label"], strict=True)
            )
            assert all(Path(p).parts[-3] == domain for p in rows["path"])
    for path in list(root.rglob("*.jpg"))[::7]:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert all(spec.min_size <= side <= spec.size for side in image.size)


def test_the_tree_is_a_function_of_its_seed(script, tmp_path):
    first = script.build_tree(tmp_path / "a", small_spec(script, seed=3))
    again = script.build_tree(tmp_path / "b", small_spec(script, seed=3), workers=2)  # processes too
    other = script.build_tree(tmp_path / "c", small_spec(script, seed=4))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    images = [f for f in files if f.suffix == ".jpg"]
    differ = sum((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in images)
    assert differ == len(images)
    assert first["bytes"] == again["bytes"] != other["bytes"]


@pytest.mark.parametrize("count", [4, 8, 40, 100])
def test_every_class_has_its_own_design_with_colour_and_without(script, count):
    designs = [script.class_design(label, count) for label in range(count)]
    assert len({(d.shape, d.hue_index) for d in designs}) == count  # colour domains
    assert len({(d.shape, d.stripes) for d in designs}) == count  # quickdraw: lines only
    assert len(set(script.class_names(count))) == count


def _object_hue(image: Image.Image) -> float:
    """The circular mean hue of the strongly coloured pixels (the object's fill), in [0, 1)."""
    hsv = np.asarray(image.convert("HSV"), np.float32) / 255
    strong = (hsv[..., 1] > 0.5) & (hsv[..., 2] > 0.4)
    angles = 2 * np.pi * hsv[..., 0][strong]
    return float(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean()) / (2 * np.pi)) % 1.0


def test_images_carry_their_class_and_classes_differ(script):
    """Clipart's fill has the class's hue; in every domain, two classes' images differ."""
    spec = script.TreeSpec(classes=12, train=2, test=1, min_size=64, size=96)
    clipart = script.DOMAINS.index("clipart")
    for label in range(spec.classes):
        hue = script.class_design(label, spec.classes).hue
        for index in range(2):
            found = _object_hue(script.render_image(spec, clipart, label, index))
            assert min(abs(found - hue), 1 - abs(found - hue)) < 0.05, (label, index, found, hue)
    for domain in range(len(script.DOMAINS)):
        images = [np.asarray(script.render_image(spec, domain, label, 0)) for label in range(spec.classes)]
        assert all(
            a.shape != b.shape or not np.array_equal(a, b)
            for i, a in enumerate(images)
            for b in images[i + 1 :]
        )


def test_a_missing_variant_or_a_nan_fails_the_check(script):
    variants = variant_names(["ft", "lipsum"], [0.0, 0.5])
    assert variants == [
        "zeroshot",
        "ft",
        "lipsum",
        "wise-ft-0.00",
        "wise-ft-0.50",
        "wise-lipsum-0.00",
        "wise-lipsum-0.50",
        "tpgm-ft",
        "tpgm-lipsum",
    ]
    assert [describe(v)["kind"] for v in variants] == ["zeroshot"] + ["finetuned"] * 2 + ["wise"] * 4 + [
        "tpgm"
    ] * 2
    assert [describe(v)["alpha"] for v in variants[3:7]] == [0.0, 0.5, 0.0, 0.5]  # names read back
    domains = ["real", "sketch"]
    rows = [
        {"variant": v, "domain": d, **{m: 0.5 for m in script.METRICS}} for v in variants for d in domains
    ]
    assert script.scored(pd.DataFrame(rows), variants, domains)["ok"]
    broken = pd.DataFrame(rows[1:])
    broken.loc[3, "ece"] = float("nan")
    check = script.scored(broken, variants, domains)
    assert not check["ok"]
    assert check["missing"] == ["zeroshot/real"]
    assert check["non_finite"] == [f"{broken.loc[3, 'variant']}/{broken.loc[3, 'domain']}/ece"]


@pytest.mark.slow
def test_the_domainnet_chain_runs_on_cpu_end_to_end(tmp_path):
    out = tmp_path / "chain.json"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--output", str(out), "--tree-workers", "1"]
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {**os.environ, "TMPDIR": str(temporary)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["complete"] is True and "error" not in figures
    assert figures["device"] == "cpu"
    assert list(figures["stages"]) == STAGES
    assert all(seconds > 0 for seconds in figures["stages"].values())
    host = figures["host_peak_gib"]  # the process's peak so far, after each stage
    assert list(host) == STAGES and 0 < host["data"] <= host["pretrain"] <= host["evaluate"] < 64
    for method in ("ft", "lipsum"):
        train = figures["train"][method]
        assert train["images_per_s"] > 0 and not train["warmup_included"]
        assert train["fraction_of_peak"] is None and train["peak_memory_gib"] is None
    assert figures["train"]["runs_measured"] == ["ft", "lipsum"]
    assert "why_null" in figures["train"]
    assert figures["compiled"].startswith("not run")
    check = figures["scored"]
    assert check["ok"] and not check["missing"] and not check["non_finite"]
    assert sorted(check["domains"]) == sorted(
        ["real", "painting", "clipart", "infograph", "sketch", "quickdraw"]
    )
    variants = {"zeroshot", "ft", "lipsum", "tpgm-ft", "tpgm-lipsum", "wise-ft-0.50", "wise-lipsum-1.00"}
    assert variants <= set(check["variants"])
    assert check["rows"] == len(check["variants"]) * len(check["domains"])
    disk = figures["disk_bytes"]
    assert disk["total"] == sum(v for k, v in disk.items() if k != "total") > 0
    assert (
        disk["envs/domainnet/data/06_models/wise"] > 0
        and disk["envs/domainnet/data/06_models/checkpoints"] > 0
    )
    assert math.isclose(
        figures["train"]["lipsum_over_ft_time"],
        figures["train"]["lipsum"]["step_ms"] / figures["train"]["ft"]["step_ms"],
        rel_tol=1e-2,
    )
    assert not list(temporary.glob("gpu-chain-*"))  # the tree and the scratch project went with it


def test_compiled_figures_compare_each_compiled_run_with_its_eager_run(script):
    """Speed-up is eager time over compiled time; the curve check is the largest relative loss gap."""
    steps = [1, 2, 3, 1, 2, 3]
    methods = ["ft"] * 3 + ["lipsum"] * 3
    eager = pd.DataFrame({"step": steps, "method": methods, "loss": [2.0, 1.5, 1.0, 3.0, 2.0, 1.6]})
    compiled = eager.assign(loss=[2.0, 1.53, 1.0, 3.0, 2.0, 1.6])  # ft's step 2 is 2 % off
    curves = script.loss_curves(eager, compiled.iloc[::-1], steps=3)  # read in step order
    assert curves["ft"] == {"steps": 3, "max_relative_loss_difference": pytest.approx(0.02)}
    assert curves["lipsum"]["max_relative_loss_difference"] == 0.0
    assert script.loss_curves(eager, compiled, steps=2)["ft"]["steps"] == 2
    timing = {"ft": {"step_ms": 100.0}, "lipsum": {"step_ms": 150.0}, "lipsum_over_ft_time": 1.5}
    faster = {"ft": {"step_ms": 80.0}, "lipsum": {"step_ms": 110.0}, "lipsum_over_ft_time": 110.0 / 80.0}
    out = script.compiled_figures(timing, faster, curves)
    assert out["ft_compiled"]["speedup_over_eager"] == pytest.approx(1.25)
    assert out["lipsum_compiled"]["speedup_over_eager"] == pytest.approx(150.0 / 110.0)
    assert out["ft_compiled"]["step_ms"] == 80.0 and out["ft_compiled"]["curve"] == curves["ft"]
    assert out["lipsum_over_ft_time_compiled"] == pytest.approx(1.375)
