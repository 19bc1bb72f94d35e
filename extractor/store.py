"""Durable results: a SQLite journal (WAL) that each finished document is committed to, and the
Parquet file and run summary materialized from it atomically.

SQLite from the standard library: one file, transactional, survives a killed process, and lets the
next run look up what was already paid for without reading Parquet.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    status TEXT NOT NULL,
    content_sha256 TEXT,
    row_json TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, doc_id)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    summary_json TEXT
);
"""


class Journal:
    """Append-only record of finished documents under `<output>/<schema>/journal.sqlite3`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed row survives a process crash (not necessarily power loss).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def start_run(self, run_id: str, started_at: str) -> None:
        self._db.execute("INSERT INTO runs (run_id, started_at) VALUES (?, ?)", (run_id, started_at))

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        self._db.execute("UPDATE runs SET summary_json = ? WHERE run_id = ?",
                         (json.dumps(summary, default=str), run_id))

    def record(self, run_id: str, row: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO results (run_id, doc_id, status, content_sha256, row_json, finished_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, row["doc_id"], row["status"], row.get("content_sha256"),
             json.dumps(row, default=str, ensure_ascii=False), row["extracted_at"]))

    def rows(self, run_id: str) -> Iterator[str]:
        for (row_json,) in self._db.execute(
                "SELECT row_json FROM results WHERE run_id = ? ORDER BY doc_id", (run_id,)):
            yield row_json

    def close(self) -> None:
        self._db.close()


def frame_from_json_rows(rows: Iterable[str], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    buffer = io.BytesIO("\n".join(rows).encode())
    if buffer.getbuffer().nbytes == 0:
        return pl.DataFrame(schema=schema)
    return pl.read_ndjson(buffer, schema=schema)


def write_atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Readers see the old file or the new one, never half of one."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    write_atomic_bytes(path, buffer.getvalue())


def write_json_atomic(payload: dict[str, Any], path: Path) -> None:
    write_atomic_bytes(path, (json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n").encode())
