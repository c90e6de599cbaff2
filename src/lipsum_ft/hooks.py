"""Project hooks: stop a run before any node executes when its parameters or inputs are unusable,
and keep the non-zero ranks of a multi-node job from writing.

Both stops print one line naming the key or the pipeline to run first, not a traceback: the
exception is a ``SystemExit`` subclass, which Kedro's CLI turns into a message and exit code 1.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

from lipsum_ft.io.rank_zero import RankLocalDataset
from lipsum_ft.params import ParameterError, validate_parameters
from lipsum_ft.training.cluster import launched_rank


class RunAborted(SystemExit):
    """A run refused to start; the message says why and what to do."""


class InvalidParameters(RunAborted):
    """A parameter group failed validation."""


class MissingInputs(RunAborted):
    """A pipeline needs artefacts that no earlier run produced."""


class ValidateParametersHook:
    """Fail at start-up, naming the key, when a parameter group is malformed."""

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            validate_parameters(context.params)
        except ParameterError as error:
            raise InvalidParameters(str(error)) from None


class MissingInputsHook:
    """Name the pipeline to run first when a pipeline's inputs do not exist yet."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        missing = [
            name
            for name in sorted(pipeline.inputs())
            if not name.startswith("params:") and name != "parameters" and not catalog.exists(name)
        ]
        if not missing:
            return
        from kedro.framework.project import pipelines

        producers: dict[str, str] = {}
        for name, candidate in pipelines.items():
            if name != "__default__":
                for output in candidate.all_outputs():
                    producers.setdefault(output, name)
        first = list(dict.fromkeys(producers.get(name, "?") for name in missing))
        raise MissingInputs(
            f"missing input(s) {', '.join(missing)}: run `kedro run --pipeline={' / '.join(first)}` first "
            "(or `kedro run` for the whole chain)"
        )


class RankZeroWritesHook:
    """Under torchrun/srun, only global rank 0 writes catalog outputs; other ranks keep theirs in memory."""

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        rank = launched_rank()
        if rank == 0:
            return
        for name in list(catalog.keys()):
            dataset = catalog.get(name)
            if not isinstance(dataset, MemoryDataset):
                catalog[name] = RankLocalDataset(dataset, rank)
