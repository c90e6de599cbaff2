"""Project pipelines, in the order the default run chains them."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from lipsum_ft.pipelines import data, evaluate, finetune, posthoc, pretrain, zeroshot

CHAIN = {
    "data": data.create_pipeline,
    "pretrain": pretrain.create_pipeline,
    "zeroshot": zeroshot.create_pipeline,
    "finetune": finetune.create_pipeline,
    "posthoc": posthoc.create_pipeline,
    "evaluate": evaluate.create_pipeline,
}


def register_pipelines() -> dict[str, Pipeline]:
    """Each pipeline by name, and ``__default__`` chaining them all."""
    pipelines = {name: create() for name, create in CHAIN.items()}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
