"""The ``evaluate`` pipeline: every model variant on every domain, with reports and plots."""

from lipsum_ft.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
