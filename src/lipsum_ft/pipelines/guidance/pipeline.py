"""Wiring of the ``guidance`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.guidance.nodes import (
    evaluate_study_arms,
    finetune_study_arms,
    plot_study,
    summarise_study,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                finetune_study_arms,
                [
                    "pretrained_clip",
                    "zeroshot_head",
                    "manifest",
                    "classnames",
                    "params:finetune",
                    "params:guidance_study",
                ],
                ["guidance_study_models", "guidance_study_log"],
                name="finetune_study_arms",
                tags=["training", "study"],
            ),
            node(
                evaluate_study_arms,
                [
                    "pretrained_clip",
                    "zeroshot_head",
                    "guidance_study_models",
                    "manifest",
                    "classnames",
                    "class_groups",
                    "params:evaluate",
                ],
                "guidance_study_results",
                name="evaluate_study_arms",
                tags=["evaluation", "study"],
            ),
            node(
                summarise_study,
                [
                    "guidance_study_results",
                    "guidance_study_log",
                    "params:finetune.batch_size",
                    "params:guidance_study",
                ],
                [
                    "guidance_study_runs",
                    "guidance_study_summary",
                    "guidance_study_table",
                    "guidance_study_metrics",
                ],
                name="summarise_study",
                tags=["evaluation", "study"],
            ),
            node(
                plot_study,
                ["guidance_study_runs", "guidance_study_summary", "params:guidance_study"],
                "guidance_study_plot",
                name="plot_study",
                tags=["evaluation", "study"],
            ),
        ]
    )
