"""The Batch API's bookkeeping (journal, rows, summary) against an in-memory provider: no HTTP at all."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extractor.config import build_config
from extractor.documents import DocumentReader, discover
from extractor.errors import AuthError, ExtractionError
from extractor.extraction import batch
from extractor.extraction.budget import Budget
from extractor.extraction.intake import Intake
from extractor.extraction.prompts import system_prompt
from extractor.extraction.recorder import Recorder, RunSummary
from extractor.llm.batchapi import BatchState
from extractor.llm.pricing import Pricer
from extractor.schemas import load_schema
from extractor.store import EventLog, Journal

from .conftest import ROOT, write_docs


class MemoryBatchAPI:
    """A provider that keeps batches in a dict; `finish()` answers every line with `answer`."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.batches: dict[str, dict[str, Any]] = {}
        self.answer = answer or {"applicant_name": "Ada Lovelace", "language": "en"}
        self.fail_create: Exception | None = None

    def request_line(self, custom_id: str, messages: list[dict[str, str]],
                     response_model: type[BaseModel]) -> dict[str, Any]:
        return {"custom_id": custom_id, "messages": messages}

    async def create(self, submission_id: str, lines: list[dict[str, Any]]) -> str:
        if self.fail_create is not None:
            raise self.fail_create
        batch_id = f"batch_{len(self.batches)}"
        self.batches[batch_id] = {"submission": submission_id, "lines": lines, "status": "in_progress"}
        return batch_id

    async def find(self, submission_id: str) -> str | None:
        return next((b for b, v in self.batches.items() if v["submission"] == submission_id), None)

    async def poll(self, batch_id: str) -> BatchState:
        found = self.batches[batch_id]
        if found["status"] != "completed":
            return BatchState(found["status"])
        body = {"usage": {"prompt_tokens": 100, "completion_tokens": 10}, "answer": self.answer}
        return BatchState("completed", [{"custom_id": line["custom_id"], "response": {"status_code": 200,
                                                                                     "body": body}}
                                        for line in found["lines"]])

    def parse(self, response_model: type[BaseModel], body: dict[str, Any]) -> BaseModel | None:
        return response_model.model_validate(body["answer"])

    def finish(self) -> None:
        for found in self.batches.values():
            found["status"] = "completed"


def _night(tmp_path: Path, api: MemoryBatchAPI, run_id: str) -> RunSummary:
    """One `run --batch` night through the real intake, recorder and journal."""
    config = build_config({"input_dir": tmp_path / "in", "schemas_dir": ROOT / "schemas",
                           "output_dir": tmp_path / "out", "base_url": "http://memory/v1", "batch": True}, env={})
    schema = load_schema(config.schemas_dir, config.schema)
    journal = Journal(config.layout.journal)
    journal.start_run(run_id, run_id)
    summary = RunSummary(run_id=run_id, schema_name=schema.name, schema_version=schema.version,
                         backend="openai", model=config.resolved_model, endpoint="memory")
    pricer = Pricer.for_config(config)
    budget = Budget(None, pricer, None)
    reader = DocumentReader(max_chars=config.max_chars, timeout_s=config.parse_timeout_s)
    files = discover(config.input_dir)
    events = EventLog(config.layout.log(run_id))
    intake = Intake(config, journal, schema_version=schema.version, system=system_prompt(schema), reader=reader,
                    budget=budget)
    recorder = Recorder(config, schema, journal, events, summary, None, files, pricer, budget)
    try:
        summary.aborted = asyncio.run(batch.run_batch(intake, recorder, files, api, asyncio.Event()))
        recorder.finish()
    finally:
        reader.close()
        events.close()
        journal.close()
    return summary


def test_submit_collect_and_never_twice(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter A", "b.txt": "Letter B", "copy-of-a.txt": "Letter A"})
    api = MemoryBatchAPI()
    first = _night(tmp_path, api, "run1")
    assert (first.submitted, first.pending, len(api.batches)) == (2, 1, 1), "a copy in the same batch waits"
    waiting = _night(tmp_path, api, "run2")
    assert (waiting.submitted, waiting.pending, waiting.ok, len(api.batches)) == (0, 3, 0, 1)
    api.finish()
    collected = _night(tmp_path, api, "run3")
    assert (collected.ok, collected.submitted, collected.prompt_tokens) == (3, 0, 200), \
        "two answers paid; the copy is carried"
    assert (tmp_path / "out" / "cover_letter" / "results.parquet").exists()


def test_a_create_that_failed_leaves_the_submission_open_and_auth_stops(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter A"})
    api = MemoryBatchAPI()
    api.fail_create = ExtractionError("HTTP 500: boom", error_type="InternalServerError")
    failed = _night(tmp_path, api, "run1")
    assert failed.submitted == 0 and "could not submit the batch of 1" in (failed.batch_failed or "")
    api.fail_create = None
    again = _night(tmp_path, api, "run2")  # never created: found by nobody, submitted again
    assert (again.submitted, len(api.batches)) == (1, 1)

    write_docs(tmp_path / "in", {"b.txt": "Letter B"})
    api.fail_create = AuthError("the server refused the credentials (HTTP 401)")
    stopped = _night(tmp_path, api, "run3")
    assert stopped.aborted is not None and "refused the credentials" in stopped.aborted


def test_the_provider_contract_is_what_the_openai_backend_offers() -> None:
    from extractor.llm.backends import OpenAIBatchAPI
    from extractor.llm.batchapi import BatchAPI

    for name in ("request_line", "create", "find", "poll", "parse"):
        assert callable(getattr(OpenAIBatchAPI, name)), name
        assert hasattr(BatchAPI, name)
    assert json.dumps(BatchState("completed").answers) == "[]" and BatchState("completed").finished
    assert not BatchState("in_progress").finished


@pytest.mark.parametrize("backend", ["embedded"])
def test_a_backend_without_a_batch_api_says_so(backend: str) -> None:
    from extractor.llm.embedded import EmbeddedBackend

    assert EmbeddedBackend.batch_api(object.__new__(EmbeddedBackend), 0.0) is None  # type: ignore[arg-type]
