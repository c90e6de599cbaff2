"""The ``zeroshot`` pipeline: the zero-shot head from prompts, and its accuracy on every domain."""

from lipsum_ft.pipelines.zeroshot.pipeline import create_pipeline

__all__ = ["create_pipeline"]
