"""Wiring of the ``posthoc`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.posthoc.nodes import tpgm_models, wise_models


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                wise_models,
                ["pretrained_clip", "zeroshot_head", "finetuned_clip", "params:posthoc"],
                "wise_models",
                name="wise_models",
                tags=["posthoc"],
            ),
            node(
                tpgm_models,
                ["pretrained_clip", "zeroshot_head", "finetuned_clip", "manifest", "params:posthoc"],
                ["tpgm_models", "tpgm_summary"],
                name="tpgm_models",
                tags=["posthoc"],
            ),
        ]
    )
