"""The ``data`` pipeline run for real through a Kedro session on ``conf/test``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from lipsum_ft.data.validation import ManifestValidationError
from lipsum_ft.hooks import InvalidParameters


def run(project, pipeline: str, **runtime_params):
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env="test", runtime_params=runtime_params or None
    ) as session:
        return session.run(pipeline_names=[pipeline])


@pytest.mark.slow
def test_data_pipeline_writes_validated_manifest(kedro_project):
    run(kedro_project, "data")
    manifest = pd.read_parquet(kedro_project / "data/02_intermediate/manifest.parquet")
    classnames = json.loads((kedro_project / "data/02_intermediate/classnames.json").read_text())
    report = json.loads((kedro_project / "data/08_reporting/data_validation.json").read_text())
    assert report["success"] is True
    assert classnames[:3] == ["zero", "one", "two"]
    assert len(manifest) == 200 * 6  # conf/test: 200 source digits rendered in six domains
    assert set(manifest["split"]) == {"pretrain", "train", "val", "test"}
    per_digit_splits = (
        manifest.assign(digit=manifest["path"].str.extract(r"_(\d+)\.png$")[0])
        .groupby("digit")["split"]
        .nunique()
    )
    assert per_digit_splits.max() == 1
    info = json.loads((kedro_project / "data/01_raw/dataset_info.json").read_text())
    assert info["regenerated"] is True and info["num_images"] == 1200

    run(kedro_project, "data")  # second run reuses the rendered tree
    assert json.loads((kedro_project / "data/01_raw/dataset_info.json").read_text())["regenerated"] is False


@pytest.mark.slow
def test_broken_tree_stops_the_run_and_keeps_the_old_manifest(kedro_project):
    run(kedro_project, "data")
    manifest_file = kedro_project / "data/02_intermediate/manifest.parquet"
    info_file = kedro_project / "data/01_raw/dataset_info.json"  # a DVC output: only a valid run writes it
    before, info_before = manifest_file.read_bytes(), info_file.read_bytes()
    split_file = kedro_project / "data/01_raw/digit_domains/photo_test.txt"
    original = split_file.read_text()
    split_file.write_text(original + "photo/zero/not_there.png 0\n")
    with pytest.raises(ManifestValidationError, match=r"photo_test\.txt:\d+ -> file_exists=False"):
        run(kedro_project, "data")
    assert manifest_file.read_bytes() == before
    assert info_file.read_bytes() == info_before
    # the folders the failed run writes into say so, and the next good run clears the marks
    marker = kedro_project / "data/02_intermediate/INCOMPLETE.data"
    assert "manifest.parquet" in marker.read_text()
    split_file.write_text(original)
    run(kedro_project, "data")
    assert not list(kedro_project.glob("data/*/INCOMPLETE.*"))


def test_bad_parameter_is_named_before_any_node_runs(kedro_project):
    with pytest.raises(InvalidParameters, match=r"data\.source"):
        run(kedro_project, "data", data={"source": "imagenet21k"})
    assert not (kedro_project / "data/01_raw/dataset_info.json").exists()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"finetune": {"lr": float("inf")}}, r"finetune\.lr: Input should be a finite number"),
        (
            {"finetune": {"augment": {"crop_scale": [1.0, -0.5]}}},
            r"finetune\.augment\.crop_scale: .*\[1\.0, -0\.5\]",
        ),
        ({"finetune": {"betas": [2, 0.999]}}, r"finetune\.betas: .*betas must each lie in \[0, 1\)"),
        ({"finetune": {"train_split": "test"}}, r"finetune\.train_split: must not be the test split"),
        ({"posthoc": {"val_split": "test"}}, r"posthoc\.val_split: must not be the test split"),
        ({"finetun": {"lr": -1}}, r"finetun: unknown parameter group .*did you mean 'finetune'"),
    ],
)
def test_settings_that_used_to_slip_through_are_named(kedro_project, overrides, named):
    with pytest.raises(InvalidParameters, match=named):
        run(kedro_project, "finetune", **overrides)
