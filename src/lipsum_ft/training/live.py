"""Live training curves through DVCLive, so a run can be watched while it goes (``dvc plots show``,
the VS Code DVC extension, ``dvc exp show``) instead of only after its node ends.

One DVCLive folder per pipeline (``dvclive/<pipeline>``): DVCLive keeps one summary file per folder
(``metrics.json``, read by ``dvc metrics``/``dvc exp show``) beside its series (``plots/metrics``,
read by ``dvc plots``), so ``dvc.yaml`` declares two fixed paths for any grid of runs. Inside it each
run has its own series folder (``plots/metrics/<series>/``, e.g. ``lipsum-seed0/train/loss.tsv``)
and its own entry in the summary.

The curves are fed the very rows the loop keeps as its log (``TrainResult.log``, the Kedro log
datasets), on the blocks that already read them from the device: nothing here reads a tensor. The
series keep one point per ``log_every`` block (the block's last row) and every validation; a resumed
run replays the rows its checkpoint restored, so its series equal an uninterrupted run's.
Only global rank 0 writes (``curves_for``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

VAL_PREFIX = "val_"  # row keys of a validation (``val_acc``); the others are training values
NOT_CURVES = frozenset({"step"})


@dataclass  # not frozen: Fabric's spawn launcher copies its arguments and refuses frozen dataclasses
class LiveSettings:
    """Where a run's curves go: the pipeline's DVCLive ``folder`` and the run's ``series`` inside it
    ('' for a pipeline of one run); ``fresh`` clears the folder first (the first run of a pipeline:
    a folder then holds exactly the runs of one pipeline run)."""

    folder: str
    series: str = ""
    fresh: bool = True


class Curves(Protocol):
    """What the loops call: ``add`` on each block's rows, ``finish`` with the run's final summary."""

    def add(self, rows: Sequence[Mapping[str, float]]) -> None: ...

    def finish(self, summary: Mapping[str, float]) -> None: ...


class NoCurves:
    """Curves off (no folder, or a rank other than global rank 0): writes nothing."""

    def add(self, rows: Sequence[Mapping[str, float]]) -> None:
        """Nothing to write."""

    def finish(self, summary: Mapping[str, float]) -> None:
        """Nothing to write."""


def curve_points(
    row: Mapping[str, float], log_every: int, steps: int
) -> tuple[dict[str, float], dict[str, float]]:
    """A log row's training values when its step ends a ``log_every`` block (or the run), and its
    validation values when it has any; names as DVCLive logs them (``train/loss``, ``val/acc``)."""
    step = int(row["step"])
    ends_block = step % log_every == 0 or step == steps
    train, val = {}, {}
    for key, value in row.items():
        if key in NOT_CURVES:
            continue
        if key.startswith(VAL_PREFIX):
            val[f"val/{key.removeprefix(VAL_PREFIX)}"] = float(value)
        elif ends_block:
            train[f"train/{key}"] = float(value)
    return train, val


class LiveCurves:
    """One run's curves in a DVCLive folder.

    DVCLive is set up for a pipeline stage: no ``dvc.yaml`` of its own (``dvcyaml=None``: the
    project's declares the files), no experiment saved at the end (``save_dvc_exp=False``: ``dvc exp
    run`` saves it, and DVCLive warns under ``dvc repro`` and outside git otherwise), no report.
    """

    def __init__(self, settings: LiveSettings, log_every: int, steps: int):
        """Open the folder (cleared when ``settings.fresh``, else kept for the runs before this one)."""
        from dvclive import Live

        self.live = Live(
            dir=settings.folder, resume=not settings.fresh, report=None, save_dvc_exp=False, dvcyaml=None
        )
        self.prefix = f"{settings.series}/" if settings.series else ""
        self.series, self.log_every, self.steps = settings.series, log_every, steps

    def add(self, rows: Sequence[Mapping[str, float]]) -> None:
        """Append the block's points to the series, then update the summary (once per block)."""
        written = False
        for row in rows:
            train, val = curve_points(row, self.log_every, self.steps)
            self.live.step = int(row["step"])
            for name, value in {**train, **val}.items():
                self.live.log_metric(self.prefix + name, value)
                written = True
        if written:
            self.live.next_step()  # summary + the VS Code extension's step signal

    def finish(self, summary: Mapping[str, float]) -> None:
        """Replace the run's entry of the summary with ``summary`` (the results, not the last
        lr or images/s, which stay in the series) and close the logger."""
        entry = {k: v if isinstance(v, int) else float(v) for k, v in summary.items()}  # steps stay whole
        if self.series:
            self.live.summary[self.series] = entry
        else:
            self.live.summary = {k: v for k, v in self.live.summary.items() if k == "step"} | entry
        self.live.end()


def curves_for(settings: LiveSettings | None, log_every: int, steps: int, rank_zero: bool = True) -> Curves:
    """The run's curves: DVCLive on global rank 0 when a folder is set; nothing elsewhere."""
    if settings is None or not rank_zero:
        return NoCurves()
    return LiveCurves(settings, log_every, steps)
