"""The contract of a provider's Batch API: build request lines, upload and create a batch, find one by
metadata, poll it and download its answers. `batch.py` keeps the books against this small contract (so
the bookkeeping can be tested against an in-memory provider); `backends.OpenAIBatchAPI` implements it
for OpenAI-compatible servers.

Errors come out classified (`AuthError` stops the run, `ExtractionError` says what the provider
answered), with the key redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

METADATA_KEY = "extractor_submission"
FINISHED = frozenset({"completed", "expired", "cancelled", "failed"})
ENDPOINT = "/v1/chat/completions"


@dataclass(frozen=True)
class BatchState:
    status: str
    answers: list[dict[str, Any]] = field(default_factory=list)  # output and error lines, once finished

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class BatchAPI(Protocol):
    """What `batch.py` needs from a provider."""

    def request_line(self, custom_id: str, messages: list[dict[str, str]],
                     response_model: type[BaseModel]) -> dict[str, Any]: ...

    async def create(self, submission_id: str, lines: list[dict[str, Any]]) -> str:
        """Upload the lines and create the batch (never retried: a lost answer would pay twice); its id."""
        ...

    async def find(self, submission_id: str) -> str | None:
        """The id of the batch created for this submission, if the provider has one."""
        ...

    async def poll(self, batch_id: str) -> BatchState: ...

    def parse(self, response_model: type[BaseModel], body: dict[str, Any]) -> BaseModel | None:
        """A 200 answer's value, or None when it breaks the schema."""
        ...
