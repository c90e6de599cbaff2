"""The benchmark scripts run (tiny settings on CPU); their figures belong in notes, not in assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.script_loader import load_script

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_gpu_step_runs_on_cpu_with_a_tiny_batch(tmp_path):
    out = tmp_path / "gpu_step.json"
    command = [
        sys.executable,
        str(REPO / "benchmarks/gpu_step.py"),
        "--device",
        "cpu",
        "--model",
        "TinyCLIP-ViT-P8-32",
        "--batch",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--output",
        str(out),
        *("--compile", "--budget-s", "0"),  # no time for the compiled runs: both skipped, and said
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["complete"] is True
    for name in ("bare", "ft", "lipsum"):
        assert figures[f"{name}_images_per_s"] > 0
    assert set(figures["skipped"]) == {"ft_compiled", "lipsum_compiled"}
    assert all(reason.startswith("skipped: ") for reason in figures["skipped"].values())
    assert not [key for key in figures if key.startswith(("ft_compiled", "lipsum_compiled"))]
    assert figures["precision"] == "32-true" and figures["gpu"] is None
    parts = figures["lipsum_parts"]  # where Lipsum-FT's time beyond FT's goes
    assert set(parts["parts_ms"]) == {"text_tower", "frozen_image_tower", "regulariser"}
    assert all(ms > 0 for ms in parts["parts_ms"].values())
    extra = figures["lipsum_step_ms"] - figures["ft_step_ms"]
    assert parts["measured_extra_ms"] == pytest.approx(extra, abs=2e-3)  # the JSON rounds to 1e-3
    assert parts["unexplained_ms"] == pytest.approx(extra - sum(parts["parts_ms"].values()), abs=5e-3)
    # the FLOP count's parts: the frozen image tower is one forward of the batch, a third of FT's
    # forward + backward, so at FT's rate it costs a third of FT's step
    assert parts["parts_at_ft_rate_ms"]["frozen_image_tower"] == pytest.approx(
        figures["ft_step_ms"] / 3, rel=1e-3
    )


def test_gpu_step_keeps_lipsum_parts_when_a_compiled_run_is_cut_short(monkeypatch, tmp_path):
    """Lipsum-FT's parts are timed right after the eager runs, ahead of the compiled runs, so a time
    limit that ends the check during a compiled run (here an error in it) leaves them in the JSON."""
    script = load_script(monkeypatch, REPO / "benchmarks/gpu_step.py")
    calls = []

    def loop_step_ms(method, clip, spec, head, data, classnames, args, on_gpu, compile=False):
        calls.append(f"{method}_compiled" if compile else method)
        if compile:
            raise RuntimeError("inductor: compilation failed")
        return 3.0, [1.0] * (args.warmup + args.steps), None

    def lipsum_parts(objective, images, repeats, warmup, device, bf16):
        calls.append("lipsum_parts")
        return {"text_tower": 0.5, "frozen_image_tower": 0.25, "regulariser": 0.125}

    monkeypatch.setattr(script, "loop_step_ms", loop_step_ms)
    monkeypatch.setattr(script, "lipsum_parts", lipsum_parts)
    monkeypatch.setattr(script, "bare_loop_ms", lambda *args: 2.5)
    out = tmp_path / "gpu_step.json"
    tiny = [
        "--device",
        "cpu",
        "--model",
        "TinyCLIP-ViT-P8-32",
        "--batch",
        "4",
        "--steps",
        "2",
        "--warmup",
        "1",
    ]
    monkeypatch.setattr(sys, "argv", ["gpu_step.py", *tiny, "--compile", "--output", str(out)])
    with pytest.raises(RuntimeError, match="compilation failed"):
        script.main()
    assert calls == ["ft", "lipsum", "lipsum_parts", "ft_compiled"]
    figures = json.loads(out.read_text())
    assert figures["complete"] is False
    assert figures["error"] == "RuntimeError: inductor: compilation failed"
    assert figures["lipsum_parts"]["parts_ms"] == {
        "text_tower": 0.5,
        "frozen_image_tower": 0.25,
        "regulariser": 0.125,
    }
    assert figures["lipsum_over_ft_time"] == 1.0 and figures["bare_step_ms"] == 2.5
    assert "ft_compiled_step_ms" not in figures


def test_posthoc_memory_measures_both_phases_of_a_tiny_grid(tmp_path):
    out = tmp_path / "posthoc_memory.json"
    command = [sys.executable, str(REPO / "benchmarks/posthoc_memory.py"), "--model", "TinyCLIP-ViT-P8-32"]
    command += ["--methods", "2", "--alphas", "3", "--classes", "7", "--output", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["materialize"] is False
    assert figures["states"] == 6 and figures["read"]["states"] == 6  # every state written, then read
    assert figures["state_mib"] > 1  # TinyCLIP's image tower and head, in fp32
    for phase in ("write", "read"):
        assert figures[phase]["peak_mib"] >= figures[phase]["before_mib"] > 0
        assert figures[phase]["grid_mib"] == figures[phase]["peak_mib"] - figures[phase]["before_mib"]
    assert figures["library"] == str(REPO / "src/lipsum_ft")


def test_posthoc_memory_baseline_holds_the_same_states(monkeypatch, tmp_path):
    """--materialize measures the same grid: what evaluation loads sums to the same heads (in process)."""
    script = load_script(monkeypatch, REPO / "benchmarks/posthoc_memory.py")
    checksums = {}
    for materialize in (False, True):
        args = script.argparse.Namespace(
            model="TinyCLIP-ViT-P8-32", methods=2, alphas=3, classes=7, materialize=materialize
        )
        args.folder = tmp_path / f"materialize-{materialize}"
        script.write_phase(args)
        read = script.read_phase(args)
        assert read["states"] == 6
        checksums[materialize] = read["checksum"]
    assert checksums[False] == checksums[True] != 0


def test_eval_held_runs_and_scores_both_ways_alike(tmp_path):
    out = tmp_path / "eval_held.json"
    tiny = ["--classes", "2", "--test-per-class", "3", "--variants", "1", "--repeats", "1", "--workers", "0"]
    command = [sys.executable, str(REPO / "benchmarks/eval_held.py"), *tiny, "--output", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["identical_scores"] is True
    assert figures["images"] == 2 * 2 * 3 and figures["variants"] == 2  # classes x domains x test images
    assert figures["streamed_s"] > 0 and figures["held_s"] > 0 and figures["decode_images_per_s"] > 0
