"""The ``guidance`` study: one Lipsum-FT run per (strategy, seed) beside FT, scored, tabulated and plotted."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from lipsum_ft.hooks import STUDY_TRAINING
from lipsum_ft.params.ablation import AblationParams
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.guidance_study import GuidanceStudyParams
from lipsum_ft.pipeline_registry import register_pipelines
from lipsum_ft.studies.guidance_report import study_markdown, study_summary
from lipsum_ft.training import runs
from tests.kedro_helpers import linked_after_zeroshot, run_in

STRATEGIES = ["random_tokens", "random_words", "class_free_captions", "fixed_pool"]


def test_study_summary_pairs_each_seed_with_the_reference():
    runs = pd.DataFrame(
        {
            "arm": ["random_tokens"] * 3 + ["random_words"] * 3,
            "seed": [0, 1, 2] * 2,
            "shift_acc": [0.70, 0.74, 0.72, 0.72, 0.75, 0.71],
            "ref_acc": [0.9] * 6,
            "ref_ece": [0.05] * 6,
            "shift_ece": [0.07] * 6,
            "energy_gap": [0.001] * 6,
            "ms_per_step": [100.0, 110.0, 90.0, 150.0, 150.0, 150.0],
        }
    )
    summary = study_summary(runs, "random_tokens").set_index("arm")
    words = summary.loc["random_words"]
    assert words["delta_shift_mean"] == pytest.approx((0.02 + 0.01 - 0.01) / 3)
    assert words["delta_shift_std"] == pytest.approx(pd.Series([0.02, 0.01, -0.01]).std())
    assert words["delta_shift_wins"] == 2 and words["paired_seeds"] == 3
    assert words["cost_vs_reference"] == pytest.approx(1.5)
    assert summary.loc["random_tokens", "delta_shift_mean"] == 0
    text = study_markdown(summary.reset_index(), ["random_tokens", "random_words"], "random_tokens", "t")
    # step cost as mean ± std over seeds (100 ± 10 ms and 150 ± 0 ms), and the ratio of the means
    assert "| 100 ± 10 | 1.00 |" in text and "| 150 ± 0 | 1.50 |" in text
    # +0.7 points, below the seed spread of both arms (std 2.0 and 2.1 points)
    assert (
        "Best on shift accuracy: random_words, +0.7 ± 1.5 points over random_tokens" in text
        and "does not exceed the seed spread" in text
    )


@pytest.fixture(scope="module")
def study(chain):
    run_in(chain, ["guidance"])
    return chain


def test_guidance_pipeline_scores_every_strategy_and_seed(study):
    results = pd.read_csv(study / "reports/guidance/results.csv")
    arms = results[results["arm"] != "zeroshot"].groupby("arm")["seed"].unique()
    assert sorted(arms.index) == sorted(["ft", *STRATEGIES])
    assert all(sorted(seeds) == [0, 1] for seeds in arms)
    assert results["domain"].nunique() == results.loc[results["arm"] == "zeroshot", "domain"].nunique() > 1
    summary = pd.read_csv(study / "reports/guidance/summary.csv").set_index("arm")
    assert list(summary.index) == ["zeroshot", "ft", *STRATEGIES]
    assert (
        summary.loc["random_tokens", "delta_shift_mean"] == 0
        and summary.loc["random_tokens", "cost_vs_reference"] == 1
    )
    assert (summary.loc[["ft", *STRATEGIES], "ms_per_step_mean"] > 0).all()
    assert summary.loc[STRATEGIES, "shift_acc_mean"].between(0, 1).all()
    table = (study / "reports/guidance/summary.md").read_text()
    assert "Best on shift accuracy:" in table and all(f"| {s} |" in table for s in STRATEGIES)
    assert (study / "reports/guidance/comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((study / "reports/guidance/metrics.json").read_text())
    assert {f"{s}.shift_acc_mean" for s in STRATEGIES} <= metrics.keys()


def test_each_strategy_changes_the_regulariser_but_not_the_first_step(study):
    log = pd.read_csv(study / "data/08_reporting/guidance_study_log.csv")
    seed0 = log[(log["seed"] == 0) & log["arm"].isin(STRATEGIES)].set_index(["arm", "step"])
    first = seed0.xs(1, level="step")
    assert (first["reg"] == 0).all()  # theta = theta_0 on the first step, whatever the texts
    assert first["ce"].nunique() == 1  # same seed: same batch and same start
    later = seed0.xs(4, level="step")["reg"]
    assert later.nunique() == len(STRATEGIES)  # different texts, different regulariser


def test_the_records_kept_to_the_end_of_a_run_are_those_of_the_two_studies_training_nodes():
    """StudyRecordsHook keeps a node's ``resume_dir`` to the run's end when the node carries both tags."""
    tagged = {
        node.name: [name for name in node.inputs if name.startswith("params:")]
        for pipeline in register_pipelines().values()
        for node in pipeline.nodes
        if node.tags >= STUDY_TRAINING
    }
    assert tagged == {
        "finetune_study_arms": ["params:finetune", "params:guidance_study"],
        "finetune_ablation_runs": ["params:finetune", "params:ablation"],
    }
    assert "resume_dir" in GuidanceStudyParams.model_fields and "resume_dir" in AblationParams.model_fields
    assert "resume_dir" not in FinetuneParams.model_fields  # the only dict input that names a folder


def test_a_study_stopped_while_scoring_restores_its_runs_instead_of_training_them(
    study, tmp_path, monkeypatch, caplog
):
    """The records outlive the training node: a run that fails after it (here a class-groups file that
    cannot be read, as a kill while scoring) keeps them; started again, no run trains, the results are
    the uninterrupted study's, and the records go only once the run has succeeded."""
    project = linked_after_zeroshot(study, tmp_path / "project")
    intermediate = project / "data/02_intermediate"
    intermediate.unlink()  # a link to the chain's folder: made a folder of links, one file broken
    intermediate.mkdir()
    for path in (study / "data/02_intermediate").iterdir():
        (intermediate / path.name).symlink_to(path)
    groups = intermediate / "class_groups.json"
    groups.unlink()
    groups.write_text("{not json")
    records = project / "data/06_models/study_runs/guidance"

    trained = []
    fit = runs.fit
    monkeypatch.setattr(runs, "fit", lambda *args, **kwargs: trained.append(1) or fit(*args, **kwargs))
    with (
        caplog.at_level(logging.INFO, logger="lipsum_ft.hooks"),
        pytest.raises(Exception, match="class_groups"),
    ):
        run_in(project, ["guidance"])
    arms = 1 + len(STRATEGIES)  # FT beside each strategy, at seeds 0 and 1
    assert len(trained) == 2 * arms
    assert sorted(p.name for p in records.iterdir()) == sorted(
        f"{arm}-seed{seed}.pt" for arm in ["ft", *STRATEGIES] for seed in (0, 1)
    )
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "lipsum_ft.hooks"]
    kept = f"the study's finished runs stay in {records.relative_to(project)}"
    # when the grid ends (what a run killed while scoring has shown), then when the run fails
    assert [level for level, message in said if message.startswith(kept)] == ["INFO", "WARNING"], said
    assert "until this run has saved its outputs" in next(m for level, m in said if level == "INFO")

    groups.unlink()
    groups.symlink_to(study / "data/02_intermediate/class_groups.json")
    trained.clear()
    run_in(project, ["guidance"])
    assert trained == []  # every run restored from its record
    assert not records.exists()  # the run succeeded: its records are gone
    pd.testing.assert_frame_equal(
        pd.read_csv(project / "reports/guidance/results.csv"),
        pd.read_csv(study / "reports/guidance/results.csv"),
    )
