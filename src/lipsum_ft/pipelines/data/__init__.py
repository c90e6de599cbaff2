"""The ``data`` pipeline: dataset folder (or embedded DigitDomains) -> validated manifest."""

from lipsum_ft.pipelines.data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
