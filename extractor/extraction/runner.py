"""The batch job: documents in, one typed row per file out, with cost and a summary.

`run(config)` is the library entry point the CLI calls. Documents are read lazily by a bounded pool
of workers, so memory holds at most `concurrency` texts (and the half as many again prepared ahead of a free
place, `ahead_of_slots`) whatever the folder's size. Every finished
document is committed to the journal before it counts as done; a document whose bytes, schema
version, model and settings match a stored ok result is not sent again (`cached`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from extractor.config import RunConfig
from extractor.documents import DocumentReader, SourceFile, discover
from extractor.errors import ConfigError, DocumentError, Interrupted, OutputError
from extractor.extraction.budget import Budget
from extractor.extraction.intake import Carry, Fresh, Intake, NotSendable, Pending, Ready, Unreadable
from extractor.extraction.lock import RunLock
from extractor.extraction.recorder import Observer, Recorder, RunSummary, iso, runs_frame
from extractor.extraction.work import Outcome, add_counts, deadline_s, extract_row
from extractor.llm.backends import Backend, open_backend
from extractor.llm.pricing import Pricer
from extractor.llm.tokens import TokenRate, answer_tokens
from extractor.llm.transport import ANSWERED, CallMeter
from extractor.schemas import Schema, load_schema
from extractor.store import EventLog, Journal

if TYPE_CHECKING:
    from extractor.extraction.rayengine import RayEngine

__all__ = ["Gate", "Interrupted", "Observer", "RunSummary", "run", "run_async", "runs_frame"]

# Asked of each ready document just before it is sent (`--schema auto`: its routing question, asked with the
# extraction's own prompt start): False, it is not this run's (no row here; the caller sends it elsewhere).
Gate = Callable[[Ready], Awaitable[bool]]

log = logging.getLogger("extractor.extraction.runner")


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class _LazyBackend:
    """Opens the backend on the first document that needs the model: a run whose documents are all
    cached or skipped starts no embedded server and opens no connection."""

    def __init__(self, config: RunConfig, opener: Callable[[], Awaitable[Backend]] | None = None) -> None:
        self._config = config
        self.stack: contextlib.AsyncExitStack | None = None  # set by the run: where the backend is closed
        self._backend: Backend | None = None
        self._opener = opener  # a caller's backend (`--schema auto` shares one across its schemas), opened lazily
        self._lock = asyncio.Lock()

    async def get(self) -> Backend:
        async with self._lock:
            if self._backend is None:
                if self._opener is not None:
                    self._backend = await self._opener()
                else:
                    assert self.stack is not None, "the run opens the backend inside its exit stack"
                    self._backend = await self.stack.enter_async_context(open_backend(self._config))
                _freeze_import_heap()
            return self._backend

    async def embed(self, texts: list[str], model: str, meter: CallMeter) -> list[list[float]]:
        """The backend's embeddings (retrieved examples ranked by embeddings), opening it if need be."""
        return await (await self.get()).embed(texts, model, meter)


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
    """The workers of one run: the intake decides, the backend answers, the recorder keeps the books."""

    def __init__(self, config: RunConfig, schema: Schema, intake: Intake, recorder: Recorder,
                 gate: Gate | None = None) -> None:
        self.config = config
        self.schema = schema
        self.intake = intake
        self.recorder = recorder
        self.gate = gate
        self.stop_reason: str | None = None
        self.unwritable: OutputError | None = None  # the output folder refused a write: the run stops
        self.in_flight_keys: dict[str, asyncio.Future[None]] = {}  # cache keys being extracted now
        self.engine: RayEngine | None = None  # engine = "ray": where documents are read and extracted
        # Places for documents asking the model (`concurrency` of them) when more workers than that prepare
        # documents ahead (`ahead_of_slots`); None: every worker asks as soon as its document is ready.
        self.slots: asyncio.Semaphore | None = None
        self.stop = asyncio.Event()  # the run's graceful stop (a signal): a document still waiting is not sent
        self.unsent = 0  # with `slots`: documents of this run not yet sent nor settled without a request

    async def process(self, src: SourceFile, backend: _LazyBackend) -> None:
        decision = await self.intake.triage(src)
        rec = self.recorder
        if isinstance(decision, Unreadable):
            return rec.reject(decision)
        if isinstance(decision, Carry):
            return rec.carry_decision(decision)  # free: carried even after the run was stopped
        if isinstance(decision, Pending):
            return rec.pending()
        identity = decision.identity
        if self.stop_reason is not None:
            return rec.stopped(src, identity.sha256, self.stop_reason)
        # The same bytes under another name may be in flight right now: wait for that answer instead
        # of paying for it twice. If it failed, the next in line tries itself.
        key = identity.key
        while (same := self.in_flight_keys.get(key)) is not None:
            await same
            stored = rec.journal.cached_row(key)
            if stored is not None and (not self.config.force or stored.get("run_id") == rec.summary.run_id):
                rec.summary.deduplicated += 1
                return rec.carry(src, key, stored)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight_keys[key] = done
        try:
            await self.send(decision, backend)
        finally:
            del self.in_flight_keys[key]
            done.set_result(None)

    async def send(self, fresh: Fresh, backend: _LazyBackend) -> None:
        """Parse the document, extract it through the backend and commit its row (ok or failed)."""
        rec = self.recorder
        ready = await (self.intake.prepare(fresh) if self.engine is None else self.engine.prepare(fresh))
        if isinstance(ready, NotSendable):
            return rec.reject(ready)
        if self.slots is None:
            if (asked := await self.ask(ready, backend)) is not None:
                await self.settle(*asked)
            return None
        slots = self.slots
        await slots.acquire()  # prepared ahead, it waits here for one of `concurrency` places
        held = True
        if (sending := UNSENT.get(None)) is not None:
            sending.set()

        def free() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        try:
            if self.stop.is_set():
                return None  # stopped while it waited: never sent, no row; the next run sends it
            if self.stop_reason is not None:
                return rec.stopped(ready.identity.src, ready.identity.sha256, self.stop_reason)
            # Its place is free once its (first) answer is read: the next document is sent while this answer is
            # validated, grounded and committed. The transport's gate still keeps `concurrency` on the wire.
            token = ANSWERED.set(free)
            try:
                outcome = await self.ask(ready, backend)
            finally:
                ANSWERED.reset(token)
        finally:
            free()
        if outcome is not None:
            await self.settle(*outcome)
        return None

    async def ask(self, ready: Ready, backend: _LazyBackend
                  ) -> tuple[Ready, dict[str, Any], CallMeter, float, tuple[float, float], Outcome] | None:
        """Admit `ready` under the cost limit and extract it; returns what `settle` commits. None: not this run's
        (the gate), deferred (the cost limit) or sent through the Ray engine, which commits itself."""
        rec = self.recorder
        if self.gate is not None and not await self.gate(ready):
            rec.routed_away(ready.identity.src)
            return None
        # Reserved only now, as it is sent: documents waiting for a place reserve nothing before the first
        # costs are known, so they cannot carry the run past its limit on a first estimate.
        if (reservation := self.intake.admit(ready)) is None:
            rec.defer()
            return None
        identity = ready.identity
        row = rec.base_row(identity.src, identity.sha256, identity.example_ids)
        if self.engine is not None:  # in a Ray actor: it returns the row, what it cost and its counters
            await self.send_remote(ready, row, reservation)
            return None
        meter = CallMeter(deadline=time.monotonic() + deadline_s(self.config, ready))
        started = time.perf_counter()
        try:
            outcome = await extract_row(self.config, self.schema, self.intake, ready, backend.get, meter, row, rec)
        except asyncio.CancelledError:
            # Past the grace period: record what this document already cost, then let the cancel through.
            row.update(error_type="Cancelled", error_message="cancelled by a signal before it finished")
            rec.commit(rec.charge(row, meter, started, reservation), cache_key=identity.key,
                       prompt_chars=ready.prompt_chars)
            raise
        return ready, row, meter, started, reservation, outcome

    async def settle(self, ready: Ready, row: dict[str, Any], meter: CallMeter, started: float,
                     reservation: tuple[float, float], outcome: Outcome) -> None:
        """Charge and commit an extracted row (either engine's), record its samples' agreement."""
        rec = self.recorder
        if outcome.consensus is not None:
            rec.record_consistency(ready.identity.src.doc_id, outcome.consensus)
        if outcome.stop is not None:
            self.stop_reason = outcome.stop
        await rec.commit_async(rec.charge(row, meter, started, reservation), cache_key=ready.identity.key,
                               prompt_chars=ready.prompt_chars)

    async def send_remote(self, ready: Ready, row: dict[str, Any], reservation: tuple[float, float]) -> None:
        assert self.engine is not None
        started = time.perf_counter()
        spent = CallMeter()  # cancelled, the engine copies into it what the actor spent until then
        try:
            worked = await self.engine.extract(ready, row, spent)
        except asyncio.CancelledError:
            row.update(error_type="Cancelled", error_message="cancelled by a signal before it finished")
            self.recorder.commit(self.recorder.charge(row, spent, started, reservation),
                                 cache_key=ready.identity.key, prompt_chars=ready.prompt_chars)
            raise
        add_counts(self.recorder.summary, worked.counts, worked.warnings)
        await self.settle(ready, worked.row, worked.meter, started, reservation, worked.outcome)

    async def worker(self, queue: asyncio.Queue[SourceFile | None], backend: _LazyBackend,
                     stop: asyncio.Event) -> None:
        while (src := await queue.get()) is not None:
            if stop.is_set() or self.unwritable is not None:
                continue  # drain the queue: the producer must never wait on a queue nobody reads
            token = UNSENT.set(_Sending(self))
            try:
                await self.process(src, backend)
            except OutputError as exc:  # a full or read-only disk: no result could be kept, so send no more
                self.unwritable = self.unwritable or exc
            finally:
                UNSENT.get().set()
                UNSENT.reset(token)

    def all_sent(self) -> None:
        """Every document of the run has been sent (or settled without a request): while the last answers are on
        their way, the rows committed so far are parsed beside the event loop, so that the results written at the
        end parse only the last ones (bench/throughput.py --timeline)."""
        self.recorder.read_ahead_in_background()


class _Sending:
    """One document's place in `_Run.unsent`, given back once, when it is sent or settled without a request."""

    __slots__ = ("done", "run")

    def __init__(self, run: _Run) -> None:
        self.run, self.done = run, False

    def set(self) -> None:
        if not self.done:
            self.done = True
            self.run.unsent -= 1
            if self.run.unsent == 0:  # once the last document's request is written, not while it is being built
                asyncio.get_running_loop().call_soon(self.run.all_sent)


UNSENT: contextvars.ContextVar[_Sending] = contextvars.ContextVar("extractor_unsent")


def ahead_of_slots(config: RunConfig) -> int:
    """How many documents a run prepares beyond the `concurrency` that ask the model at once.

    A worker that reads, parses and commits its own document between two requests leaves its place at the server
    empty meanwhile: against a server answering in 200 ms at concurrency 32, half as many workers again, each
    waiting for one of the 32 places with its request ready, raised the rate by 1.6-3.7 points of the ideal at
    load 1-2 and 3.4-10 at load 4-9, three alternating rounds each (bench/throughput.py, docs/benchmarks.md).
    Not for the embedded model (documents parsed ahead take the CPU it runs on) nor for Ray (each actor has its
    own limit)."""
    if config.engine != "local" or config.resolved_backend == "embedded" or config.batch:
        return 0
    return (config.resolved_concurrency + 1) // 2


async def run_async(config: RunConfig, observer: Observer | None = None,
                    stop: asyncio.Event | None = None, files: list[SourceFile] | None = None,
                    backend: Callable[[], Awaitable[Backend]] | None = None, gate: Gate | None = None
                    ) -> RunSummary:
    """Extract every document under `config.input_dir`; returns the summary (see `exit_code`).

    Setting `stop` ends the run gracefully: no new document starts, in-flight ones finish. `files`: only these
    documents of the folder (an experiment's labeled sample, the documents routed to this schema); the results
    then hold only them too. `backend`: opens the caller's backend (which the caller closes) instead of this
    run's own. `gate`: asked of each document just before it is sent (`Gate`); one it refuses is taken out of
    `files` (the caller's list), so the results leave it out.
    """
    if config.routed:
        raise ConfigError("--schema auto routes documents first: call extraction.routing.run_routed")
    if config.input_dir is None:
        raise ConfigError("which folder? give the input folder of documents to extract")
    config.require_reachable_model()
    schema = load_schema(config.schemas_dir, config.schema)
    pricer = Pricer.for_config(config)
    if config.max_cost_usd is not None and not pricer.known:
        raise ConfigError(f"--max-cost cannot be enforced: no price is known for model {config.resolved_model!r}; "
                          f"set [prices.{config.resolved_model!r}] in the config file")
    discovered = files is None
    if files is None:
        try:
            files = discover(config.input_dir)
        except DocumentError as exc:
            raise ConfigError(str(exc)) from None
    stop = stop or asyncio.Event()
    layout = config.layout
    with RunLock(layout.lock):
        started_at = dt.datetime.now(dt.UTC)
        summary = RunSummary(
            run_id=new_run_id(started_at), schema_name=schema.name, schema_version=schema.version,
            backend=config.resolved_backend, model=config.resolved_model, endpoint=config.endpoint,
            strategy=config.resolved_strategy, started_at=iso(started_at))
        journal = Journal(layout.journal)
        journal.start_run(summary.run_id, summary.started_at)
        events = EventLog(layout.log(summary.run_id))
        events.write("run_started", run_id=summary.run_id, documents=len(files), model=summary.model,
                     endpoint=summary.endpoint, schema=schema.name, schema_version=schema.version)
        budget = Budget(config.max_cost_usd, pricer, TokenRate.observed(
            journal.tokens_per_char(summary.model) if config.max_cost_usd is not None else None,
            completion=answer_tokens(schema)))
        reader = DocumentReader(max_chars=config.max_chars, timeout_s=config.parse_timeout_s,
                                ocr_max_pages=config.ocr_max_pages, ocr_page_timeout_s=config.ocr_page_timeout_s)
        lazy = _LazyBackend(config, backend)
        intake = Intake.open(config, journal, schema, reader=reader, budget=budget, embed=lazy.embed,
                             files=files, remember=True)
        recorder = Recorder(config, schema, journal, events, summary, observer, files, pricer, budget)
        state = _Run(config, schema, intake, recorder, gate)
        if not files and discovered:
            summary.warnings.append(f"no documents found in {config.input_dir}: nothing to extract; the results keep "
                                    "the documents extracted before that were archived")
        unwritable: OutputError | None = None
        clock = time.perf_counter()
        if observer is not None:
            observer.started(len(files), summary.backend, summary.model)
        try:
            async with contextlib.AsyncExitStack() as stack:
                lazy.stack = stack
                if config.engine == "ray":
                    from extractor.extraction.rayengine import RayEngine

                    state.engine = stack.enter_context(RayEngine.start(config, schema, intake))
                to_extract = list(files)  # a copy: a document the gate sends elsewhere leaves `files` meanwhile
                if config.batch:  # submitted and collected through the Batch API, not one by one
                    from extractor.extraction.batch import run_batch

                    api = (await lazy.get()).batch_api(config.temperature)
                    if api is None:
                        raise ConfigError(f"--batch: the {config.resolved_backend} backend has no Batch API")
                    state.stop_reason = await run_batch(intake, recorder, files, api, stop)
                    to_extract = []
                concurrency = config.resolved_concurrency
                ahead = ahead_of_slots(config)
                state.stop = stop
                if ahead:
                    state.slots = asyncio.Semaphore(concurrency)
                    state.unsent = len(to_extract)
                queue: asyncio.Queue[SourceFile | None] = asyncio.Queue(maxsize=concurrency * 2)
                workers = [asyncio.create_task(state.worker(queue, lazy, stop)) for _ in range(concurrency + ahead)]
                try:
                    for src in to_extract:
                        if stop.is_set() or state.unwritable is not None:
                            break
                        await queue.put(src)
                    for _ in workers:
                        await queue.put(None)
                    await asyncio.gather(*workers)
                    if state.unwritable is not None:
                        raise state.unwritable
                finally:
                    for task in workers:
                        task.cancel()
                    # Let cancelled documents record what they cost before the backend and journal close.
                    await asyncio.gather(*workers, return_exceptions=True)
        except OutputError as exc:
            unwritable = exc
            raise
        finally:
            reader.close()
            summary.wall_s = round(time.perf_counter() - clock, 3)
            summary.docs_per_s = round(summary.documents / summary.wall_s, 3) if summary.wall_s else 0.0
            summary.finished_at = iso(dt.datetime.now(dt.UTC))
            summary.aborted = state.stop_reason
            if intake.retriever is not None and intake.retriever.embedder is not None:
                recorder.charge_embeddings(intake.retriever.embedder)
            if stop.is_set() and summary.documents < len(files):
                summary.interrupted = getattr(stop, "reason", None) or "stop requested"
            try:
                recorder.finish()
            except OutputError:
                if unwritable is None:
                    raise  # the first sign of a full or read-only disk: it stops the run
            finally:  # when the disk is full, the journal keeps what was committed; results are rebuilt next run
                events.close()
                journal.close()
    return summary


def run(config: RunConfig, observer: Observer | None = None, files: list[SourceFile] | None = None) -> RunSummary:
    """Blocking entry point with signal handling for unattended runs.

    First SIGINT/SIGTERM: start no new document, let in-flight ones finish for `grace_s`, write the
    outputs, exit 130. A second signal, or the end of the grace period, cancels what is still in
    flight (its cost so far is recorded).
    """
    return run_with_signals(config, lambda stop: run_async(config, observer, stop, files))


T = TypeVar("T")


def run_with_signals(config: RunConfig, start: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run `start(stop)` with `run`'s signal handling: the first signal sets `stop`, a second (or the end of
    `grace_s`) cancels."""

    async def main() -> T:
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
        return await start(stop)

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise Interrupted("interrupted: finished documents were saved; run again to continue") from None
