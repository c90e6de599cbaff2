"""Wiring of the ``ablation_report`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.ablation_report.nodes import (
    choose_models,
    compare_diagnostics,
    outcome_matrices,
    plot_diagnostics,
    plot_front,
    plot_sensitivity,
    search_front,
    summarise_sensitivity,
    write_findings,
)

STUDY = ["params:evaluate", "params:ablation"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                outcome_matrices,
                ["ablation_outcomes", "ablation_candidates", *STUDY],
                ["ablation_matrices", "ablation_resamples", "ablation_candidate_scores"],
                name="outcome_matrices",
                tags=["evaluation", "study"],
            ),
            node(
                summarise_sensitivity,
                [
                    "ablation_candidate_scores",
                    "ablation_matrices",
                    "ablation_resamples",
                    "ablation_log",
                    "params:finetune.batch_size",
                    *STUDY,
                ],
                ["ablation_sensitivity_runs", "ablation_sensitivity", "ablation_sensitivity_table"],
                name="summarise_sensitivity",
                tags=["evaluation", "study"],
            ),
            node(
                compare_diagnostics,
                [
                    "ablation_candidate_scores",
                    "ablation_sensitivity_runs",
                    "ablation_matrices",
                    "ablation_resamples",
                    *STUDY,
                ],
                ["ablation_diagnostics", "ablation_method_profile"],
                name="compare_diagnostics",
                tags=["evaluation", "study"],
            ),
            node(
                choose_models,
                ["ablation_candidate_scores", "ablation_matrices", "ablation_resamples", *STUDY],
                ["ablation_picks", "ablation_choice", "ablation_gap_correlation"],
                name="choose_models",
                tags=["evaluation", "study"],
            ),
            node(
                search_front,
                ["ablation_candidate_scores", "ablation_matrices", "ablation_resamples", *STUDY],
                ["ablation_configurations", "ablation_front"],
                name="search_front",
                tags=["evaluation", "study"],
            ),
            node(
                write_findings,
                [
                    "ablation_sensitivity",
                    "ablation_diagnostics",
                    "ablation_method_profile",
                    "ablation_choice",
                    "ablation_gap_correlation",
                    "ablation_front",
                    "params:ablation",
                ],
                ["ablation_findings", "ablation_metrics"],
                name="write_findings",
                tags=["evaluation", "study"],
            ),
            node(
                plot_sensitivity,
                [
                    "ablation_sensitivity_runs",
                    "ablation_candidate_scores",
                    "params:finetune",
                    "params:ablation",
                ],
                "ablation_sensitivity_plot",
                name="plot_sensitivity",
                tags=["evaluation", "study"],
            ),
            node(
                plot_diagnostics,
                ["ablation_candidate_scores", "ablation_diagnostics"],
                "ablation_diagnostics_plot",
                name="plot_diagnostics",
                tags=["evaluation", "study"],
            ),
            node(
                plot_front,
                ["ablation_configurations", "ablation_candidate_scores", "ablation_front"],
                "ablation_front_plot",
                name="plot_front",
                tags=["evaluation", "study"],
            ),
        ]
    )
