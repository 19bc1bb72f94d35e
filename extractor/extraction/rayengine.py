"""`engine = "ray"`: a run's per-document work in Ray actors, its books in the driver.

The driver (the `extractor run` process) keeps what must be one: the intake's decision per file (cache keys,
carried results, the in-flight deduplication), `--max-cost` admission, the journal, the recorder and the outputs.
Each actor owns an event loop with its own backend and in-flight limit (`max_concurrency`, the run's
`concurrency` shared among the actors) and does the work that costs CPU: reading and parsing a document
(`Intake.prepare`: PDF text, OCR) and extracting and grounding it (`work.extract_row`, the code the local engine
runs too, so rows cannot differ). What an actor returns (the row, its meter, its counters) is committed by the
driver before it counts, exactly as a local run commits.

A document cancelled in the driver (past `grace_s` after a signal) is cancelled in its actor too: the actor's
`extract` returns on that cancellation with the row and what its meter counted so far, and the driver records
that, as the local engine records its own meter: nothing paid for is lost.

Failures: an actor that dies (killed, out of memory, its node lost) is restarted by Ray (`max_restarts=-1`);
the documents it had in flight get no row from it and are sent again, on a live actor, up to `ATTEMPTS` times
(their first answers never reached the driver, so they were not counted or stored). A killed driver loses
nothing committed: the next run carries every committed row and sends only the rest.

`ray` is an optional extra (`pip install 'extractor[ray]'`), imported when an engine starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from extractor.config import RunConfig
from extractor.documents import DocumentReader
from extractor.errors import ConfigError
from extractor.extraction.budget import Budget
from extractor.extraction.intake import Fresh, Intake, NotSendable, Ready
from extractor.extraction.recorder import Recorder, RunSummary
from extractor.extraction.work import Outcome, counts, deadline_s, extract_row
from extractor.llm.backends import Backend, open_backend
from extractor.llm.pricing import Pricer
from extractor.llm.tokens import TokenRate
from extractor.llm.transport import CallMeter
from extractor.schemas import Schema, load_schema
from extractor.store import EventLog, Journal

log = logging.getLogger("extractor.extraction.rayengine")

ATTEMPTS = 3  # a document whose actor died with it in flight is sent again until this many died: a failed row
DOWN_S = 2.0  # an actor found dead or restarting is passed over this long (a restart took ~1-3 s on 2 busy cores)
RESTART_WAIT_S = 120.0  # when every actor is restarting, a document waits this long before it is a failed row
STOP_WAIT_S = 10.0  # a cancelled document's actor has this long to answer with what it spent
CANCELLED = "cancelled by a signal before it finished"
# Calls that must not wait behind the documents an actor has in flight (its `max_concurrency`): `stop`.
CONTROL = "control"
# A local Ray's shared-memory object store: rows and texts are small, and Ray's default (30% of the memory)
# would claim gigabytes of /dev/shm on a shared machine.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


@dataclass
class Worked:
    """An actor's answer for one document: the filled row, what it cost, what it counted."""

    row: dict[str, Any]
    meter: CallMeter
    outcome: Outcome
    counts: dict[str, int]
    warnings: list[str]


class WorkerDied(Exception):
    """The actor running a document died ATTEMPTS times: the document is a failed row, sent again next run."""


class DocumentWorker:
    """One Ray actor: an event loop, a backend and a reader of its own (see the module docstring)."""

    def __init__(self, config: RunConfig, schema_version: str, system: str, rate: TokenRate,
                 context_tokens: int | None) -> None:
        self.config = config
        self.schema = load_schema(config.schemas_dir, config.schema)
        if self.schema.version != schema_version:  # another node's schemas folder: rows would not match keys
            raise ConfigError(f"schema {config.schema!r} on this Ray worker is version {self.schema.version}, the "
                              f"driver's is {schema_version}: give every node the same schemas folder")
        self.reader = DocumentReader(max_chars=config.max_chars, timeout_s=config.parse_timeout_s,
                                     ocr_max_pages=config.ocr_max_pages, ocr_page_timeout_s=config.ocr_page_timeout_s)
        self.intake = Intake(config, None, schema_version=schema_version, system=system, reader=self.reader,
                             budget=Budget(None, Pricer.for_config(config), rate))
        self.intake.schema = self.schema
        self.intake._context = (context_tokens,)  # the driver's lookup: chunks of the same size
        self._backend: Backend | None = None
        self._stack = contextlib.AsyncExitStack()
        self._lock: asyncio.Lock | None = None
        # The documents being extracted, by the driver's ticket, and those the driver cancelled. `stop` runs in
        # the CONTROL group's own thread and event loop, hence the lock and `call_soon_threadsafe`.
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._stopped: set[str] = set()
        self._guard = threading.Lock()

    def pid(self) -> int:
        return os.getpid()

    async def _open(self) -> Backend:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._backend is None:
                self._backend = await self._stack.enter_async_context(open_backend(self.config))
            return self._backend

    async def prepare(self, fresh: Fresh) -> Ready | NotSendable:
        return await self.intake.prepare(fresh)

    async def extract(self, ready: Ready, row: dict[str, Any], ticket: str) -> Worked:
        """`ready` extracted into `row`; stopped by `stop(ticket)`, it returns what it had spent until then."""
        meter = CallMeter(deadline=time.monotonic() + deadline_s(self.config, ready))
        scratch = _scratch_recorder(self.config, self.schema)
        outcome = Outcome()
        task = asyncio.current_task()
        with self._guard:
            stopped = ticket in self._stopped
            if not stopped and task is not None:
                self._running[ticket] = task
        try:
            if not stopped:
                outcome = await extract_row(self.config, self.schema, self.intake, ready, self._open, meter, row,
                                            scratch)
        except asyncio.CancelledError:
            with self._guard:
                stopped = ticket in self._stopped
            if not stopped:  # not the driver's stop (Ray's own cancel): let it through
                raise
        finally:
            with self._guard:
                self._running.pop(ticket, None)
                self._stopped.discard(ticket)
        if stopped:
            row.update(error_type="Cancelled", error_message=CANCELLED)
        return Worked(row, meter, outcome, counts(scratch.summary), scratch.summary.warnings)

    async def stop(self, ticket: str) -> None:
        """The driver cancelled document `ticket`: cancel its extraction here (or, not started yet, skip it)."""
        with self._guard:
            task = self._running.get(ticket)
            self._stopped.add(ticket)
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)


def _scratch_recorder(config: RunConfig, schema: Schema) -> Recorder:
    """A recorder for what `extract_row` counts in an actor (evidence, unfilled cells); it stores nothing: its
    counters go back to the driver with the row (`work.add_counts`)."""
    summary = RunSummary(run_id="", schema_name=schema.name, schema_version=schema.version, backend="", model="",
                         endpoint="")
    return Recorder(config, schema, cast(Journal, None), cast(EventLog, None), summary, None, [],
                    cast(Pricer, None), cast(Budget, None))


def _import_ray(local: bool = False) -> Any:
    """Ray, imported. `local`: for a Ray this run starts on this machine, whose token authentication Ray turns on
    when RAY_AUTH_MODE is unset, and then says so on stderr every run; set to that same mode before Ray is imported
    (it reads the variable then), Ray says nothing. Not for a cluster: its own mode is the one to follow."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'extractor[ray]' (or pip install ray), "
                          "or run with --engine local") from None
    return ray


class RayEngine:
    """The driver's side: the actors of one run, and the calls that send a document to the least busy one."""

    def __init__(self, ray: Any, actors: list[Any]) -> None:
        self._ray = ray
        self._actors = actors
        self._busy = [0] * len(actors)
        self._down = [0.0] * len(actors)  # time.monotonic() until which an actor is passed over (restarting)

    @classmethod
    @contextlib.contextmanager
    def start(cls, config: RunConfig, schema: Schema, intake: Intake) -> Iterator[RayEngine]:
        """Join `ray_address` (or RAY_ADDRESS), else start a local Ray on this machine's cores; start one actor per
        CPU (at most `concurrency`), and shut down what this call started."""
        if config.resolved_backend == "embedded":
            # Not started for the actors to share (docs/guides/scale.md, Limits): it answers one
            # request at a time on every core, so actors would only queue at it, and a cluster's cannot reach it.
            raise ConfigError("--engine ray spreads documents over actors that each ask a model server; the embedded "
                              "model answers one request at a time on all of this machine's cores, so actors would "
                              "only queue at it (and a cluster's could not reach it): run it with --engine local, or "
                              "give --base-url (or a key) to use Ray")
        if config.batch:
            raise ConfigError("--batch submits every document from this process: --engine ray has nothing to "
                              "spread; run --batch with --engine local")
        address = config.ray_address or os.environ.get("RAY_ADDRESS") or None
        ray = _import_ray(local=address is None)
        started = not ray.is_initialized()
        if started:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}
            if address is None:  # a local Ray, small: one CPU a core, a small object store
                options.update(num_cpus=os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
                # Its processes talk over loopback only: left to itself Ray binds the machine's first interface.
                options.update(_node_ip_address="127.0.0.1")
            # ray.init sets its own SIGTERM handler (sys.exit): the run's graceful stop keeps its own.
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            ray.init(address=address, **options)
            if threading.current_thread() is threading.main_thread():
                for sig, handler in handlers.items():
                    if handler is not None:  # None: not set from Python, nothing to restore
                        signal.signal(sig, handler)
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            concurrency = config.resolved_concurrency
            n = max(1, min(cpus, concurrency))
            per_actor = math.ceil(concurrency / n)
            # Each actor's own backend and in-flight limit: its share of the run's concurrency.
            actor_config = dataclasses.replace(config, concurrency=per_actor)
            remote = ray.remote(concurrency_groups={CONTROL: 1})(DocumentWorker).options(
                num_cpus=1 if cpus >= n else 0, max_concurrency=per_actor, max_restarts=-1, max_task_retries=0)
            rate = intake.budget.rate
            actors = [remote.remote(actor_config, schema.version, intake.system, rate, intake.context_tokens)
                      for _ in range(n)]
            ray.get([a.pid.remote() for a in actors])  # started (or their error, now)
            try:
                yield cls(ray, actors)
            finally:  # also when the run was cancelled: on a cluster nothing else would stop them now
                for actor in actors:
                    ray.kill(actor, no_restart=True)
        finally:
            if started:
                ray.shutdown()

    @property
    def actors(self) -> list[Any]:
        return list(self._actors)

    def _pick(self) -> int:
        """The least busy actor, among those not seen down in the last `DOWN_S` if there are any."""
        now = time.monotonic()
        up = [i for i in range(len(self._actors)) if self._down[i] <= now] or list(range(len(self._actors)))
        return min(up, key=self._busy.__getitem__)

    async def _call(self, method: str, *args: Any,
                    cancelled: Callable[[Any, Any], Awaitable[None]] | None = None) -> Any:
        """`method(*args)` on the least busy live actor, again on another if its actor died with it. Cancelled
        here, `cancelled(actor, ref)` runs before the cancel goes on."""
        ray = self._ray
        died = 0
        give_up = time.monotonic() + RESTART_WAIT_S
        while True:
            i = self._pick()
            self._busy[i] += 1
            try:
                ref = getattr(self._actors[i], method).remote(*args)
                try:
                    return await ref
                except asyncio.CancelledError:
                    if cancelled is not None:
                        await cancelled(self._actors[i], ref)
                    raise
            except ray.exceptions.ActorUnavailableError:  # restarting: the call never reached it
                self._down[i] = time.monotonic() + DOWN_S
                if time.monotonic() > give_up:
                    raise WorkerDied(f"no Ray worker came back within {RESTART_WAIT_S:g}s; the next run sends "
                                     "this document again") from None
                await asyncio.sleep(0.1)
            except ray.exceptions.RayActorError as exc:  # it died with the document in flight: Ray restarts it
                died += 1
                self._down[i] = time.monotonic() + DOWN_S
                log.warning("Ray actor %d died during %s (%d of %d): %s", i, method, died, ATTEMPTS,
                            type(exc).__name__)
                if died >= ATTEMPTS:
                    raise WorkerDied(f"the Ray worker died {ATTEMPTS} times with this document in flight "
                                     f"({type(exc).__name__}); the next run sends it again") from exc
            finally:
                self._busy[i] -= 1

    async def prepare(self, fresh: Fresh) -> Ready | NotSendable:
        try:
            return cast(Ready | NotSendable, await self._call("prepare", fresh))
        except WorkerDied as exc:
            return NotSendable(fresh.identity, "failed", str(exc))

    async def extract(self, ready: Ready, row: dict[str, Any], spent: CallMeter) -> Worked:
        """`ready` extracted in an actor. Cancelled, the actor's extraction is stopped and what it metered until
        then is copied into `spent` before the cancel goes on (the caller records it)."""
        ticket = secrets.token_hex(8)

        async def cancelled(actor: Any, ref: Any) -> None:
            actor.stop.options(concurrency_group=CONTROL).remote(ticket)
            try:
                async with asyncio.timeout(STOP_WAIT_S):
                    worked = cast(Worked, await ref)  # the actor returns on its stop, with its meter
            except (TimeoutError, self._ray.exceptions.RayError) as exc:
                log.warning("a cancelled document's Ray actor did not say what it spent (%s): its row shows no "
                            "tokens", type(exc).__name__)
                return
            for field in dataclasses.fields(CallMeter):
                setattr(spent, field.name, getattr(worked.meter, field.name))

        try:
            worked = cast(Worked, await self._call("extract", ready, row, ticket, cancelled=cancelled))
        except WorkerDied as exc:
            row.update(error_type="WorkerDied", error_message=str(exc))
            return Worked(row, CallMeter(), Outcome(), {}, [])
        return worked
