"""Documents prepared ahead of a free place (`runner.ahead_of_slots`): never more than `concurrency` requests at the
server, every document done, and a stop sends none of the documents still waiting for a place."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from extractor.extraction import runner
from extractor.extraction.recorder import RunSummary

from .conftest import make_config, server_log, serving, write_docs


def test_a_remote_run_prepares_half_its_concurrency_again(tmp_path: Path) -> None:
    with serving() as server:
        assert runner.ahead_of_slots(make_config(tmp_path, server, concurrency=32)) == 16
        assert runner.ahead_of_slots(make_config(tmp_path, server, concurrency=1)) == 1
        assert runner.ahead_of_slots(make_config(tmp_path, server, engine="ray")) == 0
    embedded = make_config(tmp_path, server, base_url=None, api_key=None, model=None, backend="embedded")
    assert embedded.resolved_backend == "embedded" and runner.ahead_of_slots(embedded) == 0


@pytest.mark.parametrize("adapt", [True, False])
def test_no_more_than_concurrency_requests_reach_the_server(tmp_path: Path, adapt: bool) -> None:
    write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter number {i:02} " + "words " * 30 for i in range(40)})
    with serving(latency_s=0.05) as server:
        summary = runner.run(make_config(tmp_path, server, concurrency=4, adapt_concurrency=adapt))
        assert (summary.ok, summary.failed) == (40, 0)
        # Six workers prepare documents; four places at the server, and they were all used.
        assert server.peak_in_flight == 4
        assert len(server_log(server)) == 40


class _StopSoon:
    """An observer that sets the run's stop event `after_s` seconds into the run."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.stop = asyncio.Event()

    def started(self, total: int, backend: str, model: str) -> None:
        asyncio.get_running_loop().call_later(self.after_s, self.stop.set)

    def finished(self, row: dict[str, Any], totals: RunSummary) -> None:
        pass


def test_a_stop_sends_none_of_the_documents_waiting_for_a_place(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter number {i:02} " + "words " * 30 for i in range(20)})
    with serving(latency_s=1.0) as server:
        config = make_config(tmp_path, server, concurrency=2)
        assert runner.ahead_of_slots(config) == 1
        # Stopped while two requests wait for their answers and a third document, prepared, waits for a place.
        observer = _StopSoon(after_s=0.4)
        summary = asyncio.run(runner.run_async(config, observer, observer.stop))
        assert len(server_log(server)) == 2, "the document waiting for a place was not sent"
        assert (summary.ok, summary.failed) == (2, 0) and summary.interrupted
        again = runner.run(config)
        assert (again.ok, again.cached) == (20, 2)
        assert len(server_log(server)) == 20, "the next run sends exactly what had no row"
