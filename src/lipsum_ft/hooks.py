"""Project hooks: stop a run before any node executes when its parameters or inputs are unusable,
keep the non-zero ranks of a multi-node job from writing, and keep a study's finished runs until the
run that made them has saved its outputs.

Both stops print one line naming the key or the pipeline to run first, not a traceback: the
exception is a ``SystemExit`` subclass, which Kedro's CLI turns into a message and exit code 1.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

from lipsum_ft.atomic import atomic_path, recover
from lipsum_ft.io.rank_zero import RankLocalDataset
from lipsum_ft.params.registry import validate_parameters
from lipsum_ft.params.shared import ParameterError
from lipsum_ft.training.cluster import launched_rank

log = logging.getLogger(__name__)
# the tags of a study's training node: it keeps each finished run in its parameters' ``resume_dir``
STUDY_TRAINING = frozenset({"training", "study"})


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


def _filepath(catalog, name: str) -> Path | None:
    try:
        path = getattr(catalog[name], "_filepath", None)
    except Exception:  # a dataset Kedro cannot build is reported by Kedro itself
        return None
    return Path(path) if path is not None else None


def incomplete_marker(folder: Path, pipeline_name: str | None) -> Path:
    """The file that says a run of ``pipeline_name`` writing into ``folder`` has not finished."""
    return folder / f"INCOMPLETE.{pipeline_name or '__default__'}"


class InterruptedWritesHook:
    """Recover from killed writers, and mark a multi-file output set that a run has not finished.

    Before a run: every catalog path gets ``recover`` (a folder swapped out by a killed save comes
    back; dead writers' temporaries go). Then each folder the run writes into gets an
    ``INCOMPLETE.<pipeline>`` file listing its outputs there; it is removed only when the run
    succeeds, so a report set left half old, half new (a kill during ``evaluate``) says so.
    """

    def __init__(self) -> None:
        self._markers: list[Path] = []

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        for name in list(catalog):
            path = _filepath(catalog, name)
            if path is not None:
                recover(path)
        folders: dict[Path, list[str]] = {}
        for name in sorted(pipeline.all_outputs()):
            path = _filepath(catalog, name)
            if path is not None:
                folders.setdefault(path.parent, []).append(path.name)
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")]
        pipeline_name = "+".join(n for n in names if n) or None
        self._markers = []
        for folder, names in folders.items():
            marker = incomplete_marker(folder, pipeline_name)
            with atomic_path(marker) as temporary:
                temporary.write_text(
                    f"`kedro run --pipeline={pipeline_name or '__default__'}` started "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S')} and has not finished: these files may "
                    f"still be from an earlier run: {', '.join(names)}\n",
                    encoding="utf-8",
                )
            self._markers.append(marker)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        for marker in self._markers:
            marker.unlink(missing_ok=True)
        self._markers = []


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


class StudyRecordsHook:
    """Clear a study's finished runs (``training.run_records``) only when the whole Kedro run has
    succeeded, its outputs saved.

    The records must outlive the study's training node: the scoring and the reports come after it, and
    a run stopped there (preempted while it scores every run on the test images) would otherwise train
    every run again. The log names the folder when the grid ends and again when a run fails; started
    again, the run restores them.
    """

    def __init__(self) -> None:
        self._folders: list[Path] = []

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._folders = []  # the folders of this run only (an interrupted run reaches no end hook)

    @hook_impl
    def after_node_run(self, node, inputs: dict[str, Any]) -> None:
        if not node.tags >= STUDY_TRAINING:
            return
        folders = [
            Path(value["resume_dir"])
            for value in inputs.values()
            if isinstance(value, dict) and value.get("resume_dir")
        ]
        for folder in folders:  # said now: a kill while scoring (SIGTERM) reaches no end hook
            log.info(
                "the study's finished runs stay in %s until this run has saved its outputs: stopped "
                "before that, the same command restores them instead of training them",
                folder,
            )
        self._folders += folders

    @hook_impl
    def after_pipeline_run(self) -> None:
        # imported here: at the top it would load torch into every Kedro command's start-up (settings)
        from lipsum_ft.training.run_records import RunRecords

        for folder in self._folders:
            RunRecords(folder).clear()

    @hook_impl
    def on_pipeline_error(self) -> None:
        for folder in self._folders:
            if folder.is_dir():
                log.warning(
                    "the study's finished runs stay in %s: the same command, run again, restores them "
                    "instead of training them",
                    folder,
                )
