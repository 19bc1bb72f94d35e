"""The OpenAI Batch API: half the price, answers within 24 hours; a natural fit for nightly work.

`extractor run --batch` first collects what earlier runs submitted (each answered document gets its
row, priced at the Batch API discount), then submits the documents that need extracting as one new
batch and returns; a later run collects it. Documents waiting in a batch are neither sent again nor
given a row meanwhile.

Nothing is paid twice: a submission is written to the journal before its batch is created, and the
batch carries the submission's id in its metadata. A run killed in between (or whose create call lost
its answer) finds the batch by that id on the next run and adopts it; only a submission the provider
never received is dropped, and its documents are submitted again.

Requests are built like instructor's TOOLS (or JSON_SCHEMA) mode and answers validated with the
schema's model; a batch cannot re-ask, so an answer that fails validation becomes a failed row, which
the next run tries again like any failed document.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractor.documents import SourceFile
from extractor.errors import AuthError
from extractor.transport import CallMeter

if TYPE_CHECKING:
    from extractor.backends import OpenAICompatibleBackend
    from extractor.runner import _Run

log = logging.getLogger("extractor.batch")

METADATA_KEY = "extractor_submission"
FINISHED = frozenset({"completed", "expired", "cancelled", "failed"})
ENDPOINT = "/v1/chat/completions"


async def run_batch(state: _Run, files: list[SourceFile], backend: OpenAICompatibleBackend,
                    stop: asyncio.Event) -> None:
    """Collect finished batches, then submit what needs extracting. AuthError stops the run."""
    try:
        collected = await collect(state, backend)
        pending = {cid for _, _, docs in state.journal.open_submissions() for cid in docs}
        lines: dict[str, dict[str, Any]] = {}
        documents: dict[str, dict[str, Any]] = {}
        params = backend.request_params(state.schema.model, state.config.temperature)
        extra_body = params.pop("extra_body", {})
        for src in files:
            if stop.is_set():
                break
            row = state.base_row(src)
            if (identity := await state.identify(src, row)) is None:
                continue
            raw, key, _ = identity
            if (src.doc_id, key) in collected:
                continue  # its row was just written from the batch's answer
            if not state.config.force and (stored := state.journal.cached_row(key)) is not None:
                state.carry(src, key, stored)
                continue
            if key in pending or key in documents:  # waiting in a batch (or a copy of one in this batch)
                state.summary.pending += 1
                continue
            if (prepared := await state.prepare(src, row, raw)) is None:
                continue
            messages, prompt_chars = prepared
            if state.budget.admit(prompt_chars) is None:
                state.defer()
                continue
            body = {"model": backend.settings.model, "messages": messages, **params, **extra_body}
            lines[key] = {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}
            documents[key] = {"doc_id": src.doc_id, "source_path": str(src.path),
                              "content_sha256": row["content_sha256"], "prompt_chars": prompt_chars}
        if lines and not stop.is_set():
            await submit(state, backend, lines, documents)
    except AuthError as exc:
        state.stop_reason = f"run stopped: {exc}"


async def collect(state: _Run, backend: OpenAICompatibleBackend) -> set[tuple[str, str]]:
    """Rows for every document answered in a finished batch that an earlier run submitted; returns
    their (doc_id, cache key)."""
    client = backend.client
    collected: set[tuple[str, str]] = set()
    for submission_id, batch_id, documents in state.journal.open_submissions():
        try:
            if batch_id is None:
                batch_id = await _find_by_metadata(backend, submission_id)
                if batch_id is None:
                    state.journal.close_submission(submission_id, "never created")
                    continue
                state.journal.set_batch_id(submission_id, batch_id)
            batch = await client.batches.retrieve(batch_id)
            if batch.status not in FINISHED:
                continue  # its documents are counted as pending when the folder is walked
            answered = 0
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    content = await client.files.content(file_id)
                    for line in content.text.splitlines():
                        if line.strip() and (done := _record(state, batch_id, documents, json.loads(line))):
                            collected.add(done)
                            answered += 1
            if answered < len(documents):
                state.summary.warnings.append(
                    f"batch {batch_id} ended {batch.status} with {len(documents) - answered} of {len(documents)} "
                    "document(s) unanswered: they are submitted again")
        except AuthError:
            raise
        except Exception as exc:  # one batch that cannot be read does not stop the others
            error = backend.classify(exc)
            if isinstance(error, AuthError):
                raise error from exc
            state.summary.warnings.append(f"could not collect batch {batch_id or submission_id}: {error}")
            continue
        # Documents without an answer (an expired or cancelled batch) get no row: they are submitted again.
        state.journal.close_submission(submission_id, batch.status)
    return collected


async def submit(state: _Run, backend: OpenAICompatibleBackend, lines: dict[str, dict[str, Any]],
                 documents: dict[str, dict[str, Any]]) -> None:
    submission_id = state.summary.run_id
    state.journal.record_submission(submission_id, state.summary.run_id, documents)  # before anything is sent
    payload = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines.values()).encode()
    client = backend.client
    try:
        uploaded = await client.files.create(file=(f"extractor-{submission_id}.jsonl", payload), purpose="batch")
        batch = await client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h",
                                            metadata={METADATA_KEY: submission_id})
    except Exception as exc:
        error = backend.classify(exc)
        # The create call may have reached the provider even if its answer did not reach us: the
        # submission stays open, and the next run adopts the batch by its metadata or drops it.
        state.summary.warnings.append(f"could not submit the batch of {len(lines)} document(s): {error}; "
                                      "the next run checks whether it was created, then submits again")
        if isinstance(error, AuthError):
            raise error from exc
        return
    state.journal.set_batch_id(submission_id, batch.id)
    state.summary.submitted += len(lines)
    state.summary.batches.append(batch.id)


async def _find_by_metadata(backend: OpenAICompatibleBackend, submission_id: str) -> str | None:
    async for batch in backend.client.batches.list(limit=100):
        if (batch.metadata or {}).get(METADATA_KEY) == submission_id:
            return str(batch.id)
    return None


def _record(state: _Run, batch_id: str, documents: dict[str, dict[str, Any]],
            line: dict[str, Any]) -> tuple[str, str] | None:
    """Commit the row of one answered document (ok, or failed with the provider's or pydantic's
    reason); returns its (doc_id, cache key)."""
    from openai.types.chat import ChatCompletion

    from extractor.backends import parse_choice

    doc = documents.get(line.get("custom_id", ""))
    if doc is None:
        log.warning("batch %s answered an unknown custom_id %r", batch_id, line.get("custom_id"))
        return None
    row = state.base_row(SourceFile(path=Path(doc["source_path"]), doc_id=doc["doc_id"]))
    response = line.get("response") or {}
    body = response.get("body") or {}
    meter = CallMeter(requests=1)
    meter.add_usage(body.get("usage") or {})
    row.update(content_sha256=doc["content_sha256"], batch_id=batch_id, attempts=1,
               prompt_tokens=meter.prompt_tokens, completion_tokens=meter.completion_tokens,
               cached_tokens=meter.cached_tokens,
               cost_usd=state.pricer.cost(meter.prompt_tokens, meter.completion_tokens, meter.cached_tokens))
    status = response.get("status_code")
    if status == 200:
        completion_obj = ChatCompletion.model_validate(body)
        value = parse_choice(state.schema.model, completion_obj.choices[0]) if completion_obj.choices else None
        if value is not None:
            row.update(value.model_dump(mode="json"), status="ok")
        else:
            row.update(error_type="ValidationError",
                       error_message="the batch answer failed schema validation (a batch cannot re-ask; "
                                     "the next run tries again)")
    else:
        error = (body.get("error") or line.get("error") or {})
        message = error.get("message") if isinstance(error, dict) else str(error)
        row.update(error_type=f"HTTP {status}" if status else "BatchError",
                   error_message=f"the batch answered {status or 'an error'}: {message or 'no message'}")
    state.summary.requests += 1
    state.commit(row, cache_key=line["custom_id"], prompt_chars=doc["prompt_chars"])
    return doc["doc_id"], line["custom_id"]
