"""Wiring of the ``pretrain`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.pretrain.nodes import pretrain_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                pretrain_model,
                ["manifest", "classnames", "params:pretrain"],
                ["pretrained_clip", "pretrain_log"],
                name="pretrain_model",
                tags=["model"],
            )
        ]
    )
