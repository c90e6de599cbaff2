"""Wiring of the ``data`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.data.nodes import build_manifest, prepare_dataset, validate_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(prepare_dataset, "params:data", "dataset_info", name="prepare_dataset", tags=["data"]),
            node(
                build_manifest,
                ["dataset_info", "params:data"],
                ["raw_manifest", "raw_classnames", "raw_class_groups"],
                name="build_manifest",
                tags=["data"],
            ),
            node(
                validate_dataset,
                ["raw_manifest", "raw_classnames", "raw_class_groups", "params:data"],
                ["manifest", "classnames", "class_groups", "data_validation"],
                name="validate_dataset",
                tags=["data"],
            ),
        ]
    )
