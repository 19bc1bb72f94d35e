"""The per-document work of a run, the part an engine may move to another process: a ready document extracted
through the backend and grounded, into its row.

`extract_row` is what both engines run: `engine = "local"` in the run's own event loop, `engine = "ray"` in a Ray
actor (`extraction.rayengine`), so the two cannot disagree on a row. It fills the row (values, evidence, its error
when it failed) and moves the recorder's evidence and field-strategy counters; charging, committing and counting
stay with the caller (the run's recorder, in the driver).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from extractor.config import RunConfig
from extractor.errors import ExtractionError, RunStop
from extractor.extraction.chunked import extract_document
from extractor.extraction.intake import Intake, Ready
from extractor.extraction.recorder import Recorder, RunSummary
from extractor.llm.backends import Backend
from extractor.llm.transport import CallMeter
from extractor.schemas import Schema
from extractor.values.metrics import Consensus


@dataclass
class Outcome:
    """What the work says beyond the row: the K samples' agreement (the caller records it) and whether the run
    must stop (bad credentials, an unreachable server: the other documents would fail too)."""

    consensus: Consensus | None = None
    stop: str | None = None


# The run's counters that `Recorder.note_unfilled` and `Recorder.attach_evidence` move: what an actor's scratch
# recorder counted, added to the run's summary in the driver (`counts`, `add_counts`).
COUNTERS = ("conflicts", "conflicted_documents", "flagged_documents", "not_found_values", "not_found_documents",
            "unfilled_values", "unfilled_documents")


def counts(summary: RunSummary) -> dict[str, int]:
    return {name: getattr(summary, name) for name in COUNTERS}


def add_counts(summary: RunSummary, moved: dict[str, int], warnings: list[str]) -> None:
    for name, value in moved.items():
        setattr(summary, name, getattr(summary, name) + value)
    summary.warnings.extend(warnings)


def deadline_s(config: RunConfig, ready: Ready) -> float:
    """The document's time limit: per request's worth of text, so a long document asked in N chunks gets N times
    `document_deadline_s`."""
    return config.document_deadline_s * len(ready.parts)


async def extract_row(config: RunConfig, schema: Schema, intake: Intake, ready: Ready,
                      backend: Callable[[], Awaitable[Backend]], meter: CallMeter, row: dict[str, Any],
                      rec: Recorder) -> Outcome:
    """Extract `ready` into `row` (status ok, or failed with its error); `rec` takes the evidence's counters.

    A cancel is let through (the caller records what the document cost so far)."""
    outcome = Outcome()
    try:
        model = await backend()
        # The meter's deadline stops retries from starting; this also bounds an in-flight call.
        unfilled: list[str] = []  # the field strategy's gaps (a table row's cell it could not read)
        async with asyncio.timeout(deadline_s(config, ready)):
            # Sampled or not, whole or field by field, in one part or in chunks (extraction.chunked).
            got = await extract_document(model, config, schema, ready.parts, ready.text,
                                         lambda chunk: intake.chunk_messages(ready, chunk), meter,
                                         ready.identity.examples, ready.identity.sampled, unfilled)
        row["chunks"], row["conflicts"] = got.chunks, len(got.conflicts)
        agreement: dict[str, float] | None = None
        if got.consensus is not None:
            outcome.consensus = got.consensus
            agreement = got.consensus.agreement
        if got.value is None:
            samples = got.consensus.samples if got.consensus is not None else 1
            raise ExtractionError(f"none of the {samples} samples passed schema validation",
                                  error_type="ValidationError")
        row.update(got.value)
        rec.note_unfilled(row, unfilled)
        row["status"] = "ok"
        rec.attach_evidence(row, ready.text, ready.pages, agreement, got.conflicts, got.judged, ready.boxes,
                            got.signals)
    except TimeoutError:
        row.update(error_type="DeadlineExceeded",
                   error_message=f"the document took longer than document_deadline_s = "
                                 f"{config.document_deadline_s:g}s"
                                 + (f" per chunk ({len(ready.parts)} chunks)" if len(ready.parts) > 1 else "")
                                 + ": raise it in the config file for a slow server; the next run tries this "
                                 "document again")
    except ExtractionError as exc:
        row.update(error_type=exc.error_type, error_message=str(exc))
    except RunStop as exc:  # bad credentials, an unreachable server: the other documents would fail too
        outcome.stop = f"run stopped: {exc}"
        row.update(error_type=exc.error_type, error_message=str(exc))
    return outcome
