"""The journal: each finished document committed to SQLite (WAL), the runs, evals, metrics and Batch API
books, and the Parquet files materialized from it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from extractor.errors import ConfigError, JournalError
from extractor.layout import Layout
from extractor.store.files import _writes, _writing
from extractor.store.migrations import (
    _JOURNAL_READS,
    SCHEMA_VERSION,
    _missing,
    _open_for_writing,
    _open_readonly,
)

JOURNAL_FILE = Layout(Path()).journal.name  # the name is spelled in extractor.layout


def require_results(layout: Layout) -> Path:
    """results.parquet of a schema; a ConfigError naming it when no run has written it yet."""
    if not layout.results.exists():
        raise ConfigError(f"no results yet: {layout.results} does not exist (run `extractor run` first)")
    return layout.results


def journal_path(schema_output_dir: Path) -> Path:
    """Where a schema's journal lives: `<output>/<schema>/journal.sqlite3`."""
    return Layout(schema_output_dir).journal


class PaidExtraction(NamedTuple):
    """One billed extraction of one document, as break-even prices it."""

    run_id: str
    attempts: int | None
    prompt_tokens: int
    completion_tokens: int | None
    cached_tokens: int | None
    cost_usd: float | None
    prompt_chars: int
    doc_id: str = ""
    sampled: bool = False  # answered K times for self-consistency (its tokens are K answers' tokens)


class BilledDocument(NamedTuple):
    """A document some run paid a model for (any model, the Batch API's answers included): what the
    monthly volume is counted from."""

    run_id: str
    doc_id: str
    content_sha256: str | None
    sampled: bool


# A row's document was answered K times by the run that committed it: that run recorded its consistency metrics.
_SAMPLED = "EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = results.run_id AND m.doc_id = results.doc_id)"


class Journal:
    """Append-only record of finished documents under `<output>/<schema>/journal.sqlite3`.

    `Journal(path)` opens for writing (creating and migrating as needed); `Journal.open_readonly(path)`
    for commands that only look.
    """

    readonly = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = _open_for_writing(path)
        self._committer: _Committer | None = None  # record_async's thread, started by its first row

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
        journal._committer = None
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
        self._db.execute(_RECORD, _record_params(run_id, row, cache_key, prompt_chars))

    async def record_async(self, run_id: str, row: dict[str, Any], *, cache_key: str | None = None,
                           prompt_chars: int | None = None) -> None:
        """`record`, committed by a thread of the journal's own while the event loop goes on; returns once the row
        is committed (it counts only from then on). Raises what `record` raises (OutputError for a full disk)."""
        if self._committer is None:
            self._committer = _Committer(self.path)
        committed = self._committer.submit(_record_params(run_id, row, cache_key, prompt_chars))
        await asyncio.shield(asyncio.wrap_future(committed))  # a cancelled caller's row is committed all the same

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

    def sample_decisions(self, scope: str, doc_ids: Iterable[str]) -> dict[str, bool]:
        """doc_id -> whether it was drawn for self-consistency samples under `scope` (extraction.sampling)."""
        wanted = set(doc_ids)
        try:
            found = self._db.execute("SELECT doc_id, sampled FROM sample_draws WHERE scope = ?", (scope,)).fetchall()
        except sqlite3.OperationalError:  # an older journal opened read-only: no such table
            return {}
        return {doc_id: bool(sampled) for doc_id, sampled in found if doc_id in wanted}

    @_writes
    def record_sample_decisions(self, scope: str, decisions: dict[str, bool]) -> None:
        """Remember draws: a document keeps its decision night after night (its cache key does not flip)."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._db:  # one transaction: a folder of 10,000 new documents is one commit, not 10,000
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO sample_draws VALUES (?, ?, ?, ?)",
                                 ((scope, doc_id, int(sampled), now) for doc_id, sampled in decisions.items()))

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
        return [PaidExtraction(run_id, attempts, prompt, completion, cached, cost, chars, doc_id, bool(sampled))
                for run_id, attempts, prompt, completion, cached, cost, chars, doc_id, sampled in self._db.execute(
            "SELECT json_extract(row_json, '$.run_id'), json_extract(row_json, '$.attempts'),"
            " json_extract(row_json, '$.prompt_tokens'), json_extract(row_json, '$.completion_tokens'),"
            " json_extract(row_json, '$.cached_tokens'), json_extract(row_json, '$.cost_usd'), prompt_chars,"
            f" doc_id, {_SAMPLED}"
            " FROM results WHERE status IN ('ok', 'failed') AND prompt_chars > 0"
            " AND json_extract(row_json, '$.batch_id') IS NULL"
            " AND json_extract(row_json, '$.model') = ? AND json_extract(row_json, '$.run_id') = run_id"
            " AND json_extract(row_json, '$.prompt_tokens') > 0 ORDER BY finished_at", (model,))]

    def billed_documents(self) -> list[BilledDocument]:
        """Every document a run paid a model for, by any model and through the Batch API too, in commit order
        (carried rows and documents that never reached a model are left out, as in `paid_extractions`)."""
        return [BilledDocument(run_id, doc_id, sha, bool(sampled)) for run_id, doc_id, sha, sampled in self._db.execute(
            f"SELECT run_id, doc_id, content_sha256, {_SAMPLED} FROM results"
            " WHERE status IN ('ok', 'failed') AND prompt_chars > 0 AND json_extract(row_json, '$.run_id') = run_id"
            " AND json_extract(row_json, '$.prompt_tokens') > 0 ORDER BY finished_at")]

    def result_row(self, run_id: str, doc_id: str) -> dict[str, Any] | None:
        """The row `run_id` committed for `doc_id` (None: it committed none)."""
        found = self._db.execute("SELECT row_json FROM results WHERE run_id = ? AND doc_id = ?",
                                 (run_id, doc_id)).fetchone()
        return json.loads(found[0]) if found else None

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
        if self._committer is not None:
            self._committer.close()  # every row handed to it is committed (or its error raised) first
            self._committer = None
        self._db.close()


_RECORD = ("INSERT OR REPLACE INTO results (run_id, doc_id, status, content_sha256, cache_key, prompt_chars,"
           " row_json, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def _record_params(run_id: str, row: dict[str, Any], cache_key: str | None,
                   prompt_chars: int | None) -> tuple[Any, ...]:
    return (run_id, row["doc_id"], row["status"], row.get("content_sha256"), cache_key, prompt_chars,
            json.dumps(row, default=str, ensure_ascii=False),
            # commit time, not extracted_at: a carried (cached) row is this run's newest word on the document
            dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"))


class _Committer:
    """A thread with its own connection that commits finished rows, so that SQLite's work (the insert, its index
    updates, the WAL's writes and checkpoints) runs beside the event loop instead of on it: ~7% of the loop's
    time at 200 ms latency (py-spy, bench/throughput.py), and a stall for every document in flight whenever the
    disk is slow. SQLite releases the GIL while it works.

    Rows that queue up while a commit runs are committed together in the next transaction; each caller's future
    resolves only after the transaction holding its row has committed, so nothing counts before it is durable.
    A failed commit fails every row of its transaction, with the error `record` would raise."""

    BATCH = 256

    def __init__(self, path: Path) -> None:
        self.path = path
        # The journal is created and migrated by the Journal's own connection; this one only inserts rows.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA synchronous=NORMAL")  # as the Journal's: a committed row survives a crash
        self._queue: queue.SimpleQueue[tuple[tuple[Any, ...], concurrent.futures.Future[None]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._run, name="extractor-journal", daemon=True)
        self._thread.start()

    def submit(self, params: tuple[Any, ...]) -> concurrent.futures.Future[None]:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((params, done))
        return done

    def _run(self) -> None:
        closing = False
        while not closing:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
            self._commit(batch)
        self._db.close()

    def _commit(self, batch: list[tuple[tuple[Any, ...], concurrent.futures.Future[None]]]) -> None:
        # Running from here on: a caller cancelled now (a run cancelled past its grace period) can no longer
        # withdraw its row, and one cancelled before still has it committed: a paid answer is kept either way.
        waiting = [done for _, done in batch if done.set_running_or_notify_cancel()]
        try:
            with _writing(self.path):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(_RECORD, [params for params, _ in batch])
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
        except BaseException as exc:  # handed to every caller of this transaction
            for done in waiting:
                done.set_exception(exc)
            return
        for done in waiting:
            done.set_result(None)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


