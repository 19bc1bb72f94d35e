"""The routing store of `--schema auto` (`_routing/routes.sqlite3`): decisions by content hash and candidate set,
each document's route per run, and reviewers' re-routes (a person's label of a document's kind)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from extractor.errors import JournalError
from extractor.store.files import _writes, _writing, frame_from_json_rows, write_parquet_atomic
from extractor.table import routes_schema

VERSION = 1
_TABLES = (
    # The decision for these bytes under this question (candidates, their hints, the rules, the model).
    "CREATE TABLE IF NOT EXISTS decisions (key TEXT PRIMARY KEY, content_sha256 TEXT NOT NULL, decision TEXT NOT NULL,"
    " decided_at TEXT NOT NULL)",
    # Every document's route in every run (the newest is its route; the one before tells a move).
    "CREATE TABLE IF NOT EXISTS routes (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, run_id TEXT NOT NULL,"
    " row TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS routes_doc ON routes (doc_id, id)",
    # A person's re-route: this document (these bytes, or any when NULL) is of this kind ("none": of no known kind).
    "CREATE TABLE IF NOT EXISTS reroutes (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, content_sha256 TEXT,"
    " schema_name TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL)",
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class Routes:
    """The routing store; see the module docstring. Opened by the routed run (writing) or read-only."""

    readonly = False

    def __init__(self, path: Path) -> None:
        self.path = path
        with _writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > VERSION:
                self._db.close()
                raise JournalError(f"{path} was written by a newer extractor (routes version {version}); "
                                   "upgrade extractor to use it")
            for statement in _TABLES:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {VERSION}")

    @classmethod
    def open_readonly(cls, path: Path) -> Routes | None:
        """The store without writing to it; None when no routed run has made one yet."""
        if not path.is_file():
            return None
        store = cls.__new__(cls)
        store.path = path
        store.readonly = True
        store._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        return store

    def decision(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT decision FROM decisions WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    @_writes
    def record_decision(self, key: str, content_sha256: str, decision: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?)",
                         (key, content_sha256, json.dumps(decision, ensure_ascii=False), _now()))

    @_writes
    def record_route(self, run_id: str, row: dict[str, Any]) -> None:
        self._db.execute("INSERT INTO routes (doc_id, run_id, row) VALUES (?, ?, ?)",
                         (row["doc_id"], run_id, json.dumps(row, ensure_ascii=False, default=str)))

    def latest_route(self, doc_id: str) -> dict[str, Any] | None:
        """The document's newest route, of any run."""
        row = self._db.execute("SELECT row FROM routes WHERE doc_id = ? ORDER BY id DESC LIMIT 1", (doc_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def decided_route(self, doc_id: str) -> dict[str, Any] | None:
        """The document's newest route that was decided (a kind or none), not one that waited: deferred by
        --max-cost, its question failed, its text unreadable. Where it was before a move, however many runs its
        route waited in between."""
        for (row,) in self._db.execute("SELECT row FROM routes WHERE doc_id = ? ORDER BY id DESC", (doc_id,)):
            route = json.loads(row)
            if route.get("method") is not None:
                return route
        return None

    def automatic_route(self, doc_id: str) -> dict[str, Any] | None:
        """The document's newest route that the signals decided (not a reviewer's re-route): what `eval --routing`
        scores."""
        for (row,) in self._db.execute("SELECT row FROM routes WHERE doc_id = ? ORDER BY id DESC", (doc_id,)):
            route = json.loads(row)
            if route.get("method") not in (None, "label"):
                return route
        return None

    def latest_routes(self, doc_ids: Iterable[str] | None = None) -> list[str]:
        """The newest route (as JSON) of each of `doc_ids` (None: every document ever routed), by doc_id."""
        rows = self._db.execute(
            "SELECT doc_id, row FROM routes WHERE id IN (SELECT MAX(id) FROM routes GROUP BY doc_id) ORDER BY doc_id")
        wanted = None if doc_ids is None else set(doc_ids)
        return [row for doc_id, row in rows if wanted is None or doc_id in wanted]

    @_writes
    def add_reroute(self, doc_id: str, schema_name: str, *, content_sha256: str | None, source: str) -> None:
        """A person says which kind the document is (`schema_name`, or "none"); it wins over every other signal."""
        self._db.execute("INSERT INTO reroutes (doc_id, content_sha256, schema_name, source, created_at) "
                         "VALUES (?, ?, ?, ?, ?)", (doc_id, content_sha256, schema_name, source, _now()))

    def reroutes(self) -> dict[str, tuple[str, str | None, str]]:
        """doc_id -> (schema_name, content_sha256 or None, source): each document's newest re-route."""
        rows = self._db.execute("SELECT doc_id, schema_name, content_sha256, source FROM reroutes ORDER BY id")
        return {doc_id: (schema, sha, source) for doc_id, schema, sha, source in rows}

    def write_parquet(self, doc_ids: Iterable[str], path: Path) -> int:
        """routes.parquet: the newest route of each of `doc_ids` (the folder's documents); how many rows."""
        frame = frame_from_json_rows(self.latest_routes(doc_ids), routes_schema())
        write_parquet_atomic(frame, path)
        return frame.height

    def close(self) -> None:
        self._db.close()
