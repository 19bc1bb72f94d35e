"""The batch job: documents in, one typed row per file out, with cost and a summary.

`run(config)` is the library entry point the CLI calls. Documents are read lazily by a bounded pool
of workers, so memory holds at most `concurrency` texts whatever the folder's size. Every finished
document is committed to the journal before it counts as done; a document whose bytes, schema
version, model and settings match a stored ok result is not sent again (`cached`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from extractor.backends import Backend, open_backend
from extractor.budget import Budget
from extractor.config import RunConfig
from extractor.documents import DocumentReader, SourceFile, discover, sha256_file
from extractor.errors import AuthError, ConfigError, DocumentError, ExtractionError, ExtractorError
from extractor.lock import RunLock
from extractor.metrics import Consensus, consensus, field_kinds, leaves, similarity
from extractor.pricing import Pricer
from extractor.prompts import build_messages, system_prompt
from extractor.schemas import Schema, load_schema
from extractor.store import EventLog, Journal, frame_from_json_rows, write_json_atomic, write_parquet_atomic
from extractor.table import row_schema, runs_schema
from extractor.transport import CallMeter

log = logging.getLogger("extractor.runner")


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
    documents: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    cached: int = 0  # ok documents whose stored result was reused (included in `ok`)
    deferred: int = 0  # documents not sent because of the cost limit: left for the next run
    submitted: int = 0  # --batch: documents submitted to the Batch API by this run (their rows come later)
    pending: int = 0  # --batch: documents waiting in a batch an earlier run submitted
    batches: list[str] = field(default_factory=list)  # --batch: ids of the batches this run submitted
    sampled: int = 0  # documents extracted K times for self-consistency
    agreement: dict[str, float] = field(default_factory=dict)  # per field: sum over sampled docs (see mean)
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)  # "old -> new": documents, changed per field
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0
    compute_s: float = 0.0
    requests: int = 0
    transport_retries: int = 0
    throttled: int = 0  # answers that were the server pushing back (429, 503)
    lowest_concurrency: int | None = None  # narrowest the adaptive in-flight limit went, if it was cut
    wall_s: float = 0.0
    docs_per_s: float = 0.0
    started_at: str = ""
    finished_at: str = ""
    results_path: str = ""
    aborted: str | None = None  # the run was stopped by the server (bad credentials)
    interrupted: str | None = None  # the run was stopped by a signal
    cost_limited: str | None = None  # the cost limit stopped new documents from being sent
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.aborted:
            return 2
        if self.interrupted:
            return 130
        if self.cost_limited:
            return 4
        return 1 if self.failed else 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def mean_agreement(self) -> dict[str, float]:
        return {k: v / self.sampled for k, v in self.agreement.items()} if self.sampled else {}


class Interrupted(ExtractorError):
    """The run was cancelled before in-flight documents finished; finished ones are in the journal."""


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


class _LazyBackend:
    """Opens the backend on the first document that needs the model: a run whose documents are all
    cached or skipped starts no embedded server and opens no connection."""

    def __init__(self, config: RunConfig, stack: contextlib.AsyncExitStack) -> None:
        self._config = config
        self._stack = stack
        self._backend: Backend | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Backend:
        async with self._lock:
            if self._backend is None:
                self._backend = await self._stack.enter_async_context(open_backend(self._config))
                _freeze_import_heap()
            return self._backend


_heap_frozen = False


def _freeze_import_heap() -> None:
    """Move the objects that exist now (mostly imported modules: openai, instructor, pydantic) out of
    the garbage collector's reach, once per process.

    A full collection otherwise walks those ~240k long-lived objects and stalls the event loop for
    ~130 ms with every document in flight waiting (measured, bench/throughput.py).
    """
    global _heap_frozen
    if not _heap_frozen:
        import gc

        gc.freeze()
        _heap_frozen = True


class _Run:
    """State of one run; kept private so callers only see `run()` and its summary."""

    def __init__(self, config: RunConfig, schema: Schema, journal: Journal, events: EventLog,
                 summary: RunSummary, observer: Observer | None, files: list[SourceFile], pricer: Pricer) -> None:
        self.config = config
        self.schema = schema
        self.journal = journal
        self.events = events
        self.summary = summary
        self.observer = observer
        self.files = files
        self.system = system_prompt(schema)
        self.pricer = pricer
        self.reader = DocumentReader(max_chars=config.max_chars, timeout_s=config.parse_timeout_s)
        self.stop_reason: str | None = None
        self.last_checkpoint = time.monotonic()
        self.in_flight_keys: dict[str, asyncio.Future[None]] = {}  # cache keys being extracted now
        # Documents submitted to the Batch API and not collected yet: never sent again meanwhile.
        self.in_batch = {key for _, _, docs in journal.open_submissions() for key in docs}
        self.budget = Budget(config.max_cost_usd, self.pricer,
                             journal.tokens_per_char(summary.model) if config.max_cost_usd is not None else None)

    def base_row(self, src: SourceFile) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(self.schema.field_names)
        row.update(
            doc_id=src.doc_id, source_path=str(src.path), content_sha256=None, status="failed",
            error_type=None, error_message=None, schema_name=self.schema.name,
            schema_version=self.summary.schema_version, model=self.summary.model,
            endpoint=self.summary.endpoint, attempts=0, prompt_tokens=0, completion_tokens=0,
            cached_tokens=0, cost_usd=0.0, latency_s=None, compute_s=None, extracted_at=None,
            run_id=self.summary.run_id, batch_id=None)
        return row

    async def process(self, src: SourceFile, backend: _LazyBackend) -> None:
        row = self.base_row(src)
        if (identity := await self.identify(src, row)) is None:
            return None
        raw, key, sampled = identity
        if not self.config.force and (stored := self.journal.cached_row(key)) is not None:
            return self.carry(src, key, stored)  # free: carried even after the run was stopped
        if key in self.in_batch and not self.config.force:
            self.summary.pending += 1  # paid for in a batch already: `run --batch` collects it
            return None
        if self.stop_reason is not None:
            row.update(error_type="RunStopped", error_message=f"not attempted: {self.stop_reason}")
            return self.commit(row)
        # The same bytes under another name may be in flight right now: wait for that answer instead
        # of paying for it twice. If it failed, the next in line tries itself.
        while (same := self.in_flight_keys.get(key)) is not None:
            await same
            stored = self.journal.cached_row(key)
            if stored is not None and (not self.config.force or stored.get("run_id") == self.summary.run_id):
                return self.carry(src, key, stored)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight_keys[key] = done
        try:
            await self.send(src, row, raw, key, sampled, backend)
        finally:
            del self.in_flight_keys[key]
            done.set_result(None)

    async def identify(self, src: SourceFile, row: dict[str, Any]) -> tuple[bytes | None, str, bool] | None:
        """(small text's bytes or None, cache key, sampled?) of a document, its hash put in `row`; None
        when it cannot be read (its failure row is then committed)."""
        try:
            # Small plain text is read right here: a stat and one read of at most 256 KiB cost less
            # than the hop to a worker thread and back (which waited on the busy loop, up to 30 ms).
            raw = DocumentReader.small_text(src)
            row["content_sha256"] = (hashlib.sha256(raw).hexdigest() if raw is not None
                                     else await asyncio.to_thread(sha256_file, src.path))
        except OSError as exc:
            row.update(error_type="DocumentError", error_message=f"cannot read file: {exc.strerror or exc}")
            self.commit(row)
            return None
        key = self.config.document_key(src.doc_id, row["content_sha256"], self.summary.schema_version)
        return raw, key, self.config.sampled(src.doc_id)

    async def prepare(self, src: SourceFile, row: dict[str, Any],
                      raw: bytes | None) -> tuple[list[dict[str, str]], int] | None:
        """(messages, prompt characters) for a document; None when it cannot be parsed (its row is then
        committed: failed, or skipped when there is no text)."""
        try:
            doc = await self.reader.read(src, raw)
        except DocumentError as exc:
            row.update(status=exc.status, error_type="DocumentError" if exc.status == "failed" else None,
                       error_message=str(exc))
            self.commit(row)
            return None
        return build_messages(self.system, doc.text), len(self.system) + len(doc.text)

    def defer(self) -> None:
        """A document not sent because of the cost limit: no row; the next run picks it up."""
        self.summary.deferred += 1
        self.summary.cost_limited = (f"cost limit ${self.config.max_cost_usd:g} reached after "
                                     f"${self.summary.cost_usd or 0.0:.6f}")

    def carry(self, src: SourceFile, key: str, stored: dict[str, Any]) -> None:
        """Count a stored ok result for these bytes as this document's result, without sending it."""
        stored.update(doc_id=src.doc_id, source_path=str(src.path))  # the same bytes may have moved
        # When this document's newest row already is this very result, storing it again adds nothing
        # but a copy of every document to the journal each night a folder is left in place.
        fresh = self.journal.newest_is(src.doc_id, stored, key)
        self.commit(stored, cache_key=key, cached=True, store=not fresh)

    async def send(self, src: SourceFile, row: dict[str, Any], raw: bytes | None, key: str, sampled: bool,
                   backend: _LazyBackend) -> None:
        """Parse the document, extract it through the backend and commit its row (ok or failed)."""
        if (prepared := await self.prepare(src, row, raw)) is None:
            return None
        messages, prompt_chars = prepared
        del raw  # not needed past this point; keep memory to in-flight documents
        if (reservation := self.budget.admit(prompt_chars)) is None:
            return self.defer()
        meter = CallMeter(deadline=time.monotonic() + self.config.document_deadline_s)
        started = time.perf_counter()
        try:
            model = await backend.get()
            # The meter's deadline stops retries from starting; this also bounds an in-flight call.
            async with asyncio.timeout(self.config.document_deadline_s):
                if sampled:
                    answers = await model.sample(messages, self.schema.model, meter,  # type: ignore[attr-defined]
                                                 self.config.samples, self.config.sample_temperature)
                    agreed = consensus(self.schema.model, answers)
                    self.record_consistency(src.doc_id, agreed)
                    if agreed.value is None:
                        raise ExtractionError(f"none of the {agreed.samples} samples passed schema validation",
                                              error_type="ValidationError")
                    row.update(agreed.value)
                else:
                    value = await model.extract(messages, self.schema.model, meter)
                    row.update(value.model_dump(mode="json"))
            row["status"] = "ok"
        except TimeoutError:
            row.update(error_type="DeadlineExceeded",
                       error_message=f"document took longer than {self.config.document_deadline_s:g}s")
        except ExtractionError as exc:
            row.update(error_type=exc.error_type, error_message=str(exc))
        except AuthError as exc:
            self.stop_reason = f"run stopped: {exc}"
            row.update(error_type="AuthError", error_message=str(exc))
        except asyncio.CancelledError:
            # Past the grace period: record what this document already cost, then let the cancel through.
            row.update(error_type="Cancelled", error_message="cancelled by a signal before it finished")
            self.commit(self.charge(row, meter, started, reservation), cache_key=key, prompt_chars=prompt_chars)
            raise
        self.commit(self.charge(row, meter, started, reservation), cache_key=key, prompt_chars=prompt_chars)

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
        kinds = field_kinds(self.schema.model)
        before, after = leaves(previous, kinds), leaves(row, kinds)
        for key, kind in kinds.items():
            if similarity(kind, before.get(key), after.get(key)) < 1.0:
                drift["changed"][key] = drift["changed"].get(key, 0) + 1

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
        if meter.lowest_width is not None:
            s.lowest_concurrency = min(s.lowest_concurrency or meter.lowest_width, meter.lowest_width)
        return row

    def commit(self, row: dict[str, Any], *, cache_key: str | None = None, prompt_chars: int | None = None,
               cached: bool = False, store: bool = True) -> None:
        """Make the row durable (unless it already is, `store=False`), then count it, log it and
        (maybe) archive its input."""
        if not cached:
            row["extracted_at"] = _iso(dt.datetime.now(dt.UTC))
        if store:
            self.journal.record(self.summary.run_id, row, cache_key=cache_key, prompt_chars=prompt_chars)
        if not cached and row["status"] == "ok" and cache_key is not None:
            self.record_drift(row, cache_key)
        s = self.summary
        s.documents += 1
        setattr(s, row["status"], getattr(s, row["status"]) + 1)
        if cached:
            s.cached += 1
        else:
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
            self.archive(Path(row["source_path"]), row["doc_id"])
        if self.observer is not None:
            self.observer.finished(row, self.summary)
        if time.monotonic() - self.last_checkpoint >= self.config.checkpoint_s:
            self.materialize()

    def archive(self, source: Path, doc_id: str) -> None:
        assert self.config.archive_dir is not None
        target = self.config.archive_dir / doc_id
        if target.exists():
            target = target.with_name(f"{target.stem}.{self.summary.run_id}{target.suffix}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
        except OSError as exc:
            self.summary.warnings.append(f"could not archive {doc_id}: {exc}")

    def materialize(self) -> None:
        """results.parquet: the newest row of every document in the folder, from the journal."""
        frame = frame_from_json_rows(self.journal.latest_rows(f.doc_id for f in self.files),
                                     row_schema(self.schema.model))
        results = self.config.schema_output_dir / "results.parquet"
        write_parquet_atomic(frame, results)
        self.summary.results_path = str(results)
        metrics = self.journal.latest_metrics(f.doc_id for f in self.files)
        if metrics:
            write_parquet_atomic(pl.DataFrame(metrics, infer_schema_length=None),
                                 self.config.schema_output_dir / "metrics.parquet")
        self.last_checkpoint = time.monotonic()

    async def worker(self, queue: asyncio.Queue[SourceFile | None], backend: _LazyBackend,
                     stop: asyncio.Event) -> None:
        while (src := await queue.get()) is not None:
            if not stop.is_set():
                await self.process(src, backend)


async def run_async(config: RunConfig, observer: Observer | None = None,
                    stop: asyncio.Event | None = None) -> RunSummary:
    """Extract every document under `config.input_dir`; returns the summary (see `exit_code`).

    Setting `stop` ends the run gracefully: no new document starts, in-flight ones finish.
    """
    schema = load_schema(config.schemas_dir, config.schema)
    pricer = Pricer.for_config(config)
    if config.max_cost_usd is not None and not pricer.known:
        raise ConfigError(f"--max-cost cannot be enforced: no price is known for model {config.resolved_model!r}; "
                          f"set [prices.{config.resolved_model!r}] in the config file")
    try:
        files = discover(config.input_dir)
    except DocumentError as exc:
        raise ConfigError(str(exc)) from None
    stop = stop or asyncio.Event()
    out_dir = config.schema_output_dir
    with RunLock(out_dir / "run.lock"):
        started_at = dt.datetime.now(dt.UTC)
        summary = RunSummary(
            run_id=new_run_id(started_at), schema_name=schema.name, schema_version=schema.version,
            backend=config.resolved_backend, model=config.resolved_model, endpoint=config.endpoint,
            started_at=_iso(started_at))
        journal = Journal(out_dir / "journal.sqlite3")
        journal.start_run(summary.run_id, summary.started_at)
        events = EventLog(out_dir / "logs" / f"{summary.run_id}.jsonl")
        events.write("run_started", run_id=summary.run_id, documents=len(files), model=summary.model,
                     endpoint=summary.endpoint, schema=schema.name, schema_version=schema.version)
        state = _Run(config, schema, journal, events, summary, observer, files, pricer)
        clock = time.perf_counter()
        if observer is not None:
            observer.started(len(files), summary.backend, summary.model)
        try:
            async with contextlib.AsyncExitStack() as stack:
                backend = _LazyBackend(config, stack)
                to_extract = files
                if config.batch:  # submitted and collected through the Batch API, not one by one
                    from extractor.batch import run_batch

                    await run_batch(state, files, await backend.get(), stop)  # type: ignore[arg-type]
                    to_extract = []
                concurrency = config.resolved_concurrency
                queue: asyncio.Queue[SourceFile | None] = asyncio.Queue(maxsize=concurrency * 2)
                workers = [asyncio.create_task(state.worker(queue, backend, stop)) for _ in range(concurrency)]
                try:
                    for src in to_extract:
                        if stop.is_set():
                            break
                        await queue.put(src)
                    for _ in workers:
                        await queue.put(None)
                    await asyncio.gather(*workers)
                finally:
                    for task in workers:
                        task.cancel()
        finally:
            state.reader.close()
            summary.wall_s = round(time.perf_counter() - clock, 3)
            summary.docs_per_s = round(summary.documents / summary.wall_s, 3) if summary.wall_s else 0.0
            summary.finished_at = _iso(dt.datetime.now(dt.UTC))
            summary.aborted = state.stop_reason
            if stop.is_set() and summary.documents < len(files):
                summary.interrupted = getattr(stop, "reason", None) or "stop requested"
            if state.pricer.warning:
                summary.warnings.append(state.pricer.warning)
            if summary.pending and not config.batch:
                summary.warnings.append(f"{summary.pending} document(s) wait in a batch an earlier `run --batch` "
                                        "submitted; they were not sent again: run with --batch to collect them")
            if summary.cost_limited:
                summary.warnings.append(f"{summary.cost_limited}: {summary.deferred} document(s) were not sent "
                                        "and are left for the next run")
            if summary.lowest_concurrency is not None:
                summary.warnings.append(
                    f"the server pushed back {summary.throttled} time(s) (HTTP 429/503): requests in flight were "
                    f"lowered to as few as {summary.lowest_concurrency} of {config.resolved_concurrency} and "
                    "climbed back as answers succeeded; a lower --concurrency or a higher rate limit would "
                    "avoid the retries")
            state.materialize()
            totals = summary.as_dict()
            write_json_atomic(totals, out_dir / "run_summary.json")
            journal.finish_run(summary.run_id, totals)
            write_parquet_atomic(runs_frame(journal.run_summaries()), out_dir / "runs.parquet")
            events.write("run_finished", **{k: v for k, v in totals.items() if k != "warnings"})
            events.close()
            journal.close()
    return summary


def runs_frame(summaries: list[dict[str, Any]]) -> Any:
    import polars as pl

    schema = runs_schema()
    return pl.DataFrame([{k: s.get(k) for k in schema} for s in summaries], schema=schema, strict=False)


def run(config: RunConfig, observer: Observer | None = None) -> RunSummary:
    """Blocking entry point with signal handling for unattended runs.

    First SIGINT/SIGTERM: start no new document, let in-flight ones finish for `grace_s`, write the
    outputs, exit 130. A second signal, or the end of the grace period, cancels what is still in
    flight (its cost so far is recorded).
    """

    async def main() -> RunSummary:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal(name: str) -> None:
            if stop.is_set():
                task.cancel()
                return
            stop.reason = f"stopped by {name}"  # type: ignore[attr-defined]
            stop.set()
            loop.call_later(config.grace_s, task.cancel)

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, sig.name)
        return await run_async(config, observer, stop)

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise Interrupted("interrupted: finished documents were saved; run again to continue") from None
