"""The batch job: documents in, one typed row per file out, with cost and a summary.

`run(config)` is the library entry point the CLI calls. Documents are read lazily by a bounded pool
of workers, so memory holds at most `concurrency` texts whatever the folder's size. Every finished
document is committed to the journal before it counts as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from extractor.backends import Backend, open_backend
from extractor.config import RunConfig
from extractor.documents import SourceFile, discover, load_document
from extractor.errors import AuthError, ConfigError, DocumentError, ExtractionError, ExtractorError
from extractor.pricing import Pricer
from extractor.prompts import build_messages, system_prompt
from extractor.schemas import Schema, load_schema
from extractor.store import Journal, frame_from_json_rows, write_json_atomic, write_parquet_atomic
from extractor.table import row_schema
from extractor.transport import CallMeter

log = logging.getLogger("extractor.runner")

class Observer(Protocol):
    """Receives progress; the CLI renders it, tests may count it."""

    def started(self, total: int, backend: str, model: str) -> None: ...

    def finished(self, row: dict[str, Any]) -> None: ...

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
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0
    compute_s: float = 0.0
    requests: int = 0
    transport_retries: int = 0
    wall_s: float = 0.0
    docs_per_s: float = 0.0
    started_at: str = ""
    finished_at: str = ""
    results_path: str = ""
    aborted: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.aborted:
            return 2
        return 1 if self.failed else 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)

def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")

class _Run:
    """State of one run; kept private so callers only see `run()` and its summary."""

    def __init__(self, config: RunConfig, schema: Schema, journal: Journal, summary: RunSummary,
                 observer: Observer | None) -> None:
        self.config = config
        self.schema = schema
        self.journal = journal
        self.summary = summary
        self.observer = observer
        self.system = system_prompt(schema)
        self.pricer = Pricer(summary.model, base_url=config.base_url, overrides=config.prices,
                             free=summary.backend == "embedded")
        self.stop_reason: str | None = None

    def base_row(self, src: SourceFile) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(self.schema.field_names)
        row.update(
            doc_id=src.doc_id, source_path=str(src.path), content_sha256=None, status="failed",
            error_type=None, error_message=None, schema_name=self.schema.name,
            schema_version=self.summary.schema_version, model=self.summary.model,
            endpoint=self.summary.endpoint, attempts=0, prompt_tokens=0, completion_tokens=0,
            cached_tokens=0, cost_usd=0.0, latency_s=None, compute_s=None, extracted_at=None,
            run_id=self.summary.run_id)
        return row

    async def process(self, src: SourceFile, backend: Backend) -> dict[str, Any]:
        row = self.base_row(src)
        if self.stop_reason is not None:
            row.update(error_type="RunStopped", error_message=f"not attempted: {self.stop_reason}")
            return row
        try:
            doc = await asyncio.to_thread(load_document, src, max_chars=self.config.max_chars)
        except DocumentError as exc:
            row.update(status=exc.status, content_sha256=exc.sha256,
                       error_type="DocumentError" if exc.status == "failed" else None,
                       error_message=str(exc))
            return row
        row["content_sha256"] = doc.sha256
        messages = build_messages(self.system, doc.text)
        del doc  # the text is not needed past this point; keep memory to in-flight documents
        meter = CallMeter(deadline=time.monotonic() + self.config.document_deadline_s)
        started = time.perf_counter()
        try:
            # The meter's deadline stops retries from starting; this also bounds an in-flight call.
            async with asyncio.timeout(self.config.document_deadline_s):
                value = await backend.extract(messages, self.schema.model, meter)
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
        row.update(
            attempts=meter.requests, prompt_tokens=meter.prompt_tokens,
            completion_tokens=meter.completion_tokens, cached_tokens=meter.cached_tokens,
            cost_usd=self.pricer.cost(meter.prompt_tokens, meter.completion_tokens, meter.cached_tokens),
            latency_s=round(time.perf_counter() - started, 6), compute_s=meter.compute_s)
        s = self.summary
        s.requests += meter.requests
        s.transport_retries += meter.transport_retries
        return row

    def commit(self, row: dict[str, Any]) -> None:
        row["extracted_at"] = _iso(dt.datetime.now(dt.UTC))
        self.journal.record(self.summary.run_id, row)
        s = self.summary
        s.documents += 1
        setattr(s, row["status"], getattr(s, row["status"]) + 1)
        s.prompt_tokens += row["prompt_tokens"] or 0
        s.completion_tokens += row["completion_tokens"] or 0
        s.cached_tokens += row["cached_tokens"] or 0
        s.compute_s = round(s.compute_s + (row["compute_s"] or 0.0), 3)
        if row["cost_usd"] is None and (row["prompt_tokens"] or row["completion_tokens"]):
            s.cost_usd = None
        elif s.cost_usd is not None:
            s.cost_usd += row["cost_usd"] or 0.0
        if self.observer is not None:
            self.observer.finished(row)

    async def worker(self, queue: asyncio.Queue[SourceFile | None], backend: Backend) -> None:
        while (src := await queue.get()) is not None:
            self.commit(await self.process(src, backend))

async def run_async(config: RunConfig, observer: Observer | None = None) -> RunSummary:
    """Extract every document under `config.input_dir`; returns the summary (see `exit_code`)."""
    schema = load_schema(config.schemas_dir, config.schema)
    try:
        files = discover(config.input_dir)
    except DocumentError as exc:
        raise ConfigError(str(exc)) from None
    started_at = dt.datetime.now(dt.UTC)
    summary = RunSummary(
        run_id=new_run_id(started_at), schema_name=schema.name, schema_version=schema.version,
        backend=config.resolved_backend, model=config.resolved_model, endpoint=config.endpoint,
        started_at=_iso(started_at))
    out_dir = config.schema_output_dir
    journal = Journal(out_dir / "journal.sqlite3")
    journal.start_run(summary.run_id, summary.started_at)
    state = _Run(config, schema, journal, summary, observer)
    clock = time.perf_counter()
    if observer is not None:
        observer.started(len(files), summary.backend, summary.model)
    try:
        async with open_backend(config) as backend:
            queue: asyncio.Queue[SourceFile | None] = asyncio.Queue(maxsize=config.resolved_concurrency * 2)
            workers = [asyncio.create_task(state.worker(queue, backend)) for _ in range(config.resolved_concurrency)]
            try:
                for src in files:
                    await queue.put(src)
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
    finally:
        summary.wall_s = round(time.perf_counter() - clock, 3)
        summary.docs_per_s = round(summary.documents / summary.wall_s, 3) if summary.wall_s else 0.0
        summary.finished_at = _iso(dt.datetime.now(dt.UTC))
        summary.aborted = state.stop_reason
        if state.pricer.warning:
            summary.warnings.append(state.pricer.warning)
        _materialize(journal, schema, summary, out_dir)
        journal.close()
    return summary

def _materialize(journal: Journal, schema: Schema, summary: RunSummary, out_dir: Path) -> None:
    frame = frame_from_json_rows(journal.rows(summary.run_id), row_schema(schema.model))
    results = out_dir / "results.parquet"
    write_parquet_atomic(frame, results)
    summary.results_path = str(results)
    totals = summary.as_dict()
    write_json_atomic(totals, out_dir / "run_summary.json")
    journal.finish_run(summary.run_id, totals)

class Interrupted(ExtractorError):
    """The run was stopped by SIGINT/SIGTERM; what finished is in the journal and the outputs."""


def run(config: RunConfig, observer: Observer | None = None) -> RunSummary:
    """Blocking entry point. SIGTERM cancels the run like Ctrl-C, so outputs are still written."""

    async def main() -> RunSummary:
        task = asyncio.current_task()
        assert task is not None
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_async(config, observer)

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise Interrupted("interrupted: finished documents were saved; run again to continue") from None
