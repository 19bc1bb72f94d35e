"""The one recorder of a run: every document's row is charged, committed to the journal, counted,
logged, archived and checkpointed here, whichever path produced it (a request, a batch answer, a
carried result, a document that could not be read).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from extractor.config import RunConfig
from extractor.documents import SourceFile
from extractor.errors import ExitCode
from extractor.extraction.budget import Budget
from extractor.extraction.intake import Carry, NotSendable, Unreadable
from extractor.extraction.retrieval import Embedder
from extractor.formatting import usd, usd_as_given
from extractor.llm.pricing import Pricer
from extractor.llm.transport import CallMeter
from extractor.schemas import Schema
from extractor.store import EventLog, Journal, frame_from_json_rows, write_json_atomic, write_parquet_atomic, write_set
from extractor.table import child_fields, child_frame, row_schema, runs_schema
from extractor.values.evidence import (
    EVIDENCE_KEY,
    OcrBox,
    Signals,
    ground_with_flags,
    read_with_evidence,
    split_evidence,
    verdict,
)
from extractor.values.metrics import Consensus, compared_kinds, leaves, similarity

log = logging.getLogger("extractor.extraction.recorder")


class Observer(Protocol):
    """Receives progress; the CLI renders it, tests may count it."""

    def started(self, total: int, backend: str, model: str) -> None: ...

    def finished(self, row: dict[str, Any], totals: RunSummary) -> None: ...


@dataclass
class RunSummary:
    run_id: str
    schema_name: str
    schema_version: str
    backend: str
    model: str
    endpoint: str
    strategy: str = ""  # `whole` or `fields`: how the run asked the model (RunConfig.resolved_strategy)
    documents: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    cached: int = 0  # ok documents whose stored result was reused (included in `ok`)
    deduplicated: int = 0  # of those, copies of a document whose answer came in this very run
    failures: list[list[str]] = field(default_factory=list)  # first failed documents: [doc_id, type, message]
    skips: list[list[str]] = field(default_factory=list)  # first skipped files: [doc_id, why]
    deferred: int = 0  # documents not sent because of the cost limit: left for the next run
    routed_away: int = 0  # --schema auto: asked in this run, their kind was another (or the question failed)
    submitted: int = 0  # --batch: documents submitted to the Batch API by this run (their rows come later)
    pending: int = 0  # documents waiting in a batch an earlier run submitted
    batches: list[str] = field(default_factory=list)  # --batch: ids of the batches this run submitted
    not_found_values: int = 0  # values of fresh results that nothing in their document supports
    not_found_documents: int = 0  # fresh results with at least one such value
    flagged_documents: int = 0  # fresh results with review flags: a schema's check broken, an item's values apart
    unfilled_values: int = 0  # --strategy fields: list items or cells it could not fill (each a review flag)
    unfilled_documents: int = 0  # fresh results with at least one such gap

    chunked: int = 0  # fresh documents too long for the model's context, asked in chunks
    chunks: int = 0  # the chunks those documents were asked in
    conflicts: int = 0  # fields whose chunks gave grounded answers that disagree (extraction.merge)
    conflicted_documents: int = 0  # documents with at least one such field (they need review)
    sampled: int = 0  # documents extracted K times for self-consistency
    # per field: sum over the sampled docs that answered it (see mean_agreement; run_summary.json holds shares)
    agreement: dict[str, float] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)  # per field: sampled docs with an answer to agree on
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)  # "old -> new": documents, changed per field
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0  # chat and embeddings
    embedding_tokens: int = 0  # retrieval = "embeddings": what choosing the examples used
    embedding_cost_usd: float | None = 0.0
    compute_s: float = 0.0
    requests: int = 0
    transport_retries: int = 0
    throttled: int = 0  # answers that were the server pushing back (429, 503)
    timeouts: int = 0  # requests that got no answer within request_timeout_s
    lowest_concurrency: int | None = None  # narrowest the adaptive in-flight limit went, if it was cut
    wall_s: float = 0.0
    docs_per_s: float = 0.0
    started_at: str = ""
    finished_at: str = ""
    results_path: str = ""
    aborted: str | None = None  # the run was stopped by the server (bad credentials)
    interrupted: str | None = None  # the run was stopped by a signal
    cost_limited: str | None = None  # the cost limit stopped new documents from being sent
    batch_failed: str | None = None  # --batch: the submission failed (why, and what happens next)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.aborted:
            return ExitCode.USAGE
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.cost_limited:
            return ExitCode.COST_LIMIT
        return ExitCode.SOME_FAILED if self.failed or self.batch_failed else ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        """run_summary.json: `agreement` as each field's mean share over the sampled documents (0..1)."""
        return {**asdict(self), "agreement": {k: round(v, 6) for k, v in self.mean_agreement.items()}}

    @property
    def mean_agreement(self) -> dict[str, float]:
        """Per field, the mean agreement over the sampled documents where some sample gave it a value."""
        return {k: v / self.answered[k] for k, v in self.agreement.items() if self.answered.get(k)}


MAX_FAILURES_LISTED = 20  # in the summary; results.parquet has every one


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


class Recorder:
    """Rows, counts and outputs of one run; see the module docstring."""

    def __init__(self, config: RunConfig, schema: Schema, journal: Journal, events: EventLog,
                 summary: RunSummary, observer: Observer | None, files: list[SourceFile], pricer: Pricer,
                 budget: Budget) -> None:
        self.config = config
        self.schema = schema
        self.journal = journal
        self.events = events
        self.summary = summary
        self.observer = observer
        self.files = files
        self.pricer = pricer
        self.budget = budget
        self.last_checkpoint = time.monotonic()
        self.row_schema = row_schema(schema.model)  # results.parquet's columns
        # The newest journal row of each document read so far (`read_with_evidence`), kept across checkpoints: the
        # next one reads only the documents committed since (`_dirty`), not the whole journal again. It holds about
        # what results.parquet and evidence.parquet hold, uncompressed, for the run's whole length.
        self._latest: pl.DataFrame | None = None
        self._asked: set[str] = set()  # the documents whose newest row `_latest` holds, or that had none then
        self._dirty: set[str] = set()  # documents committed since `_latest` was read
        self._background: tuple[set[str], concurrent.futures.Future[pl.DataFrame]] | None = None

    def base_row(self, src: SourceFile, sha256: str | None = None, examples: Sequence[str] = ()) -> dict[str, Any]:
        """A document's row before its answer; `examples`: the doc_ids of the retrieved examples it is sent with
        (`--examples similar:K`), recorded with the result on every path (a run, `--batch`)."""
        row: dict[str, Any] = dict.fromkeys(self.schema.field_names)
        row.update(
            doc_id=src.doc_id, source_path=str(src.path), content_sha256=sha256, status="failed",
            error_type=None, error_message=None, schema_name=self.schema.name,
            schema_version=self.summary.schema_version, model=self.summary.model,
            endpoint=self.summary.endpoint, attempts=0, prompt_tokens=0, completion_tokens=0,
            cached_tokens=0, cost_usd=0.0, latency_s=None, compute_s=None, extracted_at=None,
            run_id=self.summary.run_id, batch_id=None, chunks=None, conflicts=None)
        if examples:
            row["examples"] = list(examples)
        return row

    # -- what the intake decided without a request -------------------------------------------------------

    def reject(self, outcome: Unreadable | NotSendable) -> None:
        """A document that cannot be sent: failed (unreadable, broken) or skipped (no text)."""
        if isinstance(outcome, Unreadable):
            row = self.base_row(outcome.src)
            row.update(error_type="DocumentError", error_message=outcome.message)
        else:
            row = self.base_row(outcome.identity.src, outcome.identity.sha256)
            row.update(status=outcome.status, error_type="DocumentError" if outcome.status == "failed" else None,
                       error_message=outcome.message)
        self.commit(row)

    def stopped(self, src: SourceFile, sha256: str, reason: str) -> None:
        """A document not attempted because the run was stopped (bad credentials)."""
        row = self.base_row(src, sha256)
        row.update(error_type="RunStopped", error_message=f"not attempted: {reason}")
        self.commit(row)

    def carry(self, src: SourceFile, key: str, stored: dict[str, Any]) -> None:
        """Count a stored ok result for these bytes as this document's result, without sending it."""
        stored = dict(stored, doc_id=src.doc_id, source_path=str(src.path))  # the same bytes may have moved
        # When this document's newest row already is this very result, storing it again adds nothing
        # but a copy of every document to the journal each night a folder is left in place.
        fresh = self.journal.newest_is(src.doc_id, stored, key)
        self.commit(stored, cache_key=key, cached=True, store=not fresh)

    def carry_decision(self, decision: Carry) -> None:
        self.carry(decision.identity.src, decision.identity.key, decision.stored)

    def pending(self) -> None:
        """A document waiting in a batch: paid for already, `run --batch` collects it."""
        self.summary.pending += 1

    def routed_away(self, src: SourceFile) -> None:
        """A document that is not this run's after all (`--schema auto` asked its kind just before sending it): no
        row, and this schema's results leave it out (a row it had here before is retired, as for a move)."""
        self.files[:] = [f for f in self.files if f.doc_id != src.doc_id]
        self.summary.routed_away += 1

    def defer(self) -> None:
        """A document not sent because of the cost limit: no row; the next run picks it up."""
        self.summary.deferred += 1  # worded in finish(), once in-flight documents have settled their cost

    # -- what a request cost, and what it says ------------------------------------------------------------

    def charge(self, row: dict[str, Any], meter: CallMeter, started: float,
               reservation: tuple[float, float]) -> dict[str, Any]:
        row.update(
            attempts=meter.requests, prompt_tokens=meter.prompt_tokens,
            completion_tokens=meter.completion_tokens, cached_tokens=meter.cached_tokens,
            cost_usd=self.pricer.cost(meter.prompt_tokens, meter.completion_tokens, meter.cached_tokens),
            latency_s=round(time.perf_counter() - started, 6), compute_s=meter.compute_s)
        self.budget.settle(reservation, row["cost_usd"])
        s = self.summary
        s.requests += meter.requests
        s.transport_retries += meter.transport_retries
        s.throttled += meter.throttled
        s.timeouts += meter.timeouts
        if meter.lowest_width is not None:
            s.lowest_concurrency = min(s.lowest_concurrency or meter.lowest_width, meter.lowest_width)
        return row

    def charge_embeddings(self, embedder: Embedder) -> None:
        """What the embeddings calls of `retrieval = "embeddings"` used, priced as the embeddings model, in
        the run's cost (the rows carry their chat cost only: a pool's embeddings serve many documents)."""
        s = self.summary
        s.embedding_tokens = embedder.tokens
        s.requests += embedder.requests
        if not embedder.tokens:
            return
        s.embedding_cost_usd = Pricer(embedder.model, base_url=self.config.base_url,
                                      overrides=self.config.prices).cost(embedder.tokens, 0, 0)
        if s.embedding_cost_usd is None:
            s.warnings.append(f"no price known for embeddings model {embedder.model!r}: the run's cost leaves out "
                              f"its {embedder.tokens:,} tokens; set [prices.{embedder.model!r}] in the config file")
            return
        if s.cost_usd is not None:
            s.cost_usd += s.embedding_cost_usd

    def attach_evidence(self, row: dict[str, Any], text: str, pages: tuple[int, ...] | None,
                        agreement: dict[str, float] | None = None, conflicts: Sequence[str] = (),
                        judged: frozenset[str] | None = None, boxes: Sequence[OcrBox] = (),
                        signals: Signals | None = None) -> None:
        """Where each value of an ok row stands in the document's text (extractor.values.evidence), kept in the row
        itself so that it is committed, carried and replaced exactly as the result is. `conflicts`: fields whose
        chunks disagreed (extraction.merge): the row needs review, and the run counts them. `judged`: the fields
        whose spans only their cue words can judge (the field strategy's, `fields.FieldExtractor.judged`);
        `boxes`: the OCR'd lines; `signals`: what the extraction knows of its values beyond the text
        (evidence.Signals)."""
        if conflicts:
            self.summary.conflicts += len(conflicts)
            self.summary.conflicted_documents += 1
        try:
            found, flags = ground_with_flags(self.schema.model, row, text, pages, agreement, judged, boxes,
                                             signals)
        except Exception as exc:  # a paid result is never lost to its evidence: keep it, say so
            log.warning("could not ground %s: %s: %s", row["doc_id"], type(exc).__name__, exc)
            self.summary.warnings.append(f"evidence for {row['doc_id']} could not be computed ({exc}); "
                                         "its values are kept without it")
            if row.get("review_flags"):  # what the extraction could not fill still says so
                row["needs_review"] = True
            return
        flags = [*(row.get("review_flags") or []), *flags]  # what the extraction itself could not fill first
        try:
            flags += self.schema.flags(row)
        except Exception as exc:  # a schema's check that breaks never costs the row: say so, flag it
            log.warning("the checks of %s failed on %s: %s: %s", self.schema.name, row["doc_id"],
                        type(exc).__name__, exc)
            flags.append(f"the schema's checks could not run ({type(exc).__name__}: {exc})")
        row[EVIDENCE_KEY] = [e.as_dict() for e in found]
        row["grounded"], row["needs_review"] = verdict(found, self.config.review_threshold)
        row["review_flags"] = flags
        if flags:
            row["needs_review"] = True
            self.summary.flagged_documents += 1

        row["needs_review"] = row["needs_review"] or bool(conflicts)
        missing = sum(e.status == "not_found" for e in found)
        if missing:
            self.summary.not_found_values += missing
            self.summary.not_found_documents += 1

    def note_unfilled(self, row: dict[str, Any], notes: Sequence[str]) -> None:
        """What the field strategy could not fill in this row (a table row's cell, a list it found no table for):
        the row's first review flags (attach_evidence adds its own), counted for the run's warning."""
        if notes:
            row["review_flags"] = list(notes)
            self.summary.unfilled_values += len(notes)
            self.summary.unfilled_documents += 1

    def record_consistency(self, doc_id: str, agreed: Consensus) -> None:
        # schema_version and model say which prompt and model the agreement belongs to: a document not
        # sampled again after a schema change keeps its older metrics row.
        metrics = {"doc_id": doc_id, "run_id": self.summary.run_id, "schema_version": self.summary.schema_version,
                   "model": self.summary.model, "samples": agreed.samples,
                   "valid_samples": agreed.valid_samples, "consistency": round(agreed.consistency, 6)}
        metrics.update({f"agree_{k}": round(v, 6) for k, v in agreed.agreement.items()})
        self.journal.record_metrics(self.summary.run_id, doc_id, metrics)
        s = self.summary
        s.sampled += 1
        for key, value in agreed.agreement.items():
            s.agreement[key] = s.agreement.get(key, 0.0) + value
            s.answered[key] = s.answered.get(key, 0) + 1

    def record_drift(self, row: dict[str, Any], cache_key: str) -> None:
        """Compare a fresh result with the same bytes' result under another schema version or model."""
        previous = self.journal.previous_ok_row(row["content_sha256"], cache_key)
        if previous is None or (previous.get("schema_version"), previous.get("model")) == (
                row["schema_version"], row["model"]):
            return
        label = (f"schema {previous.get('schema_version')} ({previous.get('model')}) -> "
                 f"{row['schema_version']} ({row['model']})")
        drift = self.summary.drift.setdefault(label, {"documents": 0, "changed": {}})
        drift["documents"] += 1
        kinds = compared_kinds(self.schema.model)
        before, after = leaves(previous, kinds), leaves(row, kinds)
        for key, kind in kinds.items():
            if similarity(kind, before.get(key), after.get(key)) < 1.0:
                drift["changed"][key] = drift["changed"].get(key, 0) + 1

    # -- durable, counted, logged --------------------------------------------------------------------------

    def commit(self, row: dict[str, Any], *, cache_key: str | None = None, prompt_chars: int | None = None,
               cached: bool = False, store: bool = True) -> None:
        """Make the row durable (unless it already is, `store=False`), then count it, log it and
        (maybe) archive its input."""
        if not cached:
            row["extracted_at"] = iso(dt.datetime.now(dt.UTC))
        if store:
            self.journal.record(self.summary.run_id, row, cache_key=cache_key, prompt_chars=prompt_chars)
        self._committed(row, cache_key, cached)

    async def commit_async(self, row: dict[str, Any], *, cache_key: str | None = None,
                           prompt_chars: int | None = None) -> None:
        """`commit` of an extracted row, its SQLite work done by the journal's thread while the event loop serves
        the other documents in flight; the row counts once it is committed."""
        row["extracted_at"] = iso(dt.datetime.now(dt.UTC))
        await self.journal.record_async(self.summary.run_id, row, cache_key=cache_key, prompt_chars=prompt_chars)
        self._committed(row, cache_key, False)

    def _committed(self, row: dict[str, Any], cache_key: str | None, cached: bool) -> None:
        """Count, log and (maybe) archive a row that is durable now."""
        self._dirty.add(row["doc_id"])
        if not cached and row["status"] == "ok" and cache_key is not None:
            self.record_drift(row, cache_key)
        s = self.summary
        s.documents += 1
        setattr(s, row["status"], getattr(s, row["status"]) + 1)
        if row["status"] == "failed" and len(s.failures) < MAX_FAILURES_LISTED:
            s.failures.append([row["doc_id"], row["error_type"] or "", row["error_message"] or ""])
        if row["status"] == "skipped" and len(s.skips) < MAX_FAILURES_LISTED:
            s.skips.append([row["doc_id"], row["error_message"] or ""])
        if cached:
            s.cached += 1
        else:
            if (row.get("chunks") or 0) > 1:
                s.chunked += 1
                s.chunks += row["chunks"]
            s.prompt_tokens += row["prompt_tokens"] or 0
            s.completion_tokens += row["completion_tokens"] or 0
            s.cached_tokens += row["cached_tokens"] or 0
            s.compute_s = round(s.compute_s + (row["compute_s"] or 0.0), 3)
            if row["cost_usd"] is None and (row["prompt_tokens"] or row["completion_tokens"]):
                s.cost_usd = None
            elif s.cost_usd is not None:
                s.cost_usd += row["cost_usd"] or 0.0
        self.events.write(
            "document", doc_id=row["doc_id"], status=row["status"], cached=cached, attempts=row["attempts"],
            prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
            cached_tokens=row["cached_tokens"], cost_usd=row["cost_usd"], latency_s=row["latency_s"],
            error_type=row["error_type"], error_message=row["error_message"])
        if self.config.archive_dir is not None and row["status"] == "ok":
            src = SourceFile.of(Path(row["source_path"]), row["doc_id"])
            if src.part is None:  # an e-mail's part: the routed run moves the e-mail once all its parts are done
                self.archive(src)
        if self.observer is not None:
            self.observer.finished(row, self.summary)
        if time.monotonic() - self.last_checkpoint >= self.config.checkpoint_s:
            self.materialize()

    def archive(self, src: SourceFile) -> None:
        assert self.config.archive_dir is not None
        target = self.config.archive_dir / src.doc_id
        if target.exists():
            target = target.with_name(f"{target.stem}.{self.summary.run_id}{target.suffix}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src.path, target)
        except OSError as exc:
            self.summary.warnings.append(f"could not archive {src.doc_id}: {exc}")
            return
        self.journal.record_archived(src.doc_id, str(target), self.summary.run_id)

    def materialize(self) -> None:
        """results.parquet (and metrics.parquet): the newest row of every document in the folder."""
        layout = self.config.layout
        # Every document in the folder, and every one an archiving run moved away: a nightly feed that
        # archives its drop keeps the history in its results (and spreadsheet) instead of emptying them.
        archived = self.journal.archived()
        wanted = {f.doc_id for f in self.files} | archived.keys()
        frame, evidence = split_evidence(self.read_ahead(wanted).filter(pl.col("doc_id").is_in(wanted))
                                         .sort("doc_id"), self.row_schema)
        source = self.config.input_dir
        moved = {doc_id: target for doc_id, target in archived.items()  # unless a new file came back under its name
                 if source is None or not (source / doc_id).exists()}
        frame = frame.with_columns(archived_to=pl.col("doc_id").replace_strict(moved, default=None,
                                                                              return_dtype=pl.String))
        # One set: the child tables from the very frame results.parquet is written from, and the evidence of the
        # same rows, of one generation (`store.outputs`: readers never see them mixed; a child table of a field the
        # schema no longer has is deleted).
        children = {name: child_frame(frame, name, item) for name, item in child_fields(self.schema.model).items()}
        write_set(layout, frame, evidence, children)
        self.summary.results_path = str(layout.results)
        metrics = self.journal.latest_metrics(f.doc_id for f in self.files)
        if metrics:
            write_parquet_atomic(pl.DataFrame(metrics, infer_schema_length=None), layout.metrics)
        self.last_checkpoint = time.monotonic()

    def read_ahead(self, wanted: set[str] | None = None) -> pl.DataFrame:
        """The newest journal row of every `wanted` document (default: the folder's and the archived ones), read
        with its evidence (`read_with_evidence`), in no order. Rows read by an earlier call (or by
        `read_ahead_in_background`) are not read again unless their document was committed since."""
        self._settle_background()
        unread = self._take_unread(wanted)
        try:
            fresh = frame_from_json_rows(self.journal.latest_rows(unread), read_with_evidence(self.row_schema))
        except BaseException:
            self._give_back(unread)
            raise
        return self._merge(unread, fresh)

    def read_ahead_in_background(self) -> None:
        """`read_ahead` in a thread with a connection of its own, while the event loop serves the answers still
        on their way: the runner starts it once every document has been sent, so that the results written at the
        end parse only the rows of the last answers. A failure here only loses the head start."""
        if self._background is not None:
            return
        unread = self._take_unread(None)
        path, schema = self.journal.path, read_with_evidence(self.row_schema)

        def read() -> pl.DataFrame:
            with Journal.open_readonly(path) as journal:
                return frame_from_json_rows(journal.latest_rows(unread), schema)

        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="extractor-read-ahead")
        self._background = (unread, pool.submit(read))
        pool.shutdown(wait=False)

    def _take_unread(self, wanted: set[str] | None) -> set[str]:
        if wanted is None:
            wanted = {f.doc_id for f in self.files} | self.journal.archived().keys()
        # Only this run writes the journal while it holds the run lock, and every row it writes passes `_committed`
        # once it is durable: a document not committed since its row was read still has that row.
        unread = (wanted - self._asked) | self._dirty
        self._asked, self._dirty = self._asked | unread, set()
        return unread

    def _give_back(self, unread: set[str]) -> None:
        self._asked -= unread
        self._dirty |= unread

    def _merge(self, unread: set[str], fresh: pl.DataFrame) -> pl.DataFrame:
        if self._latest is not None:
            fresh = pl.concat([self._latest.filter(~pl.col("doc_id").is_in(list(unread))), fresh])
        self._latest = fresh
        return fresh

    def _settle_background(self) -> None:
        if self._background is None:
            return
        unread, reading = self._background
        self._background = None
        try:
            fresh = reading.result()
        except Exception:
            log.debug("reading the committed rows ahead failed; they are read again", exc_info=True)
            self._give_back(unread)
        else:
            self._merge(unread, fresh)

    def finish(self) -> None:
        """The run's last outputs: results, run_summary.json, runs.parquet, the end of the audit log."""
        s = self.summary
        if self.pricer.warning:
            s.warnings.append(self.pricer.warning)
        if s.pending and not self.config.batch:
            s.warnings.append(f"{s.pending} document(s) wait in a batch an earlier `run --batch` "
                              "submitted; they were not sent again: run with --batch to collect them")
        if s.deferred:  # one message, said once (the CLI prints it as the error line of exit code 4)
            s.cost_limited = (f"cost limit {usd_as_given(self.config.max_cost_usd)} reached after spending "
                              f"{usd(s.cost_usd)}: {s.deferred} document(s) were not sent and are left for the "
                              "next run (raise --max-cost to send them now)")
        if s.unfilled_values:
            s.warnings.append(
                f"the field strategy could not fill {s.unfilled_values} list item(s) or cell(s) in "
                f"{s.unfilled_documents} document(s): those rows need review (review_flags says which row and "
                "field); a larger model (--model) or --strategy whole may read them")

        if s.conflicted_documents:
            s.warnings.append(
                f"{s.conflicted_documents} long document(s) had {s.conflicts} field(s) whose chunks gave different "
                "answers, each found in its part of the text: the first best-evidenced answer was kept and the "
                "rows need review (results.parquet: conflicts)")
        if s.timeouts:
            s.warnings.append(
                f"{s.timeouts} request(s) got no answer within request_timeout_s = "
                f"{self.config.request_timeout_s:g}s (retried by the policy); for a slow provider raise "
                "request_timeout_s in the config file")
        if s.lowest_concurrency is not None:
            s.warnings.append(
                f"the server pushed back {s.throttled} time(s) (HTTP 429/503): requests in flight were "
                f"lowered to as few as {s.lowest_concurrency} of {self.config.resolved_concurrency} and "
                "climbed back as answers succeeded; a lower --concurrency or a higher rate limit would "
                "avoid the retries")
        self.materialize()
        layout = self.config.layout
        totals = s.as_dict()
        write_json_atomic(totals, layout.summary)
        self.journal.finish_run(s.run_id, totals)
        write_parquet_atomic(runs_frame(self.journal.run_summaries()), layout.runs)
        self.events.write("run_finished", **{k: v for k, v in totals.items() if k != "warnings"})


def runs_frame(summaries: list[dict[str, Any]]) -> pl.DataFrame:
    schema = runs_schema()
    return pl.DataFrame([{k: s.get(k) for k in schema} for s in summaries], schema=schema, strict=False)
