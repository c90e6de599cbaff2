"""Wiring of the ``evaluate`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.evaluate.nodes import (
    evaluate_variants,
    headline,
    plot_energy_gap,
    plot_reference_vs_shift,
    plot_reliability,
    plot_wise_curves,
    summarise,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                evaluate_variants,
                [
                    "pretrained_clip",
                    "zeroshot_head",
                    "finetuned_clip",
                    "wise_models",
                    "tpgm_models",
                    "manifest",
                    "classnames",
                    "class_groups",
                    "params:evaluate",
                ],
                ["evaluation_results", "reliability_bins"],
                name="evaluate_variants",
                tags=["evaluation"],
            ),
            node(
                summarise,
                ["evaluation_results", "tpgm_summary", "params:evaluate"],
                ["metrics", "results_summary"],
                name="summarise",
                tags=["evaluation"],
            ),
            node(
                headline,
                ["evaluation_results", "params:evaluate"],
                "headline_metrics",
                name="headline",
                tags=["evaluation"],
            ),
            node(
                plot_reliability,
                ["evaluation_results", "reliability_bins", "params:evaluate"],
                "reliability_plot",
                name="plot_reliability",
                tags=["evaluation"],
            ),
            node(
                plot_wise_curves,
                "evaluation_results",
                "wise_curve_plot",
                name="plot_wise_curves",
                tags=["evaluation"],
            ),
            node(
                plot_reference_vs_shift,
                ["evaluation_results", "params:evaluate"],
                "reference_vs_shift_plot",
                name="plot_reference_vs_shift",
                tags=["evaluation"],
            ),
            node(
                plot_energy_gap,
                ["evaluation_results", "params:evaluate"],
                "energy_gap_plot",
                name="plot_energy_gap",
                tags=["evaluation"],
            ),
        ]
    )
