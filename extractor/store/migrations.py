"""The journal's schema: one ordered list of migrations numbered by PRAGMA user_version, and the ways to
open a journal (for writing, migrating as needed; read-only, never creating or migrating)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from extractor.errors import JournalError
from extractor.store.files import _writing

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
    """Version 6: what `--examples similar:K` compares documents by (extractor.extraction.retrieval), computed once per
    content hash and method: an unchanged document is never read or embedded again to choose its examples."""
    db.execute("CREATE TABLE IF NOT EXISTS retrieval_features (content_sha256 TEXT NOT NULL, method TEXT NOT NULL,"
               " features_json TEXT NOT NULL, PRIMARY KEY (content_sha256, method))")


def _sample_draws(db: sqlite3.Connection) -> None:
    """Version 7: who was drawn for self-consistency samples, per seed and fraction (extraction.sampling), so
    the draw is exact and a document keeps its decision (and its cache key) as the folder grows."""
    db.execute("CREATE TABLE IF NOT EXISTS sample_draws (scope TEXT NOT NULL, doc_id TEXT NOT NULL,"
               " sampled INTEGER NOT NULL, decided_at TEXT NOT NULL, PRIMARY KEY (scope, doc_id))")


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_journal_of_today, _incremental_runs, _tables_added_at_version_2,
                                     _label_kinds, _archived_inputs, _retrieval_features, _sample_draws)
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


