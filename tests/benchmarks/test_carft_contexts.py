"""benchmarks/carft_contexts.py: its statistics against a computation written here, and a run on a chain."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.benchmarks.script_loader import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks/carft_contexts.py"


def test_statistics_match_the_written_definitions(monkeypatch):
    contexts = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.3, 0.9]]), dim=-1)
    zero = F.normalize(
        torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.7, 0.4], [0.2, 0.2, 0.9], [0.5, 0.5, 0.1]]), dim=-1
    )
    tuned = F.normalize(
        zero + torch.tensor([[0.0, 0.4, 0.0], [0.3, 0.0, 0.0], [0.0, 0.0, -0.5], [0.2, 0.0, 0.6]]), dim=-1
    )
    scale = 6.5
    figures = load_script(monkeypatch, SCRIPT).context_statistics(contexts, zero, {"ft": tuned}, scale)

    cosines = [float(contexts[i] @ contexts[j]) for i in range(3) for j in range(3) if i != j]
    p0 = [[math.exp(scale * float(z @ c)) for c in contexts] for z in zero]
    p0 = [[v / sum(row) for v in row] for row in p0]
    p1 = [[math.exp(scale * float(t @ c)) for c in contexts] for t in tuned]
    p1 = [[v / sum(row) for v in row] for row in p1]
    entropy = sum(-sum(v * math.log(v) for v in row) for row in p0) / len(p0)
    kl = sum(
        sum(a * math.log(a / b) for a, b in zip(r0, r1, strict=True)) for r0, r1 in zip(p0, p1, strict=True)
    ) / len(p0)
    assert figures["contexts"] == 3
    assert figures["context_cosine_min"] == pytest.approx(min(cosines), abs=1e-6)
    assert figures["context_cosine_max"] == pytest.approx(max(cosines), abs=1e-6)
    assert figures["p0_max_prob_mean"] == pytest.approx(sum(max(r) for r in p0) / len(p0), rel=1e-5)
    assert figures["p0_entropy_fraction_of_uniform"] == pytest.approx(entropy / math.log(3), rel=1e-5)
    assert figures["kl_p0_to_finetuned"]["ft"] == pytest.approx(kl, rel=1e-4)


@pytest.mark.slow
def test_runs_on_a_reproduced_chain_and_writes_its_figures(chain, tmp_path):
    out = tmp_path / "contexts.json"
    command = [sys.executable, str(SCRIPT), "--project", str(chain), "--env", "test", "--output", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert json.loads(done.stdout) == figures  # stdout is the JSON alone (Kedro's logs stay out of it)
    assert figures["contexts"] == 6 and figures["images"] > 0
    assert set(figures["kl_p0_to_finetuned"]) == {"ft", "lipsum"}
    assert all(value >= 0 for value in figures["kl_p0_to_finetuned"].values())
    assert 0 <= figures["p0_entropy_fraction_of_uniform"] <= 1 + 1e-6
