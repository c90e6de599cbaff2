"""The whole default chain, run for real at conf/test sizes (the session's `chain`, from one `dvc repro`):
each pipeline's outputs and the run-level guards."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from lipsum_ft.clip.backbone import load_bundle
from lipsum_ft.hooks import InvalidParameters, MissingInputs
from tests.kedro_helpers import copy_project, run_in

pytestmark = pytest.mark.slow


def test_pretraining_gives_a_zero_shot_model_far_above_chance(chain):
    metrics = json.loads((chain / "data/08_reporting/zeroshot_metrics.json").read_text())
    accuracies = {d: m["acc"] for d, m in metrics["domains"].items()}
    tested = sum(m["n"] for m in metrics["domains"].values())
    mean = sum(accuracies.values()) / len(accuracies)
    manifest = pd.read_parquet(chain / "data/02_intermediate/manifest.parquet")
    # 10 classes: chance is 10%. Over the ~250 test images, 30% or more correct by chance has
    # probability below 1e-13 (binomial tail, 75 of 250 at p = 0.1), so this cannot pass by luck.
    assert tested == (manifest["split"] == "test").sum() >= 240
    assert mean >= 0.30, accuracies
    spec = json.loads((chain / "data/06_models/pretrained_clip/open_clip_config.json").read_text())
    assert spec["lipsum_ft"]["pretrain_steps"] == 300
    log = pd.read_csv(chain / "data/08_reporting/pretrain_log.csv")
    assert len(log) == 300 and log["loss"].iloc[-20:].mean() < log["loss"].iloc[:20].mean()


def test_finetune_writes_each_method_and_its_training_curve(chain):
    for method in ("ft", "lipsum"):
        bundle = load_bundle(chain / "data/06_models/finetuned" / method)
        assert bundle.head["weight"].shape == (128, 10)
        assert bundle.spec.extra["finetune"]["method"] == method
    log = pd.read_csv(chain / "data/08_reporting/finetune_log.csv")
    assert set(log["method"]) == {"ft", "lipsum"}
    assert {"loss", "ce", "lr", "images_per_s", "val_acc"} <= set(log.columns)
    assert log.loc[log["method"] == "lipsum", "reg"].notna().all()
    pretrained = load_bundle(chain / "data/06_models/pretrained_clip").model.state_dict()
    tuned = load_bundle(chain / "data/06_models/finetuned/ft").model.state_dict()
    assert any(not torch.equal(pretrained[k], tuned[k]) for k in pretrained if k.startswith("visual."))
    assert all(
        torch.equal(pretrained[k], tuned[k]) for k in pretrained if not k.startswith("visual.")
    )  # text tower frozen


def test_evaluate_reports_every_variant_on_every_domain(chain):
    results = pd.read_csv(chain / "reports/results.csv")
    variants = set(results["variant"])
    assert {
        "zeroshot",
        "ft",
        "lipsum",
        "tpgm-ft",
        "tpgm-lipsum",
        "wise-ft-0.30",
        "wise-lipsum-1.00",
    } <= variants
    assert results.groupby("variant")["domain"].nunique().eq(6).all()
    wise_one = results[results["variant"] == "wise-ft-1.00"].set_index("domain")["acc"]
    tuned = results[results["variant"] == "ft"].set_index("domain")["acc"]
    pd.testing.assert_series_equal(wise_one, tuned, check_names=False)
    metrics = json.loads((chain / "reports/metrics.json").read_text())
    assert "lipsum.test.sketch.acc" in metrics and "ft.test.shift_mean.acc" in metrics
    assert metrics["zeroshot.test.photo.energy_gap"] == 0.0
    summary = (chain / "reports/summary.md").read_text()
    assert "| lipsum |" in summary and "| wise-ft-0.30 |" in summary
    for plot in ("reliability", "wise_curve", "reference_vs_shift", "energy_gap"):
        assert (chain / f"reports/plots/{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_open_clip_architecture_from_a_local_file_through_the_pretrain_node(chain, tmp_path):
    import open_clip

    from lipsum_ft.pipelines.pretrain.nodes import pretrain_model

    reference = open_clip.create_model("ViT-S-32")
    checkpoint = tmp_path / "vit-s-32.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(checkpoint))
    bundle, log = pretrain_model(
        pd.DataFrame(), [], {"source": "open_clip", "model": "ViT-S-32", "pretrained": str(checkpoint)}
    )
    assert bundle.spec.pretrained == str(checkpoint) and log.empty
    assert all(
        torch.equal(a, b)
        for a, b in zip(reference.state_dict().values(), bundle.model.state_dict().values(), strict=True)
    )


def test_missing_inputs_name_the_pipeline_to_run_first(tmp_path):
    project = copy_project(tmp_path / "fresh")
    with pytest.raises(
        MissingInputs,
        match=r"missing input\(s\) .*pretrained_clip.*"
        r"run `kedro run --pipeline=data / pretrain / zeroshot` first",
    ):
        run_in(project, ["finetune"])


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"finetune": {"method": "sgd"}},
            r"finetune\.method.*'ft', 'lp', 'lpft', 'l2sp', 'kd', 'carft', 'flyp' or 'lipsum'",
        ),
        ({"finetune": {"lr": -1.0}}, r"finetune\.lr: Input should be greater than 0"),
        (
            {"finetune": {"lr_by_method": {"lp": 0.0}}},
            r"finetune\.lr_by_method\.lp: Input should be greater than 0",
        ),
        (
            {"finetune": {"lipsum": {"lambda": -0.5}}},
            r"finetune\.lipsum\.lambda: Input should be greater than or equal to 0",
        ),
        (
            {"finetune": {"lipsum": {"num_texts": 0}}},
            r"finetune\.lipsum\.num_texts: Input should be greater than 0",
        ),
        (
            {"finetune": {"lipsum": {"length": 0}}},
            r"finetune\.lipsum\.length: Input should be greater than 0",
        ),
        ({"finetune": {"batch_size": 0}}, r"finetune\.batch_size: Input should be greater than 0"),
    ],
)
def test_bad_finetune_parameters_stop_before_any_node_runs(tmp_path, override, named):
    project = copy_project(tmp_path / "fresh")
    with pytest.raises(InvalidParameters, match=named):
        run_in(project, ["finetune"], **override)
    assert not (project / "data").exists()
