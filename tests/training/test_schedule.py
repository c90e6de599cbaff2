"""Warm-up as in the reference implementations: lr 0 at step 0, the peak at the end of warm-up, then a
half cosine towards 0; and the lr each step logs is the lr that step used."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.data.images import InMemoryImages
from lipsum_ft.training.finetuning import make_objective
from lipsum_ft.training.loop import TrainConfig, fit
from lipsum_ft.training.schedule import warmup_cosine
from tests.kedro_helpers import REPO


def expected_lr(step: int, peak: float, total: int, warmup: int) -> float:
    """Linear 0 -> peak over steps [0, warmup], then peak * (1 + cos(pi * progress)) / 2."""
    if step < warmup:
        return peak * step / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def lrs_from_scheduler(peak: float, total: int, warmup: int) -> list[float]:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=peak)
    scheduler = warmup_cosine(optimizer, total, warmup)
    seen = []
    for _ in range(total):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_first_peak_and_last_lr_follow_the_reference_warm_up():
    peak, total, warmup = 3e-4, 13, 4
    lrs = lrs_from_scheduler(peak, total, warmup)
    assert lrs[0] == 0.0  # not peak / warmup
    assert lrs[1] == pytest.approx(peak / 4, rel=1e-12)
    assert lrs[warmup] == pytest.approx(peak, rel=1e-12)  # the peak is reached at the end of warm-up
    assert max(lrs) == lrs[warmup]
    last = peak * 0.5 * (1 + math.cos(math.pi * 8 / 9))  # step 12: 8 of the 9 cosine steps done
    assert lrs[-1] == pytest.approx(last, rel=1e-12)
    assert lrs == pytest.approx([expected_lr(s, peak, total, warmup) for s in range(total)], rel=1e-12)


def test_without_warm_up_the_first_step_is_at_the_peak():
    lrs = lrs_from_scheduler(1e-3, 5, 0)
    assert lrs[0] == 1e-3 and lrs[-1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 5)))


def test_a_tiny_fine_tuning_run_logs_the_lr_each_step_used():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(1)), dim=0)
    g = torch.Generator().manual_seed(2)
    mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
    images = lambda n: InMemoryImages(  # noqa: E731
        torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(n) % 4, mean, std
    )
    objective = make_objective(
        "ft",
        model.eval(),
        head,
        14.0,
        model_name=spec.name,
        context_length=spec.context_length,
        classnames=["a", "b", "c", "d"],
        coefficients={},
    )
    peak, total = 2e-3, 7
    config = TrainConfig(
        steps=total, batch_size=8, lr=peak, warmup_fraction=0.3, eval_every=7, progress=False
    )
    result = fit(objective, images(16), images(8), config)
    logged = [row["lr"] for row in result.log]
    warmup = 2  # int(0.3 * 7)
    assert logged[0] == 0.0
    assert logged[warmup] == pytest.approx(peak, rel=1e-12)
    assert logged[-1] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 4 / 5)), rel=1e-12)
    assert logged == pytest.approx([expected_lr(s, peak, total, warmup) for s in range(total)], rel=1e-12)


def test_conf_test_fine_tuning_has_at_least_one_warm_up_step():
    base = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    test = yaml.safe_load((REPO / "conf/test/parameters_finetune.yml").read_text())["finetune"]
    steps = test.get("steps", base["steps"])
    assert int(test.get("warmup_fraction", base["warmup_fraction"]) * steps) >= 1


@pytest.mark.slow
def test_the_kedro_fine_tuning_log_follows_the_schedule(chain):
    """conf/test's real ``finetune`` run: each method's logged lr at the first step, the peak, the last."""
    base = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    test = yaml.safe_load((REPO / "conf/test/parameters_finetune.yml").read_text())["finetune"]
    params = {**base, **test}
    total, warmup = params["steps"], int(params["warmup_fraction"] * params["steps"])
    log = pd.read_csv(chain / "data/08_reporting/finetune_log.csv")
    for method, rows in log.groupby("method"):
        peak = params["lr_by_method"].get(method, params["lr"])
        lrs = rows.sort_values("step")["lr"].tolist()
        assert len(lrs) == total
        assert lrs[0] == 0.0
        assert lrs[warmup] == pytest.approx(peak, rel=1e-9)
        assert lrs[-1] == pytest.approx(expected_lr(total - 1, peak, total, warmup), rel=1e-9)
        assert lrs == pytest.approx([expected_lr(s, peak, total, warmup) for s in range(total)], rel=1e-9)
