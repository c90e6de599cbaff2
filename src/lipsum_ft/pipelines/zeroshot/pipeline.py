"""Wiring of the ``zeroshot`` pipeline."""

from kedro.pipeline import Pipeline, node

from lipsum_ft.pipelines.zeroshot.nodes import build_zeroshot_head, evaluate_zeroshot


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_zeroshot_head,
                ["pretrained_clip", "classnames", "params:zeroshot"],
                "zeroshot_head",
                name="build_zeroshot_head",
                tags=["model"],
            ),
            node(
                evaluate_zeroshot,
                ["pretrained_clip", "zeroshot_head", "manifest", "class_groups", "params:zeroshot"],
                ["zeroshot_metrics", "zeroshot_table"],
                name="evaluate_zeroshot",
                tags=["evaluation"],
            ),
        ]
    )
