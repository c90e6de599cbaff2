"""The ``ablation_report`` pipeline: the ``ablation`` study's outcomes as tables, plots and findings
(cheap; re-run it alone when the analysis changes).
"""

from lipsum_ft.pipelines.ablation_report.pipeline import create_pipeline

__all__ = ["create_pipeline"]
