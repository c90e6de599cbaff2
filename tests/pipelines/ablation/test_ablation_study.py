"""The ``ablation`` and ``ablation_report`` pipelines on conf/test: every (setting, seed) run times the
WiSE alphas is scored image by image, the reports answer the study's four questions, and the
label-free criterion is blind to the shift domains' labels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from lipsum_ft.params.ablation import AblationParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.pipelines.ablation.nodes import score_ablation_candidates
from lipsum_ft.studies.ablation_grid import check_lengths
from tests.kedro_helpers import run_in

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study(chain):
    run_in(chain, ["ablation", "ablation_report"])
    return chain


def test_every_setting_and_seed_is_run_and_every_candidate_scored(study):
    candidates = pd.read_csv(study / "reports/ablation/candidates.csv")
    runs = candidates[(candidates["source"] == "study") & (candidates["alpha"] == 1.0)]
    # conf/test: baselines [ft]; lambda 0.3 beside the default 1.0; num_texts only the default; L 2 beside 8
    assert sorted(runs["setting"].unique()) == ["default", "ft", "lambda=0.3", "length=2"]
    assert runs.groupby("setting")["seed"].nunique().eq(2).all()
    study_rows = candidates[candidates["source"] == "study"]
    assert sorted(study_rows["alpha"].unique()) == [0.5, 1.0]  # alpha 0 is the one zero-shot candidate
    assert (candidates["source"] == "zeroshot").sum() == 1 and (candidates["source"] == "chain").sum() == 2
    zero = candidates.set_index("candidate").loc["zeroshot"]
    assert zero["shift_val_energy_gap"] == 0 and zero["energy_gap"] == 0 and zero["feature_distortion"] == 0
    tuned = candidates[candidates["source"] != "zeroshot"]
    assert (tuned["shift_val_energy_gap"] > 0).all() and (tuned["feature_distortion"] > 0).all()
    outcomes = pd.read_parquet(study / "data/07_model_output/ablation_outcomes.parquet")
    assert outcomes["candidate"].nunique() == len(candidates)
    assert outcomes.groupby(["candidate", "domain"], observed=True)["image"].count().nunique() == 1


def test_reports_answer_the_four_questions(study):
    findings = (study / "reports/ablation/findings.md").read_text()
    for heading in (
        "**0. Energy gap or feature distortion?**",
        "**1. Sensitivity",
        "**2. Choosing",
        "**3. No",
    ):
        assert heading in findings
    assert "- lambda: 0.3:" in findings and "- length: 2:" in findings
    sensitivity = pd.read_csv(study / "reports/ablation/sensitivity.csv").set_index("setting")
    assert sensitivity.loc["default", "delta_shift_mean"] == 0
    assert (
        sensitivity.loc[["ft", "lambda=0.3"], "delta_shift_low"]
        <= sensitivity.loc[["ft", "lambda=0.3"], "delta_shift_high"]
    ).all()
    picks = pd.read_csv(study / "reports/ablation/picks.csv")
    assert picks.groupby("seed")["criterion"].nunique().eq(4).all()
    assert (picks.loc[picks["criterion"] == "oracle", "regret"] == 0).all() and (picks["regret"] >= 0).all()
    front = json.loads((study / "reports/ablation/front.json").read_text())
    assert front["configuration"] in set(
        pd.read_csv(study / "reports/ablation/configurations.csv")["configuration"]
    )
    diagnostics = json.loads((study / "reports/ablation/diagnostics.json").read_text())
    assert diagnostics["finetuned"]["n"] == 8 + 2  # 4 settings x 2 seeds, and the chain's two TPGM models
    for name in ("sensitivity", "diagnostics", "front"):
        assert (study / f"reports/ablation/{name}.png").read_bytes()[:8] == PNG
    metrics = json.loads((study / "reports/ablation/metrics.json").read_text())
    assert {
        "front.target_met",
        "choice.gap_vs_shift_rho",
        "diagnostics.finetuned.rho_energy_gap",
    } <= metrics.keys()


def test_evaluate_reports_feature_distortion_beside_the_energy_gap(chain):
    results = pd.read_csv(chain / "reports/results.csv")
    tuned = results[(results["variant"] != "zeroshot") & (results["alpha"] != 0)]  # WiSE alpha 0 is zero-shot
    assert (results.loc[results["variant"] == "zeroshot", "feature_distortion"] == 0).all()
    assert (tuned["feature_distortion"] > 0).all()
    assert "feature distortion" in (chain / "reports/summary.md").read_text()


def _load(project: Path, names: list[str]) -> dict:
    previous = os.getcwd()
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env="test") as session:
            catalog = session.load_context().catalog
            return {name: catalog.load(name) for name in names}
    finally:
        os.chdir(previous)


def test_the_label_free_criterion_never_sees_shift_labels(chain, monkeypatch):
    """Scramble the shift domains' val labels: the energy-gap criterion must not move. Scramble the
    reference domain's: reference val accuracy must (the test can see label use where it exists)."""
    monkeypatch.chdir(chain)  # the manifest's image paths are relative to the project folder
    names = ["pretrained_clip", "zeroshot_head", "finetuned_clip", "tpgm_models", "manifest", "classnames"]
    loaded = _load(chain, [*names, "class_groups", "params:evaluate", "params:ablation"])
    models = {}
    for method, bundle in loaded["finetuned_clip"].items():
        bundle.spec.extra["ablation"] = {
            "setting": method,
            "method": method,
            "knob": "none",
            "value": np.nan,
            "seed": 0,
        }
        models[f"{method}/seed0"] = bundle

    def score(manifest: pd.DataFrame) -> pd.DataFrame:
        _, candidates = score_ablation_candidates(
            loaded["pretrained_clip"],
            loaded["zeroshot_head"],
            models,
            loaded["tpgm_models"],
            manifest,
            loaded["classnames"],
            loaded["class_groups"],
            "val",
            loaded["params:evaluate"],
            {**loaded["params:ablation"], "progress": False},
        )
        return candidates.set_index("candidate")

    manifest = loaded["manifest"]
    reference = loaded["params:evaluate"]["reference_domain"]
    rng = np.random.default_rng(0)

    def scrambled(where: pd.Series) -> pd.DataFrame:
        out = manifest.copy()
        out.loc[where, "label"] = rng.permutation(out.loc[where, "label"].to_numpy())
        return out

    val = manifest["split"] == "val"
    base = score(manifest)
    shift_scrambled = score(scrambled(val & (manifest["domain"] != reference)))
    pd.testing.assert_series_equal(base["shift_val_energy_gap"], shift_scrambled["shift_val_energy_gap"])
    pd.testing.assert_series_equal(base["ref_val_acc"], shift_scrambled["ref_val_acc"])
    reference_scrambled = score(scrambled(val & (manifest["domain"] == reference)))
    assert not np.allclose(base["ref_val_acc"], reference_scrambled["ref_val_acc"])
    pd.testing.assert_series_equal(base["shift_val_energy_gap"], reference_scrambled["shift_val_energy_gap"])


def test_text_lengths_that_cannot_fit_the_context_fail_before_training():
    conf = Path(__file__).resolve().parents[3] / "conf/base"
    params = parse(FinetuneParams, yaml.safe_load((conf / "parameters_finetune.yml").read_text())["finetune"])
    study = yaml.safe_load((conf / "parameters_ablation.yml").read_text())["ablation"]
    study = parse(AblationParams, {**study, "knobs": {**study["knobs"], "length": [2, 14, 15]}})
    with pytest.raises(ValueError, match=r"ablation.knobs.length \[15\].*context length is 16; use L <= 14"):
        check_lengths(params, study, context_length=16)
    check_lengths(params, study, context_length=77)  # ViT-B/16's context holds them all
