"""Wiring of the ``finetune`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.finetune.nodes import finetune_models


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                finetune_models,
                ["pretrained_clip", "zeroshot_head", "manifest", "classnames", "params:finetune"],
                ["finetuned_clip", "finetune_log"],
                name="finetune_models",
                tags=["training"],
            )
        ]
    )
