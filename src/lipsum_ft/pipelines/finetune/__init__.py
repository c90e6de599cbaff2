"""The ``finetune`` pipeline: Lipsum-FT and its baselines on the reference domain."""

from lipsum_ft.pipelines.finetune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
