"""The ``ablation`` pipeline: Lipsum-FT's lambda, M and L one at a time over seeds, beside baselines;
every run times the WiSE alpha grid scored image by image (not in the default run; its tables come
from ``ablation_report``).
"""

from lipsum_ft.pipelines.ablation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
