"""Progress of `extractor run`: a rich bar on a terminal, steady log lines without one (cron, CI, a pipe)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from extractor.extraction.recorder import RunSummary


def progress_for(console: Console) -> RichProgress | LogProgress:
    """A bar on a terminal; steady log lines for cron and pipes."""
    return RichProgress(console) if console.is_terminal else LogProgress()


class RichProgress:
    """Implements the runner's Observer protocol on a rich Progress."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("failed [red]{task.fields[failed]}"), TextColumn("cost ${task.fields[cost]:.4f}"),
            TimeElapsedColumn(), console=console, transient=False)
        self._task: Any = None

    def started(self, total: int, backend: str, model: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task(f"{backend}:{model}", total=total, failed=0, cost=0.0)

    def finished(self, row: dict[str, Any], totals: RunSummary) -> None:
        # The run's own totals: a reused result's stored cost is not spent again.
        self._progress.update(self._task, advance=1, failed=totals.failed, cost=totals.cost_usd or 0.0)

    def close(self) -> None:
        self._progress.stop()


class LogProgress:
    """The Observer for runs without a terminal: one line every `every_s` seconds (and at the end), so a
    nightly log shows a long run moving instead of staying silent until it finishes."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self._stream = stream or sys.stderr
        self._every_s = every_s
        self._total = 0
        self._done = 0
        self._started = self._last = time.monotonic()
        self._totals: RunSummary | None = None

    def started(self, total: int, backend: str, model: str) -> None:
        self._total = total
        self._done = 0  # `--schema auto` starts one run per schema
        self._started = self._last = time.monotonic()
        self._line(f"started: {total} document(s) with {backend}:{model}")

    def finished(self, row: dict[str, Any], totals: RunSummary) -> None:
        self._done += 1
        self._totals = totals
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            self._report(now)

    def close(self) -> None:
        if self._done:
            self._report(time.monotonic())

    def _report(self, now: float) -> None:
        t = self._totals
        failed = t.failed if t else 0
        cost = f", ${t.cost_usd:.4f} so far" if t and t.cost_usd else ""
        self._line(f"{self._done}/{self._total} document(s) done, {failed} failed{cost}, "
                   f"{now - self._started:.0f} s")

    def _line(self, text: str) -> None:
        self._stream.write(f"progress: {text}\n")
        self._stream.flush()
