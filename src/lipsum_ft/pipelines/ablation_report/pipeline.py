"""Wiring of the ``ablation_report`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.ablation_report.nodes import (
    choose_models,
    compare_diagnostics,
    outcome_matrices,
    place_pick_on_front,
    plot_diagnostics,
    plot_front,
    plot_sensitivity,
    summarise_sensitivity,
    write_findings,
)

STUDY_PARAMS = ["params:evaluate", "params:ablation"]


def _node(func, inputs, outputs):
    """A node of the study's report, named after its function."""
    return node(func, inputs, outputs, name=func.__name__, tags=["evaluation", "study"])


def analysis_nodes() -> list:
    """Outcome matrices, then sensitivity, diagnostics, model choice and the front, each from them."""
    return [
        _node(
            outcome_matrices,
            ["ablation_outcomes", "ablation_candidates", *STUDY_PARAMS],
            ["ablation_matrices", "ablation_resamples", "ablation_candidate_scores"],
        ),
        _node(
            summarise_sensitivity,
            [
                "ablation_candidate_scores",
                "ablation_matrices",
                "ablation_resamples",
                "ablation_log",
                "params:finetune.batch_size",
                *STUDY_PARAMS,
            ],
            ["ablation_sensitivity_runs", "ablation_sensitivity", "ablation_sensitivity_table"],
        ),
        _node(
            compare_diagnostics,
            [
                "ablation_candidate_scores",
                "ablation_sensitivity_runs",
                "ablation_matrices",
                "ablation_resamples",
                *STUDY_PARAMS,
            ],
            ["ablation_diagnostics", "ablation_method_profile"],
        ),
        _node(
            choose_models,
            ["ablation_candidate_scores", "ablation_matrices", "ablation_resamples", *STUDY_PARAMS],
            ["ablation_picks", "ablation_choice", "ablation_gap_correlation"],
        ),
        _node(
            place_pick_on_front,
            ["ablation_candidate_scores", "ablation_matrices", "ablation_resamples", *STUDY_PARAMS],
            ["ablation_configurations", "ablation_front"],
        ),
    ]


def report_nodes() -> list:
    """The README's findings and the study's figures."""
    return [
        _node(
            write_findings,
            [
                "ablation_sensitivity",
                "ablation_diagnostics",
                "ablation_method_profile",
                "ablation_choice",
                "ablation_gap_correlation",
                "ablation_front",
                "params:finetune",
                "params:ablation",
            ],
            ["ablation_findings", "ablation_metrics"],
        ),
        _node(
            plot_sensitivity,
            [
                "ablation_sensitivity_runs",
                "ablation_candidate_scores",
                "params:finetune",
                "params:ablation",
            ],
            "ablation_sensitivity_plot",
        ),
        _node(
            plot_diagnostics,
            ["ablation_candidate_scores", "ablation_diagnostics"],
            "ablation_diagnostics_plot",
        ),
        _node(
            plot_front,
            ["ablation_configurations", "ablation_candidate_scores", "ablation_front"],
            "ablation_front_plot",
        ),
    ]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([*analysis_nodes(), *report_nodes()])
