"""A rich progress bar for `extractor run`: documents done, failures and cost so far."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from extractor.recorder import RunSummary


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
