"""The OpenAI Batch API: half the price, answers within 24 hours; a natural fit for nightly work.

`extractor run --batch` first collects what earlier runs submitted (each answered document gets its
row, priced at the Batch API discount), then submits the documents that need extracting as one new
batch and returns; a later run collects it. Documents waiting in a batch are neither sent again nor
given a row meanwhile.

Nothing is paid twice: a submission is written to the journal before its batch is created, and the
batch carries the submission's id in its metadata. A run killed in between (or whose create call lost
its answer) finds the batch by that id on the next run and adopts it; only a submission the provider
never received is dropped, and its documents are submitted again.

This module keeps the books (journal, rows, summary); the provider calls are behind `BatchAPI`. The
per-document decision is the intake's, as for a plain run. A batch cannot re-ask, so an answer that
fails validation becomes a failed row, which the next run tries again like any failed document.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractor.documents import Chunk, Document, DocumentReader, SourceFile
from extractor.errors import BatchNotCreated, DocumentError, ExtractorError, RunStop
from extractor.extraction.chunked import merged_answers
from extractor.extraction.intake import Carry, Intake, NotSendable, Pending, Unreadable
from extractor.extraction.recorder import Recorder
from extractor.llm.batchapi import BatchAPI
from extractor.llm.transport import CallMeter

log = logging.getLogger("extractor.extraction.batch")

CHUNK_MARK = "#"  # custom_id of a long document's chunk: its cache key, the mark, the chunk's index


async def run_batch(intake: Intake, recorder: Recorder, files: list[SourceFile], api: BatchAPI,
                    stop: asyncio.Event) -> str | None:
    """Collect finished batches, then submit what needs extracting; returns why the run stopped (bad
    credentials), or None."""
    try:
        collected = await collect(recorder, api, intake.reader)
        intake.in_batch = {key for _, _, docs in recorder.journal.open_submissions() for key in docs}
        lines: dict[str, dict[str, Any]] = {}
        documents: dict[str, dict[str, Any]] = {}
        for src in files:
            if stop.is_set():
                break
            decision = await intake.triage(src)
            if isinstance(decision, Unreadable):
                recorder.reject(decision)
                continue
            identity = decision.identity
            if (src.doc_id, identity.key) in collected:
                continue  # its row was just written from the batch's answer
            if isinstance(decision, Carry):
                recorder.carry_decision(decision)
                continue
            if isinstance(decision, Pending) or identity.key in documents:  # or a copy of one in this batch
                recorder.pending()
                continue
            ready = await intake.prepare(decision)
            if isinstance(ready, NotSendable):
                recorder.reject(ready)
                continue
            if intake.admit(ready) is None:
                recorder.defer()
                continue
            documents[identity.key] = {"doc_id": src.doc_id, "source_path": str(src.path),
                                       "content_sha256": identity.sha256, "prompt_chars": ready.prompt_chars,
                                       "examples": identity.example_ids}
            if len(ready.parts) == 1:
                lines[identity.key] = api.request_line(identity.key, ready.messages, recorder.schema.model)
                continue
            # A long document: one line per chunk (custom_id KEY#i); its row is written once every chunk is answered.
            documents[identity.key]["chunks"] = [[c.start, c.end] for c in ready.parts]
            for chunk in ready.parts:
                custom_id = f"{identity.key}{CHUNK_MARK}{chunk.index}"
                lines[custom_id] = api.request_line(custom_id, intake.chunk_messages(ready, chunk),
                                                    recorder.schema.model)
        if lines and not stop.is_set():
            await submit(recorder, api, lines, documents)
    except RunStop as exc:
        return f"run stopped: {exc}"
    return None


async def collect(recorder: Recorder, api: BatchAPI, reader: DocumentReader | None = None) -> set[tuple[str, str]]:
    """Rows for every document answered in a finished batch that an earlier run submitted; returns
    their (doc_id, cache key). With a reader, answers get their evidence from the document's text."""
    journal, summary = recorder.journal, recorder.summary
    collected: set[tuple[str, str]] = set()
    for submission_id, batch_id, documents in journal.open_submissions():
        try:
            if batch_id is None:
                batch_id = await api.find(submission_id)
                if batch_id is None:
                    journal.close_submission(submission_id, "never created")
                    continue
                journal.set_batch_id(submission_id, batch_id)
            state = await api.poll(batch_id)
            if not state.finished:
                continue  # its documents are counted as pending when the folder is walked
            answered = 0
            parts: dict[str, dict[int, dict[str, Any]]] = {}  # a long document's answered chunks, by index
            for line in state.answers:
                key, mark, index = str(line.get("custom_id", "")).partition(CHUNK_MARK)
                if mark and index.isdigit():
                    parts.setdefault(key, {})[int(index)] = line
                elif done := await record_answer(recorder, api, batch_id, documents, line, reader):
                    collected.add(done)
                    answered += 1
            for key, lines in parts.items():
                doc = documents.get(key)
                if doc is None or len(lines) < len(doc.get("chunks") or ()):
                    continue  # not every chunk answered (an expired batch): the document is submitted again
                if done := await record_chunks(recorder, api, batch_id, key, doc, lines, reader):
                    collected.add(done)
                    answered += 1
            if answered < len(documents):
                summary.warnings.append(
                    f"batch {batch_id} ended {state.status} with {len(documents) - answered} of {len(documents)} "
                    "document(s) unanswered: they are submitted again")
        except RunStop:
            raise
        except Exception as exc:  # one batch that cannot be read does not stop the others
            summary.warnings.append(f"could not collect batch {batch_id or submission_id}: {exc}")
            continue
        # Documents without an answer (an expired or cancelled batch) get no row: they are submitted again.
        journal.close_submission(submission_id, state.status)
    return collected


async def submit(recorder: Recorder, api: BatchAPI, lines: dict[str, dict[str, Any]],
                 documents: dict[str, dict[str, Any]]) -> None:
    summary = recorder.summary
    submission_id = summary.run_id
    recorder.journal.record_submission(submission_id, summary.run_id, documents)  # before anything is sent
    try:
        batch_id = await api.create(submission_id, list(lines.values()))
    except BatchNotCreated as exc:  # the provider said no: nothing may wait for a batch that does not exist
        recorder.journal.close_submission(submission_id, "not created")
        summary.batch_failed = f"could not submit the batch of {len(lines)} document(s): {exc}"
        return
    except ExtractorError as exc:
        if isinstance(exc, RunStop):
            recorder.journal.close_submission(submission_id, "not created")
            raise
        # The create call may have reached the provider even if its answer did not reach us: the
        # submission stays open, and the next run adopts the batch by its metadata or drops it.
        summary.batch_failed = (f"could not submit the batch of {len(lines)} document(s): {exc}; "
                                "the next run checks whether it was created, then submits again")
        return
    recorder.journal.set_batch_id(submission_id, batch_id)
    summary.submitted += len(documents)
    summary.batches.append(batch_id)


async def record_answer(recorder: Recorder, api: BatchAPI, batch_id: str, documents: dict[str, dict[str, Any]],
                        line: dict[str, Any], reader: DocumentReader | None = None) -> tuple[str, str] | None:
    """Commit the row of one answered document (ok, or failed with the provider's or pydantic's
    reason); returns its (doc_id, cache key)."""
    doc = documents.get(line.get("custom_id", ""))
    if doc is None:
        log.warning("batch %s answered an unknown custom_id %r", batch_id, line.get("custom_id"))
        return None
    row = recorder.base_row(SourceFile.of(Path(doc["source_path"]), doc["doc_id"]), doc["content_sha256"],
                            doc.get("examples") or ())  # submissions from before it was kept have none
    response = line.get("response") or {}
    body = response.get("body") or {}
    meter = CallMeter(requests=1)
    meter.add_usage(body.get("usage") or {})
    row.update(batch_id=batch_id, attempts=1, prompt_tokens=meter.prompt_tokens,
               completion_tokens=meter.completion_tokens, cached_tokens=meter.cached_tokens,
               cost_usd=recorder.pricer.cost(meter.prompt_tokens, meter.completion_tokens, meter.cached_tokens))
    status = response.get("status_code")
    if status == 200:
        value = api.parse(recorder.schema.model, body)
        if value is not None:
            row.update(value.model_dump(mode="json"), status="ok")
            await _evidence(recorder, row, reader)
        else:
            row.update(error_type="ValidationError",
                       error_message="the batch answer failed schema validation (a batch cannot re-ask; "
                                     "the next run tries again)")
    else:
        error = (body.get("error") or line.get("error") or {})
        message = error.get("message") if isinstance(error, dict) else str(error)
        row.update(error_type=f"HTTP {status}" if status else "BatchError",
                   error_message=f"the batch answered {status or 'an error'}: {message or 'no message'}")
    recorder.summary.requests += 1
    recorder.commit(row, cache_key=line["custom_id"], prompt_chars=doc["prompt_chars"])
    return doc["doc_id"], line["custom_id"]


async def record_chunks(recorder: Recorder, api: BatchAPI, batch_id: str, key: str, doc: dict[str, Any],
                        lines: dict[int, dict[str, Any]], reader: DocumentReader | None = None) -> tuple[str, str]:
    """Commit the row of a long document whose every chunk was answered: the chunks' answers merged
    (`extraction.chunked`), their usage summed; failed if a chunk's answer is an error."""
    row = recorder.base_row(SourceFile(path=Path(doc["source_path"]), doc_id=doc["doc_id"]), doc["content_sha256"],
                            doc.get("examples") or ())
    meter = CallMeter(requests=len(lines))
    for line in lines.values():
        meter.add_usage(((line.get("response") or {}).get("body") or {}).get("usage") or {})
    row.update(batch_id=batch_id, attempts=meter.requests, prompt_tokens=meter.prompt_tokens,
               completion_tokens=meter.completion_tokens, cached_tokens=meter.cached_tokens, chunks=len(lines),
               cost_usd=recorder.pricer.cost(meter.prompt_tokens, meter.completion_tokens, meter.cached_tokens))
    found = await _read(row, reader)
    text = found.text if found is not None else None
    answers: list[tuple[Chunk, list[BaseModel | None]]] = []
    errors: list[str] = []
    for index, (start, end) in enumerate(doc["chunks"]):
        response = lines[index].get("response") or {}
        body = response.get("body") or {}
        if response.get("status_code") != 200:
            error = body.get("error") or lines[index].get("error") or {}
            errors.append(f"chunk {index + 1}: {error.get('message') if isinstance(error, dict) else error}")
            continue
        answers.append((Chunk(index, start, end, text[start:end] if text else ""), [api.parse(recorder.schema.model,
                                                                                             body)]))
    got = merged_answers(recorder.schema, answers) if not errors else None
    if got is not None and got.value is not None:
        row.update(got.value, status="ok", conflicts=len(got.conflicts))
        if found is not None:
            recorder.attach_evidence(row, found.text, found.pages, None, got.conflicts)
    elif errors:
        row.update(error_type="BatchError", error_message=f"the batch answered {len(errors)} of the document's "
                   f"{len(lines)} chunks with an error: {'; '.join(errors[:3])}")
    else:
        row.update(error_type="ValidationError", error_message="no chunk's batch answer passed schema validation (a "
                   "batch cannot re-ask; the next run tries again)")
    recorder.summary.requests += len(lines)
    recorder.commit(row, cache_key=key, prompt_chars=doc["prompt_chars"])
    return doc["doc_id"], key


async def _read(row: dict[str, Any], reader: DocumentReader | None) -> Document | None:
    """The document, if it is still there with the bytes that were sent (else a long document's chunks are
    merged without their text, and the row has no evidence)."""
    if reader is None:
        return None
    try:
        doc = await reader.read(SourceFile(path=Path(row["source_path"]), doc_id=row["doc_id"]))
    except (DocumentError, OSError):
        return None
    return doc if doc.sha256 == row["content_sha256"] else None


async def _evidence(recorder: Recorder, row: dict[str, Any], reader: DocumentReader | None) -> None:
    """Ground a batch answer in its document, if the document is still there with the bytes that were sent."""
    if reader is None:
        return
    try:
        doc = await reader.read(SourceFile.of(Path(row["source_path"]), row["doc_id"]))
    except (DocumentError, OSError):
        return  # moved, archived or unreadable now: the row keeps its values, without evidence
    if doc.sha256 == row["content_sha256"]:
        recorder.attach_evidence(row, doc.text, doc.pages)
