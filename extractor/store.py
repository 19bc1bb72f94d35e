"""Durable results: a SQLite journal (WAL) that each finished document is committed to, and the
Parquet files and run summary materialized from it atomically.

SQLite from the standard library: one file, transactional, survives a killed process (a committed
row is never lost, a half-written one never appears), and answers "was this already paid for?"
without reading Parquet. WAL lets a reader (`extractor runs`, a dry run) look while a run writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

import polars as pl

from extractor.errors import ConfigError, JournalError, output_error
from extractor.layout import Layout

P = ParamSpec("P")
R = TypeVar("R")

JOURNAL_FILE = Layout(Path()).journal.name  # the name is spelled in extractor.layout


def require_results(layout: Layout) -> Path:
    """results.parquet of a schema; a ConfigError naming it when no run has written it yet."""
    if not layout.results.exists():
        raise ConfigError(f"no results yet: {layout.results} does not exist (run `extractor run` first)")
    return layout.results


def journal_path(schema_output_dir: Path) -> Path:
    """Where a schema's journal lives: `<output>/<schema>/journal.sqlite3`."""
    return Layout(schema_output_dir).journal


# -- schema: one ordered list of migrations, numbered by PRAGMA user_version ------------------------------
#
# MIGRATIONS[i] brings a journal from user_version i to i + 1, inside one transaction that also writes the
# new user_version, so a crash leaves the journal at one version or the next, never between. Append new
# migrations at the end; never edit or reorder one that has shipped. Every statement is idempotent
# (IF NOT EXISTS, columns added only when missing): journals were written by code that created tables on
# every open without bumping the version, so a journal at version N may already hold later tables.

_RESULTS_AND_RUNS = (
    """CREATE TABLE IF NOT EXISTS results (
        run_id TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        status TEXT NOT NULL,
        content_sha256 TEXT,
        cache_key TEXT,
        prompt_chars INTEGER,
        row_json TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        PRIMARY KEY (run_id, doc_id)
    )""",
    "CREATE INDEX IF NOT EXISTS results_by_key ON results (cache_key, status, finished_at)",
    "CREATE INDEX IF NOT EXISTS results_by_doc ON results (doc_id, finished_at)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        summary_json TEXT
    )""",
)
# Added while journals stayed at user_version 2 (the old code ran its CREATE TABLE IF NOT EXISTS on every open).
_LATER_TABLES = (
    "CREATE INDEX IF NOT EXISTS results_by_content ON results (content_sha256, status, finished_at)",
    """CREATE TABLE IF NOT EXISTS evals (
        evaluated_at TEXT NOT NULL,
        schema_version TEXT NOT NULL,
        model TEXT NOT NULL,
        field TEXT NOT NULL,
        documents INTEGER NOT NULL,
        accuracy REAL, precision REAL, recall REAL, f1 REAL
    )""",
    """CREATE TABLE IF NOT EXISTS batch_submissions (
        submission_id TEXT PRIMARY KEY,
        batch_id TEXT,
        run_id TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        closed_at TEXT,
        status TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS batch_documents (
        submission_id TEXT NOT NULL,
        custom_id TEXT NOT NULL,
        doc_json TEXT NOT NULL,
        PRIMARY KEY (submission_id, custom_id)
    )""",
    """CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        metrics_json TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        PRIMARY KEY (run_id, doc_id)
    )""",
    # Gold values (class Labels): kept in the journal's database so results and their labels travel together.
    """CREATE TABLE IF NOT EXISTS labels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id TEXT NOT NULL,
        field TEXT NOT NULL,
        value_json TEXT NOT NULL,
        content_sha256 TEXT,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS labels_by_doc ON labels (doc_id, field, id)",
)


def _run(db: sqlite3.Connection, statements: Iterable[str]) -> None:
    # One execute() per statement: executescript() would COMMIT the migration's transaction first.
    for statement in statements:
        db.execute(statement)


def _journal_of_today(db: sqlite3.Connection) -> None:
    """Version 1: today's tables. A new file gets them all; a journal from before incremental runs
    (user_version 0: `results` without cache_key or prompt_chars, index results_cache) gains the missing
    columns and keeps every row."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    if columns:
        for name, kind in (("cache_key", "TEXT"), ("prompt_chars", "INTEGER")):
            if name not in columns:
                db.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
        db.execute("DROP INDEX IF EXISTS results_cache")
    _run(db, _RESULTS_AND_RUNS + _LATER_TABLES)


def _incremental_runs(db: sqlite3.Connection) -> None:
    """Version 2: stamped by the first code that upgraded journals (cache_key, prompt_chars); a journal
    reaching it through this list already has everything since version 1."""


def _tables_added_at_version_2(db: sqlite3.Connection) -> None:
    """Version 3: a journal stamped 2 by older code may lack evals, batch_*, metrics, labels and the
    content index, which that code created on open without a new version."""
    _run(db, _LATER_TABLES)


# Whose a label is: a person's correction (import-corrections) or a labels file's value (eval --labels).
PERSON = "person"
LABELS_FILE = "file"
# Labels stored before version 4 have no kind: import-corrections named their source `<file> (corrections)`.
_KIND_FROM_SOURCE = f"CASE WHEN source LIKE '% (corrections)' THEN '{PERSON}' ELSE '{LABELS_FILE}' END"


def _label_kinds(db: sqlite3.Connection) -> None:
    """Version 4: every label says whose it is (`person` or `file`), so a person's correction can win over
    a labels file whatever the order; earlier labels are told apart by their source."""
    if "kind" not in {row[1] for row in db.execute("PRAGMA table_info(labels)")}:
        db.execute(f"ALTER TABLE labels ADD COLUMN kind TEXT NOT NULL DEFAULT '{LABELS_FILE}'")
        db.execute(f"UPDATE labels SET kind = {_KIND_FROM_SOURCE}")


def _archived_inputs(db: sqlite3.Connection) -> None:
    """Version 5: inputs that `run --archive` moved away, so results keep their rows after the folder empties."""
    db.execute("CREATE TABLE IF NOT EXISTS archived (doc_id TEXT PRIMARY KEY, archived_to TEXT NOT NULL,"
               " run_id TEXT NOT NULL, archived_at TEXT NOT NULL)")


def _retrieval_features(db: sqlite3.Connection) -> None:
    """Version 6: what `--examples similar:K` compares documents by (extractor.examples), computed once per
    content hash and method: an unchanged document is never read or embedded again to choose its examples."""
    db.execute("CREATE TABLE IF NOT EXISTS retrieval_features (content_sha256 TEXT NOT NULL, method TEXT NOT NULL,"
               " features_json TEXT NOT NULL, PRIMARY KEY (content_sha256, method))")


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_journal_of_today, _incremental_runs, _tables_added_at_version_2,
                                     _label_kinds, _archived_inputs, _retrieval_features)
SCHEMA_VERSION = len(MIGRATIONS)

# What readers query: a journal older than SCHEMA_VERSION with all of this can be read without migrating.
_JOURNAL_READS = {"results": {"cache_key", "prompt_chars"}, "runs": set(), "evals": set(), "metrics": set(),
                  "batch_submissions": set(), "batch_documents": set()}


def _user_version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


def _too_new(path: Path, version: int) -> JournalError:
    return JournalError(f"{path} was written by a newer extractor (journal version {version}, this extractor "
                        f"knows up to {SCHEMA_VERSION}): upgrade extractor")


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations this journal has not had yet, each in its own transaction."""
    version = _user_version(db)
    if version > SCHEMA_VERSION:
        raise _too_new(path, version)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")  # the write lock first: two processes opening at once migrate once
        try:
            if _user_version(db) < target:
                MIGRATIONS[target - 1](db)
                db.execute(f"PRAGMA user_version = {target}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A write that fails for want of space or permission raises OutputError naming the file and what to do."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        if (error := output_error(exc, path)) is not None:
            raise error from exc
        raise


def _writes(method: Callable[P, R]) -> Callable[P, R]:
    """`_writing(self.path)` around a method of Journal or Labels."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if getattr(args[0], "readonly", False):  # a write through a read-only open is a bug, not a full disk
            return method(*args, **kwargs)
        with _writing(args[0].path):  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


def _open_for_writing(path: Path) -> sqlite3.Connection:
    with _writing(path):
        return _connect_for_writing(path)


def _connect_for_writing(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed row survives a process crash (not necessarily power loss).
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _open_readonly(path: Path) -> tuple[sqlite3.Connection, int]:
    """A connection that cannot write, and the journal's user_version. Never creates the file."""
    if not path.is_file():
        raise JournalError(f"no journal: {path} does not exist (run `extractor run` first)")
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
    try:
        version = _user_version(db)
    except sqlite3.OperationalError as exc:
        db.close()
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY_DIRECTORY":
            raise
        # A WAL journal with no -wal/-shm files (no writer has it open) in a folder we may not write to:
        # SQLite cannot create its shared-memory index, so read the file as it is.
        db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
        version = _user_version(db)
    if version > SCHEMA_VERSION:
        db.close()
        raise _too_new(path, version)
    return db, version


def _missing(db: sqlite3.Connection, wanted: dict[str, set[str]]) -> list[str]:
    """Tables and columns of `wanted` this database lacks, as `table` or `table.column`."""
    out = []
    for table, columns in wanted.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not present:
            out.append(table)
        out.extend(f"{table}.{c}" for c in sorted(columns - present) if present)
    return out


class PaidExtraction(NamedTuple):
    """One billed extraction of one document, as break-even prices it."""

    run_id: str
    attempts: int | None
    prompt_tokens: int
    completion_tokens: int | None
    cached_tokens: int | None
    cost_usd: float | None
    prompt_chars: int


class Journal:
    """Append-only record of finished documents under `<output>/<schema>/journal.sqlite3`.

    `Journal(path)` opens for writing (creating and migrating as needed); `Journal.open_readonly(path)`
    for commands that only look.
    """

    readonly = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = _open_for_writing(path)

    @classmethod
    def open_readonly(cls, path: Path) -> Journal:
        """Open without any write: no file created, no migration run. Raises JournalError when the journal
        does not exist, or is older than this extractor and lacks tables its readers query."""
        db, version = _open_readonly(path)
        if version < SCHEMA_VERSION:
            missing = _missing(db, _JOURNAL_READS)
            if missing:
                db.close()
                raise JournalError(
                    f"{path} was written by an older extractor (it lacks {', '.join(missing)}): run "
                    "`extractor run` once to upgrade it; commands that only read "
                    "the journal do not change it")
        journal = cls.__new__(cls)
        journal.path = path
        journal.readonly = True
        journal._db = db
        return journal

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_writes
    def start_run(self, run_id: str, started_at: str) -> None:
        self._db.execute("INSERT INTO runs (run_id, started_at) VALUES (?, ?)", (run_id, started_at))

    @_writes
    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        self._db.execute("UPDATE runs SET summary_json = ? WHERE run_id = ?",
                         (json.dumps(summary, default=str), run_id))

    @_writes
    def record(self, run_id: str, row: dict[str, Any], *, cache_key: str | None = None,
               prompt_chars: int | None = None) -> None:
        """Commit one finished document; from here on it is never lost and never paid again."""
        self._db.execute(
            "INSERT OR REPLACE INTO results (run_id, doc_id, status, content_sha256, cache_key, prompt_chars,"
            " row_json, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, row["doc_id"], row["status"], row.get("content_sha256"), cache_key, prompt_chars,
             json.dumps(row, default=str, ensure_ascii=False),
             # commit time, not extracted_at: a carried (cached) row is this run's newest word on the document
             dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")))

    def cached_row(self, cache_key: str) -> dict[str, Any] | None:
        """The newest ok result for this content under the same schema, model and settings."""
        found = self._db.execute(
            "SELECT row_json FROM results WHERE cache_key = ? AND status = 'ok' ORDER BY finished_at DESC LIMIT 1",
            (cache_key,)).fetchone()
        return json.loads(found[0]) if found else None

    def last_seen(self, doc_id: str) -> tuple[str | None, str] | None:
        """(content sha256, status) of the newest row for this document name, if any."""
        found = self._db.execute(
            "SELECT content_sha256, status FROM results WHERE doc_id = ? ORDER BY finished_at DESC LIMIT 1",
            (doc_id,)).fetchone()
        return (found[0], found[1]) if found else None

    def newest_is(self, doc_id: str, row: dict[str, Any], cache_key: str) -> bool:
        """Whether this document's newest row already is `row`: the same ok result (same cache key,
        same extraction time) from the same path."""
        found = self._db.execute(
            "SELECT cache_key, status, json_extract(row_json, '$.source_path'),"
            " json_extract(row_json, '$.extracted_at') FROM results WHERE doc_id = ?"
            " ORDER BY finished_at DESC LIMIT 1", (doc_id,)).fetchone()
        return found is not None and tuple(found) == (cache_key, "ok", row["source_path"], row["extracted_at"])

    def latest_rows(self, doc_ids: Iterable[str]) -> Iterator[str]:
        """The newest row of each of these documents, whichever run wrote it, ordered by doc_id."""
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (doc_id TEXT PRIMARY KEY)")
        self._db.execute("DELETE FROM wanted")
        self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((d,) for d in doc_ids))
        # SQLite returns the other columns of the row that holds MAX() in an aggregate query.
        for _, row_json, _ in self._db.execute(
                "SELECT r.doc_id, r.row_json, MAX(r.finished_at) FROM results r JOIN wanted w USING (doc_id)"
                " GROUP BY r.doc_id ORDER BY r.doc_id"):
            yield row_json

    @_writes
    def record_archived(self, doc_id: str, archived_to: str, run_id: str) -> None:
        """An input `run --archive` moved away once its result was durable."""
        self._db.execute("INSERT OR REPLACE INTO archived VALUES (?, ?, ?, ?)",
                         (doc_id, archived_to, run_id, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))

    def archived(self) -> dict[str, str]:
        """doc_id -> where `run --archive` moved it (empty for a journal from before archiving was recorded)."""
        try:
            return dict(self._db.execute("SELECT doc_id, archived_to FROM archived").fetchall())
        except sqlite3.OperationalError:  # an older journal opened read-only: no such table
            return {}

    def features(self, content_sha256: str, method: str) -> Any | None:
        """The retrieval features stored for these bytes under `method` (None: not computed yet)."""
        try:
            found = self._db.execute("SELECT features_json FROM retrieval_features WHERE content_sha256 = ?"
                                     " AND method = ?", (content_sha256, method)).fetchone()
        except sqlite3.OperationalError:  # an older journal opened read-only: no such table
            return None
        return json.loads(found[0]) if found else None

    @_writes
    def record_features(self, content_sha256: str, method: str, features: Any) -> None:
        """Keep a document's retrieval features by content hash; a read-only open (dry run) keeps nothing."""
        if not self.readonly:
            self._db.execute("INSERT OR REPLACE INTO retrieval_features VALUES (?, ?, ?)",
                             (content_sha256, method, json.dumps(features, ensure_ascii=False)))

    @_writes
    def record_metrics(self, run_id: str, doc_id: str, metrics: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)",
                         (run_id, doc_id, json.dumps(metrics), dt.datetime.now(dt.UTC).isoformat()))

    def latest_metrics(self, doc_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Newest consistency metrics of each of these documents (those that were ever sampled)."""
        wanted = set(doc_ids)
        out: dict[str, dict[str, Any]] = {}
        for doc_id, metrics_json in self._db.execute(
                "SELECT doc_id, metrics_json FROM metrics ORDER BY finished_at"):
            if doc_id in wanted:
                out[doc_id] = json.loads(metrics_json)
        return [out[d] for d in sorted(out)]

    def metrics_of(self, run_id: str, doc_id: str) -> dict[str, Any] | None:
        """The consistency metrics the run that produced a row recorded for its document (None: not sampled)."""
        found = self._db.execute("SELECT metrics_json FROM metrics WHERE run_id = ? AND doc_id = ?",
                                 (run_id, doc_id)).fetchone()
        return json.loads(found[0]) if found else None

    def previous_ok_row(self, content_sha256: str, cache_key: str) -> dict[str, Any] | None:
        """The newest ok result for the same bytes under another schema version, model or settings."""
        found = self._db.execute(
            "SELECT row_json FROM results WHERE content_sha256 = ? AND status = 'ok' AND cache_key IS NOT NULL"
            " AND cache_key != ? ORDER BY finished_at DESC LIMIT 1", (content_sha256, cache_key)).fetchone()
        return json.loads(found[0]) if found else None

    @_writes
    def record_eval(self, rows: list[dict[str, Any]]) -> None:
        self._db.executemany(
            "INSERT INTO evals VALUES (:evaluated_at, :schema_version, :model, :field, :documents, :accuracy,"
            " :precision, :recall, :f1)", rows)

    def eval_history(self) -> list[dict[str, Any]]:
        cursor = self._db.execute("SELECT * FROM evals ORDER BY evaluated_at")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]

    def run_summaries(self) -> list[dict[str, Any]]:
        return [json.loads(s) for (s,) in self._db.execute(
            "SELECT summary_json FROM runs WHERE summary_json IS NOT NULL ORDER BY started_at")]

    def tokens_per_char(self, model: str) -> tuple[float, float, int] | None:
        """(prompt tokens per prompt character, mean completion tokens, documents) observed for a model."""
        found = self._db.execute(
            "SELECT SUM(json_extract(row_json, '$.prompt_tokens')), SUM(prompt_chars),"
            " AVG(json_extract(row_json, '$.completion_tokens')), COUNT(*) FROM results"
            " WHERE prompt_chars > 0 AND json_extract(row_json, '$.model') = ?"
            " AND json_extract(row_json, '$.prompt_tokens') > 0", (model,)).fetchone()
        if not found or not found[3]:
            return None
        return found[0] / found[1], found[2], found[3]

    def paid_extractions(self, model: str) -> list[PaidExtraction]:
        """Every extraction `model` was paid for at the prompting price, each counted once.

        A carried (cached) row is stored again under each later run with the run_id of the run that paid for
        it, and without prompt_chars: both tests keep it out (PRIMARY KEY (run_id, doc_id) does the rest).
        prompt_tokens > 0 keeps documents that never reached the model (unreadable, 4xx) out: they cost
        nothing. Rows answered by the Batch API are billed at its discount, not what prompting costs.
        """
        return [PaidExtraction(*row) for row in self._db.execute(
            "SELECT json_extract(row_json, '$.run_id'), json_extract(row_json, '$.attempts'),"
            " json_extract(row_json, '$.prompt_tokens'), json_extract(row_json, '$.completion_tokens'),"
            " json_extract(row_json, '$.cached_tokens'), json_extract(row_json, '$.cost_usd'), prompt_chars"
            " FROM results WHERE status IN ('ok', 'failed') AND prompt_chars > 0"
            " AND json_extract(row_json, '$.batch_id') IS NULL"
            " AND json_extract(row_json, '$.model') = ? AND json_extract(row_json, '$.run_id') = run_id"
            " AND json_extract(row_json, '$.prompt_tokens') > 0", (model,))]

    def runs_with_summaries(self) -> list[tuple[str, dict[str, Any] | None]]:
        """(run_id, summary) of every run started, in start order; summary None for a run that never
        finished (killed)."""
        return [(run_id, json.loads(s) if s else None) for run_id, s in self._db.execute(
            "SELECT run_id, summary_json FROM runs ORDER BY started_at")]

    # -- Batch API submissions: recorded before the batch is created, closed once collected ----------
    @_writes
    def record_submission(self, submission_id: str, run_id: str, documents: dict[str, dict[str, Any]]) -> None:
        """A submission about to be sent: custom_id -> what is needed to write the document's row later."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO batch_submissions (submission_id, run_id, submitted_at) VALUES (?, ?, ?)",
                             (submission_id, run_id, dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")))
            self._db.executemany("INSERT INTO batch_documents VALUES (?, ?, ?)",
                                 ((submission_id, cid, json.dumps(doc)) for cid, doc in documents.items()))

    @_writes
    def set_batch_id(self, submission_id: str, batch_id: str) -> None:
        self._db.execute("UPDATE batch_submissions SET batch_id = ? WHERE submission_id = ?", (batch_id, submission_id))

    @_writes
    def close_submission(self, submission_id: str, status: str) -> None:
        self._db.execute("UPDATE batch_submissions SET closed_at = ?, status = ? WHERE submission_id = ?",
                         (dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"), status, submission_id))

    def open_submissions(self) -> list[tuple[str, str | None, dict[str, dict[str, Any]]]]:
        """(submission_id, batch_id or None, custom_id -> document) of every submission not collected yet."""
        out = []
        for submission_id, batch_id in self._db.execute(
                "SELECT submission_id, batch_id FROM batch_submissions WHERE closed_at IS NULL ORDER BY submitted_at"
        ).fetchall():
            docs = {cid: json.loads(doc) for cid, doc in self._db.execute(
                "SELECT custom_id, doc_json FROM batch_documents WHERE submission_id = ?", (submission_id,))}
            out.append((submission_id, batch_id, docs))
        return out

    def close(self) -> None:
        self._db.close()


def frame_from_json_rows(rows: Iterable[str], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    buffer = io.BytesIO("\n".join(rows).encode())
    if buffer.getbuffer().nbytes == 0:
        return pl.DataFrame(schema=schema)
    return pl.read_ndjson(buffer, schema=schema)


def write_atomic_bytes(path: Path, data: bytes) -> None:
    with _writing(path):
        _write_atomic_bytes(path, data)


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide reports and exports from colleagues
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


class EventLog:
    """JSON lines, one event per document, flushed as they happen: `<schema>/logs/<run_id>.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with _writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a", encoding="utf-8", buffering=1)

    @_writes
    def write(self, event: str, **fields: Any) -> None:
        self._fh.write(json.dumps({"event": event, **fields}, default=str, ensure_ascii=False) + "\n")

    def close(self) -> None:
        # A full disk loses the audit log's tail, not the journal (the record that counts).
        with contextlib.suppress(OSError):
            self._fh.close()


class Label(NamedTuple):
    """One stored gold value: what, whose (PERSON or LABELS_FILE), from where and when."""

    value: Any
    kind: str
    source: str
    created_at: str


class Labels:
    """Gold values per (document, field): people's corrections and imported label files, one store.

    Kept in the journal's database (same file, same migrations) so results and their labels travel
    together. Append-only, and every label keeps whose it is (`kind`: PERSON for a spreadsheet correction,
    LABELS_FILE for a labels file), where it came from and when. The value of a (doc_id, field) is a
    person's newest correction if there is one, else the newest labels-file value: a labels file never
    overrides what a person corrected, whichever came first.
    """

    readonly = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = _open_for_writing(path)
        self._has_table = True
        self._kind = "kind"

    @classmethod
    def open_readonly(cls, path: Path) -> Labels:
        """Open without any write (see Journal.open_readonly); raises JournalError when there is no
        journal. An older journal that never had a label reads as no labels; one whose labels have no
        kind yet reads them as the migration would."""
        db, version = _open_readonly(path)
        labels = cls.__new__(cls)
        labels.path = path
        labels.readonly = True
        labels._db = db
        labels._has_table = version >= SCHEMA_VERSION or not _missing(db, {"labels": set()})
        labels._kind = "kind" if not _missing(db, {"labels": {"kind"}}) else _KIND_FROM_SOURCE
        return labels

    def __enter__(self) -> Labels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_writes
    def add(self, doc_id: str, field: str, value: Any, *, source: str, content_sha256: str | None,
            kind: str) -> None:
        """Store one gold value; `kind` is PERSON (a correction) or LABELS_FILE (a labels file's value)."""
        if kind not in (PERSON, LABELS_FILE):
            raise ValueError(f"a label's kind is {PERSON!r} or {LABELS_FILE!r}, not {kind!r}")
        self._db.execute(
            "INSERT INTO labels (doc_id, field, value_json, content_sha256, source, created_at, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc_id, field, json.dumps(value, default=str, ensure_ascii=False), content_sha256, source,
             dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), kind))

    def newest(self, kind: str | None = None) -> dict[str, dict[str, Label]]:
        """{doc_id: {field: Label}}: the label that counts for each field (a person's newest correction,
        else the newest labels-file value), or with `kind` the newest label of that kind only."""
        out: dict[str, dict[str, Label]] = {}
        if not self._has_table:
            return out
        for doc_id, field, value_json, label_kind, source, created_at in self._db.execute(
                f"SELECT doc_id, field, value_json, {self._kind}, source, created_at FROM labels WHERE id IN"
                f" (SELECT MAX(id) FROM labels GROUP BY doc_id, field, {self._kind}) ORDER BY doc_id, field, id"):
            if kind is not None and label_kind != kind:
                continue
            fields = out.setdefault(doc_id, {})
            if field in fields and fields[field].kind == PERSON and label_kind != PERSON:
                continue  # a person's correction wins over a labels file, whichever is newer
            fields[field] = Label(json.loads(value_json), label_kind, source, created_at)
        return out

    def latest_with_file(self, from_file: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """`latest()` as it would be once a labels file's values were stored, storing nothing (a dry run): each
        file value counts unless a person corrected that field, as `newest()` decides."""
        out: dict[str, dict[str, Any]] = {}
        people: dict[str, set[str]] = {}
        for doc_id, fields in self.newest().items():
            out[doc_id] = {name: label.value for name, label in fields.items()}
            people[doc_id] = {name for name, label in fields.items() if label.kind == PERSON}
        for doc_id, values in from_file.items():
            for name, value in values.items():
                if name not in people.get(doc_id, set()):
                    out.setdefault(doc_id, {})[name] = value
        return out

    def latest(self, kind: str | None = None) -> dict[str, dict[str, Any]]:
        """{doc_id: {field: value}} of `newest(kind)`."""
        return {doc_id: {name: label.value for name, label in fields.items()}
                for doc_id, fields in self.newest(kind).items()}

    @_writes
    def mirror(self, other: Labels) -> int:
        """Add the labels `other` counts (each kind's newest) that this store lacks or holds otherwise, keeping
        their kind and source: an experiment's own journal sees the team's labels. Returns how many."""
        added = 0
        for kind in (LABELS_FILE, PERSON):
            mine = self.newest(kind)
            for doc_id, fields in other.newest(kind).items():
                for name, label in fields.items():
                    held = mine.get(doc_id, {}).get(name)
                    if held is None or held.value != label.value:
                        self.add(doc_id, name, label.value, source=label.source, content_sha256=None, kind=kind)
                        added += 1
        return added

    def close(self) -> None:
        self._db.close()
