"""Long documents: a text that would not fit the model's context is asked in chunks, and the chunks' answers are
merged into one record (`extraction.merge`), on every path (whole, fields, samples; `--batch` in `batch`).

- **The budget** (`chunk_limit`): a request holds the prompt's fixed part (instructions, examples, the schema as a
  tool, or a field question), one chunk of the document and room for the answer; the chunk's characters are what
  is left of the context (`CONTEXT_SHARE` of it: characters are an estimate of tokens) at the rate of
  `llm.tokens.TokenRate`, never below 4 characters a token's worth.
- **The chunks** (`plan_chunks`): `documents.chunk_text` at that size, with `OVERLAP_SHARE` of it repeated; a
  document that fits is one chunk, asked exactly as before.
- **The answers** (`extract_document`): each chunk asked as the strategy asks a whole document (one call with
  instructor's re-asks, or field by field, K times when sampled); a chunk the server refuses as longer than its
  context (`errors.ContextExceeded`) is split in two and both halves asked, down to `MIN_CHUNK_CHARS`. Under
  the field strategy the fields that the whole document settles without a question (`fields.settled`) are not
  asked again per chunk. A chunk whose answer failed validation counts as no answer (as a failed sample does).
- Every chunk's request goes through the document's one `CallMeter`: its tokens, cost, attempts and latency add up
  in the row, which says how many chunks it took (`chunks`) and how many fields had conflicting answers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from extractor.config import RunConfig
from extractor.documents import Chunk, chunk_text
from extractor.errors import ContextExceeded, ExtractionError
from extractor.extraction import fields
from extractor.extraction.merge import ChunkAnswer, merge
from extractor.extraction.retrieval import Shot
from extractor.llm.tokens import DEFAULT_TOKENS_PER_CHAR, TokenRate
from extractor.llm.transport import CallMeter
from extractor.schemas import Schema
from extractor.values.evidence import Signals
from extractor.values.metrics import Consensus, consensus

if TYPE_CHECKING:
    from extractor.llm.backends import Backend

# Characters estimate tokens: a tokenizer counts up to ~20% more on some texts (German, code, JSON-escaped
# messages: the fake server counts 8% more on letters), so a chunk is sized to this share of the context.
CONTEXT_SHARE = 0.8
ANSWER_TOKENS = 512  # room for a whole-schema answer when max_tokens is unset (a cover letter's is ~200)
FIELD_ANSWER_TOKENS = 128  # a field question's answer is bounded at 96 tokens (fields.choose)
FIELD_QUESTION_CHARS = 600  # a field question's own text (name, description, choices)
DEMO_CHARS = fields.MAX_DEMOS * (fields.SNIPPET + 120)  # its demonstrations, with retrieved examples
OVERLAP_SHARE = 0.1  # of a chunk, repeated from the one before: a value cut by a boundary is whole in one of them
MIN_CHUNK_CHARS = 400  # below this a chunk holds too little to answer from: the context is too small


def answer_room(config: RunConfig) -> int:
    """Room a request leaves for its answer (not `llm.tokens.answer_tokens`, the estimate of what an answer costs)."""
    if config.resolved_strategy == "fields":
        return FIELD_ANSWER_TOKENS
    return config.max_tokens or ANSWER_TOKENS


def fixed_chars(config: RunConfig, schema: Schema, system_chars: int, shots: Sequence[Shot]) -> int:
    """Characters every request of a document carries besides its chunk: the system messages (instructions,
    static and retrieved examples) and the schema as a tool, or a field question and its demonstrations."""
    if config.resolved_strategy == "fields":
        return len(fields.SYSTEM) + FIELD_QUESTION_CHARS + (DEMO_CHARS if shots else 0)
    return system_chars + _schema_chars(schema.model) + 64  # the fence and framing


@functools.cache
def _schema_chars(model: type[BaseModel]) -> int:
    """Characters of the schema as the tool a whole-schema request carries, worked out once per schema."""
    return len(json.dumps(model.model_json_schema()))


def chunk_limit(context_tokens: int | None, fixed: int, answer: int, rate: TokenRate) -> int | None:
    """Characters of document text one request may carry under `context_tokens`; None: no known limit."""
    if context_tokens is None:
        return None
    estimate = TokenRate(per_char=max(rate.per_char, DEFAULT_TOKENS_PER_CHAR))
    return estimate.chars(context_tokens * CONTEXT_SHARE - answer) - fixed


class ContextTooSmall(ValueError):
    """Not even a short chunk fits the context beside the prompt's fixed part."""


def plan_chunks(text: str, pages: Sequence[int] | None, limit: int | None) -> tuple[Chunk, ...]:
    """The chunks a document is asked in: one (the whole text) where it fits `limit` characters."""
    if limit is None or len(text) <= limit:
        return (Chunk(0, 0, len(text), text),)
    if limit < MIN_CHUNK_CHARS:
        raise ContextTooSmall(limit)
    return tuple(chunk_text(text, limit, overlap=int(limit * OVERLAP_SHARE), pages=pages))


def split(chunk: Chunk) -> tuple[Chunk, ...]:
    """A chunk the server refused, in two (with the overlap), offsets still into the whole text."""
    size = math.ceil(len(chunk) / 2)
    parts = chunk_text(chunk.text, size + int(size * OVERLAP_SHARE), overlap=int(size * OVERLAP_SHARE))
    return tuple(Chunk(chunk.index, chunk.start + p.start, chunk.start + p.end, p.text) for p in parts)


@dataclass
class Extracted:
    """A document's answer: its value (or K samples' consensus) and how it was put together."""

    value: dict[str, Any] | None  # model_dump(mode="json") of the result; None: no valid answer
    consensus: Consensus | None = None  # sampled documents: the K answers' agreement
    chunks: int = 1  # requests' worth of text it was asked in (refused chunks' halves counted)
    conflicts: list[str] = field(default_factory=list)
    # the fields whose spans only their cue words can judge (the unsampled field strategy's; evidence.ground)
    judged: frozenset[str] | None = None
    # the model's probability of each value it gave (with --logprobs) and the values the strategy doubts (the
    # unsampled field strategy's; evidence.Signals)
    signals: Signals | None = None


Answer = Callable[[Chunk], Awaitable[list[BaseModel | None]]]


async def _answered(chunk: Chunk, answer: Answer) -> list[tuple[Chunk, list[BaseModel | None]]]:
    """One chunk's answers; refused as too long, its halves' answers."""
    try:
        return [(chunk, await answer(chunk))]
    except ContextExceeded:
        if len(chunk) < 2 * MIN_CHUNK_CHARS:
            raise
    out: list[tuple[Chunk, list[BaseModel | None]]] = []
    for part in split(chunk):
        out.extend(await _answered(part, answer))
    return out


async def _lenient(chunk: Chunk, answer: Answer, k: int) -> list[BaseModel | None]:
    """A chunk's answers, a validation failure counting as no answer (other failures fail the document)."""
    try:
        return await answer(chunk)
    except ContextExceeded:
        raise
    except ExtractionError as exc:
        if exc.error_type != "ValidationError":
            raise
        return [None] * k


async def extract_document(model: Backend, config: RunConfig, schema: Schema, chunks: Sequence[Chunk], text: str,
                           messages: Callable[[Chunk], list[dict[str, str]]], meter: CallMeter,
                           shots: Sequence[Shot] = (), sampled: bool = False,
                           notes: list[str] | None = None) -> Extracted:
    """The document's answer from its chunks (see the module docstring); `messages`: a chunk's whole-schema
    request; `sampled`: K answers (config.samples) and their consensus; `notes` receives what the field strategy
    could not fill (review flags)."""
    k = config.samples if sampled else 1
    by_fields = config.resolved_strategy == "fields"
    skip: dict[str, Any] = {}
    judged: set[str] = set()  # the field strategy's snapped fields, over every chunk (evidence.ground)
    signals = Signals()  # and what it knows of its values beyond the text
    if by_fields and (len(chunks) > 1):
        skip = await fields.settled(schema, text, shots)

    async def answer(chunk: Chunk) -> list[BaseModel | None]:
        if by_fields and sampled:
            return await fields.sample_fields(model.complete_json, schema, chunk.text, meter, shots, k,
                                              config.sample_temperature, skip)
        if by_fields:
            value, spans_judged = await fields.answer_fields(model.complete_json, schema, chunk.text, meter, shots,
                                                             notes=notes, settled=skip, signals=signals)
            judged.update(spans_judged)
            return [value]
        if sampled:
            return await model.sample(messages(chunk), schema.model, meter, k, config.sample_temperature)
        return [await model.extract(messages(chunk), schema.model, meter)]

    if len(chunks) == 1:  # as before chunks existed, unless the server refuses it as too long
        try:
            return _judged(_single(schema, await answer(chunks[0]), sampled), judged, signals,
                           by_fields and not sampled)
        except ContextExceeded:
            pass
        chunks = split(chunks[0])

    async def tolerant(chunk: Chunk) -> list[BaseModel | None]:
        return await _lenient(chunk, answer, k)

    # The field strategy asks one chunk's questions in a row (the server reuses its prefix cache); whole-schema
    # chunks go out together, as many in flight as the transport lets through.
    if by_fields:
        results = [pair for chunk in chunks for pair in await _answered(chunk, tolerant)]
    else:
        results = [pair for group in await asyncio.gather(*(_answered(c, tolerant) for c in chunks)) for pair in group]
    return _judged(_merged(schema, results, k, sampled, skip), judged, signals, by_fields and not sampled)


def _judged(got: Extracted, judged: set[str], signals: Signals, known: bool) -> Extracted:
    got.judged = frozenset(judged) if known else None
    got.signals = (signals or None) if known else None
    return got


def merged_answers(schema: Schema, answers: list[tuple[Chunk, list[BaseModel | None]]]) -> Extracted:
    """One answer per chunk (None: it failed validation), merged: a long document's Batch API answers."""
    return _merged(schema, answers, 1, False, {})


def _single(schema: Schema, answers: list[BaseModel | None], sampled: bool) -> Extracted:
    if not sampled:
        answer = answers[0]
        return Extracted(answer.model_dump(mode="json") if answer is not None else None)
    agreed = consensus(schema.model, answers)
    return Extracted(agreed.value, agreed)


def _merged(schema: Schema, results: list[tuple[Chunk, list[BaseModel | None]]], k: int, sampled: bool,
            settled: dict[str, Any]) -> Extracted:
    """The chunks' j-th answers merged into the document's j-th answer, for each of its K answers."""
    merged: list[BaseModel | None] = []
    conflicts: list[str] = []
    for j in range(k):
        answers = [ChunkAnswer(answer.model_dump(mode="json"), chunk) for chunk, got in results
                   if j < len(got) and (answer := got[j]) is not None]
        if not answers:
            merged.append(None)
            continue
        one = merge(schema.model, answers)
        conflicts += [c for c in one.conflicts if c not in conflicts]
        merged.append(fields.validate_leniently(schema.model, {**one.value, **settled}))
    chunks = len(results)
    if not sampled:
        return Extracted(merged[0].model_dump(mode="json") if merged[0] is not None else None, chunks=chunks,
                         conflicts=conflicts)
    agreed = consensus(schema.model, merged)
    return Extracted(agreed.value, agreed, chunks=chunks, conflicts=conflicts)
