"""What a benchmark run on a lent GPU keeps when it is cut short.

A lent device machine gives one command ten minutes and a session fifteen, start included, and a
command that runs past its limit is killed. Three things make such a run still worth its minutes:

- ``JsonReport``: the benchmark's JSON, rewritten atomically after every phase with ``"complete":
  false`` until the end (and ``"error"`` if the run failed), so a kill leaves every figure measured
  before it, never a half-written file;
- ``Budget``: the seconds the run may take, against which an optional phase (a compiled re-run) is
  skipped, with the reason in the JSON, when its estimate would not fit;
- ``JsonReport.recording``: the SIGTERM that a time limit sends (``timeout``) unwinds like an
  error, so the JSON names it and temporary folders are removed.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lipsum_ft.atomic import atomic_path  # the scripts that import this put the checkout's src first


def rounded(value: Any, digits: int) -> Any:
    """``value`` with every float, in dicts and lists too, rounded to ``digits`` decimals."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


class JsonReport:
    """``figures`` so far, written to ``path`` (if any, floats to ``digits`` decimals) after every
    ``update``."""

    def __init__(self, path: Path | None, digits: int) -> None:
        self.path = path
        self.digits = digits
        self.figures: dict[str, Any] = {"complete": False}

    def update(self, **fields: Any) -> None:
        self.figures.update(fields)
        self._write()

    def fail(self, error: BaseException) -> None:
        """Name the error in the JSON (what was measured before it stays)."""
        self.update(error=f"{type(error).__name__}: {error}")

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Run the measurement: a SIGTERM ends it as ``SystemExit`` (the training loop's own
        preemption handler takes over while it runs, and ends its run with ``Preempted``), and any
        error that ends it is named in the JSON before it propagates."""
        signal.signal(signal.SIGTERM, _stop)
        try:
            yield
        except BaseException as error:
            self.fail(error)
            raise

    def finish(self) -> str:
        """Mark the run complete and write it; the JSON text."""
        self.figures["complete"] = True
        return self._write()

    def _write(self) -> str:
        text = json.dumps(rounded(self.figures, self.digits), indent=2)
        if self.path is not None:
            with atomic_path(self.path) as temporary:
                temporary.write_text(text + "\n")
        return text


class Budget:
    """``seconds`` of wall time from now (None: no limit)."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started = clock()

    def used(self) -> float:
        return self.clock() - self.started

    def skip_reason(self, what: str, estimate_s: float) -> str | None:
        """None if ``what`` (about ``estimate_s`` seconds) fits in what is left; else why it is skipped."""
        used = self.used()  # one reading: the reason gives the figure the decision was made on
        if self.seconds is None or used + estimate_s <= self.seconds:
            return None
        return (
            f"skipped: {what} needs about {estimate_s:.0f} s and {used:.0f} s "
            f"of the {self.seconds:.0f} s budget (--budget-s) were used"
        )


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by {signal.Signals(signum).name}")
