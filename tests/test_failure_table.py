"""Every failure the nightly log can show, with its error_type and words that say what to do.

One row per failure class: the scenario is real (a fault-injecting server over HTTP, a closed port, a
hostname that does not resolve, a TLS handshake with a plain-HTTP server, a parser process that dies
or runs out of time, a full disk), and the test reads the row, summary or error a person would read.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import socket
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor import documents
from extractor.errors import output_error
from extractor.extraction import runner
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import make_config, serving, write_docs


def _rows(config: Any) -> dict[str, dict[str, Any]]:
    return {r["doc_id"]: r for r in pl.read_parquet(config.layout.results).to_dicts()}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# (document text, error_type, words that say what to do)
SERVER_FAULTS = {
    "timeout.txt": ("Letter [[fault:slow*9]]", "APITimeoutError", "raise request_timeout_s"),
    "ratelimit.txt": ("Letter [[fault:429*9]]", "RateLimitError", "lower --concurrency"),
    "server.txt": ("Letter [[fault:503*9]]", "InternalServerError", "check its health"),
    "badjson.txt": ("Letter [[fault:badjson*9]]", "ValidationError", "clearer field descriptions"),
    "invalid.txt": ("Letter [[fault:invalid*9]]", "ValidationError", "clearer field descriptions"),
}


@pytest.mark.integration
def test_server_faults_that_outlast_the_retry_policy(tmp_path: Path) -> None:
    with serving(slow_s=1.0) as server:
        write_docs(tmp_path / "in", {name: text for name, (text, _, _) in SERVER_FAULTS.items()})
        config = make_config(tmp_path, server, max_attempts=2, max_reasks=1, request_timeout_s=0.3)
        summary = runner.run(config)
    rows = _rows(config)
    for name, (_, error_type, advice) in SERVER_FAULTS.items():
        row = rows[name]
        assert (row["status"], row["error_type"]) == ("failed", error_type), (name, row["error_message"])
        assert advice in row["error_message"], (name, row["error_message"])
        assert "the next run tries this document again" in row["error_message"], name
    assert summary.timeouts == 2, "both attempts of the slow document timed out"
    assert any("raise request_timeout_s" in w for w in summary.warnings)


@pytest.mark.parametrize(("base_url", "error_type", "advice"), [
    ("http://127.0.0.1:{closed}/v1", "ConnectionRefused", "is the server running?"),
    ("http://no-such-host.invalid/v1", "DNSError", "check the base URL's host"),
    ("https://127.0.0.1:{port}/v1", "TLSError", "check http:// vs https://"),
])
def test_a_server_that_cannot_be_reached(tmp_path: Path, fake_server: FakeOpenAI, base_url: str,
                                         error_type: str, advice: str) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter A", "b.txt": "Letter B"})
    port = fake_server.base_url.split(":")[2].split("/")[0]
    config = make_config(tmp_path, fake_server, base_url=base_url.format(closed=_closed_port(), port=port),
                         concurrency=1)
    summary = runner.run(config)
    assert summary.exit_code == 2 and summary.aborted is not None and advice in summary.aborted
    rows = _rows(config)
    assert rows["a.txt"]["error_type"] == error_type and advice in rows["a.txt"]["error_message"]
    assert rows["b.txt"]["error_type"] == "RunStopped"


def test_bad_credentials(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter [[fault:401]]"})
    config = make_config(tmp_path, fake_server)
    summary = runner.run(config)
    row = _rows(config)["a.txt"]
    assert row["error_type"] == "AuthError" and "check OPENAI_API_KEY" in row["error_message"]
    assert summary.exit_code == 2


def test_the_cost_limit(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": "Letter " * 200 for i in range(3)})
    summary = runner.run(make_config(tmp_path, fake_server, max_cost_usd=1e-9))
    assert summary.exit_code == 4 and summary.deferred == 3
    assert summary.cost_limited is not None and "raise --max-cost" in summary.cost_limited
    assert "left for the next run" in summary.cost_limited and "after spending $0" in summary.cost_limited
    assert not any("cost limit" in w for w in summary.warnings), "said once, not also as a warning"


def _crash(raw: bytes, options: object = None) -> str:
    os._exit(3)


def _hang(raw: bytes, options: object = None) -> str:
    import time

    time.sleep(30)
    return ""


@pytest.mark.integration
@pytest.mark.parametrize(("parser", "advice"), [(_crash, "probably damaged"), (_hang, "raise parse_timeout_s")])
def test_a_parser_that_dies_or_hangs(tmp_path: Path, fake_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
                                     parser: Any, advice: str) -> None:
    from pebble import ProcessPool

    # The run's forkserver workers import a fresh copy of the parsers; a forked pool inherits this one.
    monkeypatch.setitem(documents.parsers._PARSERS, ".pdf", parser)
    monkeypatch.setattr(documents.DocumentReader, "_get_pool", lambda self: self._pool or _pool(self, ProcessPool))
    write_docs(tmp_path / "in", {"letter.pdf": b"%PDF-1.4 not really", "ok.txt": "Letter"})
    config = make_config(tmp_path, fake_server, parse_timeout_s=1.0)
    summary = runner.run(config)
    row = _rows(config)["letter.pdf"]
    assert (row["status"], row["error_type"]) == ("failed", "DocumentError")
    assert advice in row["error_message"], row["error_message"]
    assert summary.ok == 1


def _pool(reader: Any, pool_class: Any) -> Any:
    reader._pool = pool_class(max_workers=1, context=multiprocessing.get_context("fork"))
    return reader._pool


def test_a_full_disk_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    error = output_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "journal.sqlite3")
    assert error is not None and "journal.sqlite3" in str(error) and "free some space" in str(error)
    assert error.exit_code == 2
    readonly = output_error(OSError(errno.EROFS, "Read-only file system"), tmp_path / "run.lock")
    assert readonly is not None and "--output" in str(readonly)
    assert output_error(OSError(errno.ENOENT, "No such file"), tmp_path) is None, "not about the disk"
