"""Project pipelines, in the order the default run chains them."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from lipsum_ft.pipelines import (
    ablation,
    ablation_report,
    data,
    evaluate,
    finetune,
    guidance,
    posthoc,
    pretrain,
    zeroshot,
)

CHAIN = {
    "data": data.create_pipeline,
    "pretrain": pretrain.create_pipeline,
    "zeroshot": zeroshot.create_pipeline,
    "finetune": finetune.create_pipeline,
    "posthoc": posthoc.create_pipeline,
    "evaluate": evaluate.create_pipeline,
}

# Studies reuse the chain's artefacts (data, zero-shot model) and take long, so `kedro run` leaves them out.
STUDIES = {
    "guidance": guidance.create_pipeline,
    "ablation": ablation.create_pipeline,
    "ablation_report": ablation_report.create_pipeline,
}


def register_pipelines() -> dict[str, Pipeline]:
    """Each pipeline by name, ``__default__`` chaining the six of ``CHAIN``, and the studies run on demand."""
    pipelines = {name: create() for name, create in CHAIN.items()}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    pipelines.update({name: create() for name, create in STUDIES.items()})
    return pipelines
