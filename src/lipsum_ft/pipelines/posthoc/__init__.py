"""The ``posthoc`` pipeline: WiSE interpolation and TPGM projection of every fine-tuned model."""

from lipsum_ft.pipelines.posthoc.pipeline import create_pipeline

__all__ = ["create_pipeline"]
