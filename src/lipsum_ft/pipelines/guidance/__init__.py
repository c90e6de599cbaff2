"""The ``guidance`` pipeline: Lipsum-FT's text-guidance strategies compared over seeds
(not in the default run).
"""

from lipsum_ft.pipelines.guidance.pipeline import create_pipeline

__all__ = ["create_pipeline"]
