"""Faults the nightly log has to name: an unreachable server stops the run quickly and says why."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from extractor.extraction import runner
from extractor.llm.transport import ConnectionWatch
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, write_docs


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rows(config: Any) -> list[dict[str, Any]]:
    return pl.read_parquet(config.layout.results).to_dicts()


@pytest.mark.integration
def test_a_refused_port_stops_200_documents_in_seconds(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {f"d{i:03}.txt": f"Letter {i}" for i in range(200)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--base-url",
         f"http://127.0.0.1:{_closed_port()}/v1", "--model", "gpt-4o-mini", "--output", str(tmp_path / "out"),
         "--schemas", str(ROOT / "schemas"), "--no-progress"], capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.monotonic() - started
    assert elapsed < 15, f"took {elapsed:.1f}s"
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "connection refused" in errors[0] and "127.0.0.1" in errors[0], result.stderr
    rows = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet")
    assert rows.height == 200
    kinds = rows["error_type"].value_counts().to_dicts()
    by_kind = {k["error_type"]: k["count"] for k in kinds}
    assert set(by_kind) <= {"ConnectionRefused", "RunStopped"} and by_kind.get("RunStopped", 0) >= 180, by_kind
    assert "timed out" not in " ".join(rows["error_message"].to_list())


def test_dns_and_tls_failures_are_named(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter A"})
    dns = runner.run(make_config(tmp_path, fake_server, base_url="http://no-such-host.invalid/v1"))
    assert dns.exit_code == 2 and dns.aborted is not None and "does not resolve" in dns.aborted
    assert _rows(make_config(tmp_path, fake_server))[0]["error_type"] == "DNSError"
    tls = runner.run(make_config(tmp_path, fake_server, base_url=fake_server.base_url.replace("http:", "https:")))
    assert tls.aborted is not None and "TLS" in tls.aborted
    assert _rows(make_config(tmp_path, fake_server))[0]["error_type"] == "TLSError"


class _HalfRefused(httpx.AsyncBaseTransport):
    """Once the server has answered, sends every other request (at random) to a port nothing listens on: a real
    refused connect. Before its first answer a server refusing half the connects is indistinguishable from one
    that is not there: the watch gives that up after 4 refusals in a row, which the concurrent first requests
    reach before the first answer is back whenever the client is slower than the refusals (measured: 38 of 40
    failed under the full suite's load)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, closed: int, rng: random.Random,
                 state: dict[str, bool]) -> None:
        self._inner, self._closed, self._rng, self._state = inner, closed, rng, state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._state["answered"] and self._rng.random() < 0.5:
            # a copy: the retry policy sends the same request object again
            request = httpx.Request(request.method, request.url.copy_with(port=self._closed),
                                    headers=request.headers, content=request.content)
        response = await self._inner.handle_async_request(request)
        self._state["answered"] = True
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_a_flapping_server_still_completes_every_document(tmp_path: Path, fake_server: FakeOpenAI,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx_aiohttp

    closed, rng, original = _closed_port(), random.Random(7), httpx_aiohttp.AiohttpTransport
    state = {"answered": False}

    def flapping(*args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        return _HalfRefused(original(*args, **kwargs), closed, rng, state)

    monkeypatch.setattr(httpx_aiohttp, "AiohttpTransport", flapping)
    write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter {i}" for i in range(40)})
    summary = runner.run(make_config(tmp_path, fake_server, max_attempts=12))
    assert (summary.ok, summary.failed, summary.aborted) == (40, 0, None)
    assert summary.transport_retries > 10, "half the connects were refused and retried"
    assert len(server_log(fake_server)) == 40


def test_the_watch_trips_on_failures_in_a_row_only() -> None:
    from extractor.llm.transport import Unreachable

    failure = Unreachable("refused", "http://127.0.0.1:1", "refused")
    never = ConnectionWatch()
    for _ in range(ConnectionWatch.NEVER_REACHED - 1):
        never.failed(failure)
    assert never.tripped is None
    never.failed(failure)
    assert never.tripped is not None and "none ever succeeded" in str(never.tripped)

    flapping = ConnectionWatch()
    flapping.answered()
    for _ in range(1000):  # a success between every few failures never trips it
        for _ in range(ConnectionWatch.AFTER_REACHED - 1):
            flapping.failed(failure)
        flapping.answered()
    assert flapping.tripped is None
    for _ in range(ConnectionWatch.AFTER_REACHED):
        flapping.failed(failure)
    assert flapping.tripped is not None and "after the server had answered" in str(flapping.tripped)


# -- a full disk, a read-only output folder -------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux",
                                reason="mounting a small tmpfs needs root on Linux")


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An 8 MiB tmpfs at tmp_path/out, unmounted however the test ends."""
    mount = tmp_path / "out"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave_kib: int) -> Path:
    """Take all but `leave_kib` of the free space."""
    stat = os.statvfs(folder)
    filler = folder / "filler.bin"
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave_kib * 1024))
    return filler


@pytest.mark.integration
@needs_root
def test_a_full_disk_stops_the_run_and_the_next_run_pays_nothing_twice(tmp_path: Path, fake_server: FakeOpenAI,
                                                                      small_disk: Path) -> None:
    import sqlite3

    from extractor.errors import OutputError

    write_docs(tmp_path / "in", {f"d{i:03}.txt": f"Letter {i} " + "words " * 50 for i in range(120)})
    config = make_config(tmp_path, fake_server, concurrency=4)
    journal = config.layout.journal
    journal.parent.mkdir(parents=True)
    filler = _fill(small_disk, leave_kib=480)
    with pytest.raises(OutputError, match=r"cannot write .*: the disk is full: free some space"):
        runner.run(config)
    paid_first = len(server_log(fake_server))
    assert 0 < paid_first < 120, "the run stopped part-way"
    db = sqlite3.connect(journal)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    committed = {r[0] for r in db.execute("SELECT doc_id FROM results WHERE status = 'ok'")}
    db.close()
    assert committed, "documents finished before the disk filled up are kept"

    filler.unlink()
    resumed = runner.run(config)
    assert (resumed.ok, resumed.failed, resumed.cached) == (120, 0, len(committed))
    paid_again = len(server_log(fake_server)) - paid_first
    assert paid_again == 120 - len(committed), "only what was never committed is sent again"
    rows = _rows(config)
    assert len(rows) == 120 and len({r["doc_id"] for r in rows}) == 120


@pytest.mark.integration
@needs_root
def test_a_read_only_output_folder_stops_with_one_line(tmp_path: Path, fake_server: FakeOpenAI,
                                                      small_disk: Path) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter A"})
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    for extra in ([], ["--dry-run"]):
        result = subprocess.run(
            [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--base-url", fake_server.base_url,
             "--model", "gpt-4o-mini", "--output", str(small_disk), "--schemas", str(ROOT / "schemas"),
             "--no-progress", *extra], capture_output=True, text=True, env=env, timeout=60)
        if extra:  # a dry run writes nothing, so a read-only folder is no obstacle
            assert result.returncode == 0, result.stderr
            assert "1 of 1 document(s) would be sent" in " ".join(result.stdout.split())
            continue
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert "read-only" in result.stderr and str(small_disk) in result.stderr
    assert server_log(fake_server) == [], "nothing is sent when nothing could be kept"


@pytest.mark.integration
def test_an_embedded_server_that_died_stops_the_run_at_once(tmp_path: Path) -> None:
    import asyncio

    from extractor.errors import ExtractionError, ServerUnreachable
    from extractor.llm.embedded import EmbeddedBackend, LocalServer
    from extractor.llm.transport import CallMeter

    class Refused:
        async def extract(self, *args: Any) -> Any:
            raise ExtractionError("cannot reach http://127.0.0.1:1: connection refused", error_type="ConnectionRefused")

    log = tmp_path / "server.log"
    log.write_text("llama_model_load: error loading model\n")
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    backend = EmbeddedBackend(Refused(), LocalServer(process=dead, base_url="http://127.0.0.1:1/v1",  # type: ignore[arg-type]
                                                     log_path=log))
    with pytest.raises(ServerUnreachable, match=r"embedded model server stopped \(exit code 3\).*error loading"):
        asyncio.run(backend.extract([], object, CallMeter()))  # type: ignore[arg-type]

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        running = EmbeddedBackend(Refused(), LocalServer(process=alive, base_url="http://127.0.0.1:1/v1",  # type: ignore[arg-type]
                                                         log_path=log))
        with pytest.raises(ExtractionError):  # a live server's failure is the document's, not the run's
            asyncio.run(running.extract([], object, CallMeter()))  # type: ignore[arg-type]
    finally:
        alive.kill()
        alive.wait()
