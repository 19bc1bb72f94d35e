"""The adaptive in-flight limit: alone, then through the whole pipeline against a rate-limited server."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from extractor.config import RunConfig
from extractor.extraction import runner
from extractor.llm.throttle import AdaptiveLimit
from extractor.views.terminal import print_runs

from .conftest import make_config, server_log, serving, write_docs


def test_a_push_back_halves_the_width_once_per_round() -> None:
    async def main() -> None:
        limit = AdaptiveLimit(8)
        sent = [await limit.acquire() for _ in range(8)]  # eight places without waiting
        assert (limit.in_flight, limit.width) == (8, 8)
        limit.release(sent[0], 429)
        assert (limit.width, limit.cuts, limit.lowest) == (4, 1, 4)
        limit.release(sent[1], 429)  # sent before the cut: it describes the old width, no second cut
        assert (limit.width, limit.cuts) == (4, 1)
        with pytest.raises(TimeoutError):  # 6 in flight, width 4: a new request waits
            async with asyncio.timeout(0.05):
                await limit.acquire()
        assert limit.in_flight == 6 and not limit._waiters

    asyncio.run(main())


def test_successes_widen_back_up_to_the_configured_concurrency() -> None:
    asyncio.run(_widen_back())


async def _widen_back() -> None:
    limit = AdaptiveLimit(4)
    first = await limit.acquire()
    limit.release(first, 503)  # 503 counts as push-back too
    assert limit.width == 2
    for _ in range(2):  # 2 -> 2.5 -> 2.9: about +1 per round of `width` successes
        sent = await limit.acquire()
        limit.release(sent, 200)
    assert limit.width == 2
    sent = await limit.acquire()
    limit.release(sent, 200)
    assert limit.width == 3
    for _ in range(20):
        sent = await limit.acquire()
        limit.release(sent, 200)
    assert limit.width == 4, "never above the configured concurrency"
    sent = await limit.acquire()
    limit.release(sent, 500)  # a server error is not push-back: no cut (the retry policy handles it)
    assert limit.width == 4


def test_width_never_below_one_and_waiters_get_places_in_order() -> None:
    async def main() -> None:
        limit = AdaptiveLimit(2)
        a = await limit.acquire()
        b = await limit.acquire()
        order: list[str] = []

        async def wait(name: str) -> None:
            await limit.acquire()
            order.append(name)

        tasks = [asyncio.create_task(wait(n)) for n in ("x", "y", "z")]
        await asyncio.sleep(0)
        limit.release(a, 429)  # width 2 -> 1 with one still in flight: nobody may start yet
        await asyncio.sleep(0)
        assert order == [] and limit.width == 1
        limit.release(b, None)  # no answer (a connection error): zero in flight, width unchanged, x goes
        await asyncio.sleep(0)
        assert order == ["x"]
        later = limit._last_cut + 1  # a request sent after the cut, pushed back again
        limit.release(later, 429)
        assert limit.width == 1, "never below one"
        await asyncio.sleep(0)
        assert order == ["x", "y"]
        tasks[2].cancel()  # a cancelled waiter gives up its turn without leaking a place
        await asyncio.gather(*tasks, return_exceptions=True)
        assert limit.in_flight == 1 and not limit._waiters  # y's place
        limit.release(later, None)
        assert limit.in_flight == 0

    asyncio.run(main())


def test_a_waiter_cancelled_just_as_it_was_granted_hands_its_place_on() -> None:
    async def main() -> None:
        limit = AdaptiveLimit(1)
        first = await limit.acquire()
        granted_then_cancelled = asyncio.create_task(limit.acquire())
        next_in_line = asyncio.create_task(limit.acquire())
        await asyncio.sleep(0)
        limit.release(first, None)  # grants the place to the first waiter...
        granted_then_cancelled.cancel()  # ...which is cancelled before it could run
        with pytest.raises(asyncio.CancelledError):
            await granted_then_cancelled
        async with asyncio.timeout(1):
            await next_in_line  # the place was handed on, not lost
        assert limit.in_flight == 1

    asyncio.run(main())


def _rate_limited_run(tmp_path: Path, **overrides: object) -> tuple[runner.RunSummary, list[dict], RunConfig]:
    # The server answers 429 to any request beyond 4 in flight; 16 workers start at once.
    with serving(latency_s=0.05, retry_after_s=0.02, max_in_flight=4) as server:
        write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Cover letter number {i}." for i in range(48)})
        config = make_config(tmp_path, server, concurrency=16, **overrides)
        summary = runner.run(config)
        log = server_log(server)
    return summary, [r for r in log if r.get("fault") == "rate-limit"], config


def test_without_the_adaptive_limit_workers_hammer_the_limit(tmp_path: Path) -> None:
    # The control for the next test: each request retrying on its own, honouring Retry-After.
    summary, limited, _ = _rate_limited_run(tmp_path, adapt_concurrency=False)
    assert summary.failed > 0 and len(limited) > 100
    assert summary.lowest_concurrency is None


def test_rate_limited_server_every_document_ends_ok(tmp_path: Path) -> None:
    summary, limited, config = _rate_limited_run(tmp_path)
    assert (summary.ok, summary.failed) == (48, 0)
    assert 0 < len(limited) <= 40
    assert summary.throttled == len(limited)
    assert summary.lowest_concurrency is not None and summary.lowest_concurrency <= 4
    assert any("pushed back" in w and "of 16" in w for w in summary.warnings)
    runs = pl.read_parquet(config.schema_output_dir / "runs.parquet")
    latest = runs.to_dicts()[-1]
    assert (latest["throttled"], latest["lowest_concurrency"]) == (len(limited), summary.lowest_concurrency)
    console = Console(file=io.StringIO(), width=250)
    print_runs(runs, console)
    assert f"rate-limited: in flight down to {summary.lowest_concurrency}" in console.file.getvalue()  # type: ignore[attr-defined]
