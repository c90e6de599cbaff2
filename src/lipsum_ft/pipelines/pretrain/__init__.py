"""The ``pretrain`` pipeline: the zero-shot model, a tiny CLIP trained here or real open_clip weights."""

from lipsum_ft.pipelines.pretrain.pipeline import create_pipeline

__all__ = ["create_pipeline"]
