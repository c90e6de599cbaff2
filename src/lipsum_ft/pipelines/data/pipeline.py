"""Wiring of the ``data`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.data.nodes import build_manifest, prepare_dataset, validate_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            # dataset_info is written by validate_dataset, so a failed validation leaves the old one
            node(prepare_dataset, "params:data", "prepared_dataset", name="prepare_dataset", tags=["data"]),
            node(
                build_manifest,
                ["prepared_dataset", "params:data"],
                ["raw_manifest", "raw_classnames", "raw_class_groups"],
                name="build_manifest",
                tags=["data"],
            ),
            node(
                validate_dataset,
                ["raw_manifest", "raw_classnames", "raw_class_groups", "prepared_dataset", "params:data"],
                ["manifest", "classnames", "class_groups", "data_validation", "dataset_info"],
                name="validate_dataset",
                tags=["data"],
            ),
        ]
    )
