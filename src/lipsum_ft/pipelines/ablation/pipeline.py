"""Wiring of the ``ablation`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.ablation.nodes import (
    finetune_ablation_runs,
    score_ablation_candidates,
)

STUDY_PARAMS = ["params:evaluate", "params:ablation"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                finetune_ablation_runs,
                [
                    "pretrained_clip",
                    "zeroshot_head",
                    "manifest",
                    "classnames",
                    "params:finetune",
                    "params:ablation",
                ],
                ["ablation_models", "ablation_log"],
                name="finetune_ablation_runs",
                tags=["training", "study"],
            ),
            node(
                score_ablation_candidates,
                [
                    "pretrained_clip",
                    "zeroshot_head",
                    "ablation_models",
                    "tpgm_models",
                    "manifest",
                    "classnames",
                    "class_groups",
                    "params:finetune.val_split",
                    *STUDY_PARAMS,
                ],
                ["ablation_outcomes", "ablation_candidates"],
                name="score_ablation_candidates",
                tags=["evaluation", "study"],
            ),
        ]
    )
