"""Durable results: a SQLite journal (WAL) that each finished document is committed to, and the
Parquet files and run summary materialized from it atomically.

SQLite from the standard library: one file, transactional, survives a killed process (a committed
row is never lost, a half-written one never appears), and answers "was this already paid for?"
without reading Parquet. WAL lets a reader (`extractor runs`, a dry run) look while a run writes.

- `journal`: `Journal`, the results, runs, evals, metrics and Batch API books of one schema's outputs;
- `labels`: `Labels`, gold values of people and labels files, and the rule that a person's correction wins;
- `routes`: `Routes`, the decisions of `--schema auto` (its own file beside the schemas' outputs) and
  reviewers' re-routes;
- `migrations`: the journal's schema as an ordered list of migrations, and how a journal is opened;
- `outputs`: one checkpoint's results, evidence and child tables as one set, written together (`write_set`) and
  read together (`read_set`: export, eval and review never see new results with old evidence or child tables);
- `files`: atomic writes of bytes, Parquet and JSON, and the per-run event log.

May import: the shared top modules (`errors`, `layout`, `schemas`, `table`); no other room.
"""

from extractor.store.files import (
    EventLog,
    frame_from_json_rows,
    write_atomic_bytes,
    write_json_atomic,
    write_parquet_atomic,
)
from extractor.store.journal import (
    JOURNAL_FILE,
    BilledDocument,
    Journal,
    PaidExtraction,
    journal_path,
    require_results,
)
from extractor.store.labels import Label, Labels
from extractor.store.migrations import LABELS_FILE, PERSON, SCHEMA_VERSION, migrate
from extractor.store.outputs import OutputSet, read_set, write_set
from extractor.store.routes import Routes

__all__ = [
    "JOURNAL_FILE", "LABELS_FILE", "PERSON", "SCHEMA_VERSION", "BilledDocument", "EventLog", "Journal", "Label",
    "Labels", "OutputSet", "PaidExtraction", "Routes", "frame_from_json_rows", "journal_path", "migrate", "read_set",
    "require_results", "write_atomic_bytes", "write_json_atomic", "write_parquet_atomic", "write_set",
]
