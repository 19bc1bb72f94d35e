"""Dry run: what a run would send, and what it would cost, without sending anything or writing anything.

It decides through the run's own intake (`extractor.extraction.intake`), so it lists exactly what the run would
send: not what a stored result covers, nor what waits in a batch.

Token counts are estimated from characters, as the run's budget estimates them (`llm.tokens.TokenRate`): the
ratio is calibrated from what earlier runs of the same model actually reported (prompt tokens per prompt
character, mean completion tokens); with no history it falls back to 4 characters per token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractor.config import RunConfig
from extractor.documents import DocumentReader, SourceFile, discover
from extractor.errors import ConfigError, DocumentError, JournalError
from extractor.extraction.budget import Budget
from extractor.extraction.fields import questions_chars
from extractor.extraction.intake import Carry, Intake, NotSendable, Pending, Unreadable
from extractor.llm.pricing import Pricer, context_window
from extractor.llm.tokens import DEFAULT_TOKENS_PER_CHAR, TokenRate, answer_tokens
from extractor.schemas import Schema, load_schema
from extractor.store import Journal


@dataclass(frozen=True)
class PlannedDocument:
    doc_id: str
    reason: str  # new | changed | retry | settings changed | forced
    prompt_chars: int
    prompt_tokens: int  # every chunk's, for a long document
    completion_tokens: int
    chunks: int = 1  # requests its text is asked in: more than one when it would not fit the model's context
    request_tokens: int | None = None  # the longest single request's prompt (field strategy: one question's)
    images: int = 0  # pages sent as images (pages = images | both)
    image_tokens: int = 0  # their estimated prompt tokens (inside prompt_tokens; llm.tokens.image_tokens)


@dataclass
class Plan:
    documents: int
    to_send: list[PlannedDocument] = field(default_factory=list)
    cached: int = 0
    pending: int = 0  # waiting in a batch an earlier `run --batch` submitted: not sent again
    not_sendable: list[tuple[str, str, str]] = field(default_factory=list)  # doc_id, status, message
    tokens_per_char: float = DEFAULT_TOKENS_PER_CHAR
    calibration: str = ""
    model: str = ""
    cost_usd: float | None = 0.0
    max_cost_usd: float | None = None
    fit_under_limit: int | None = None  # documents, in order, whose estimated cost fits under max_cost_usd
    context_tokens: int | None = None  # the model's context window, where known (llm.pricing.context_window)

    @property
    def over_context(self) -> list[PlannedDocument]:
        """Documents whose estimated prompt and answer would not fit the model's context in one request: they
        are asked in chunks (`extraction.chunked`)."""
        if self.context_tokens is None:
            return []
        return [d for d in self.to_send
                if d.chunks > 1 or (d.request_tokens or d.prompt_tokens) + d.completion_tokens > self.context_tokens]

    @property
    def chunks(self) -> int:
        return sum(d.chunks for d in self.to_send)

    @property
    def prompt_tokens(self) -> int:
        return sum(d.prompt_tokens for d in self.to_send)

    @property
    def images(self) -> tuple[int, int]:
        """(pages sent as images, their estimated prompt tokens) over the documents to send."""
        return sum(d.images for d in self.to_send), sum(d.image_tokens for d in self.to_send)

    @property
    def completion_tokens(self) -> int:
        return sum(d.completion_tokens for d in self.to_send)


def plan(config: RunConfig, files: list[SourceFile] | None = None,
         labels: dict[str, dict[str, Any]] | None = None) -> Plan:
    return asyncio.run(plan_async(config, files, labels))


async def plan_async(config: RunConfig, files: list[SourceFile] | None = None,
                     labels: dict[str, dict[str, Any]] | None = None) -> Plan:
    """Walk the folder (or only `files`, as `runner.run_async` takes them) through the run's own intake, sending
    nothing: what it would carry, what waits in a batch, what cannot be sent, and what would be sent (with why
    and what it would cost). `labels`: where retrieved examples come from, if not the journal's store."""
    if config.input_dir is None:
        raise ConfigError("which folder? give the input folder of documents to extract")
    schema = load_schema(config.schemas_dir, config.schema)
    if files is None:
        try:
            files = discover(config.input_dir)
        except DocumentError as exc:
            raise ConfigError(str(exc)) from None
    journal = _open_journal(config.layout.journal)
    result = Plan(documents=len(files), model=config.resolved_model, context_tokens=context_window(config))
    rate = TokenRate.observed(journal.tokens_per_char(config.resolved_model) if journal is not None else None,
                              completion=answer_tokens(schema))
    by_question = config.resolved_strategy == "fields"
    result.tokens_per_char = rate.per_char
    if rate.calibrated:
        result.calibration = (f"calibrated on {rate.documents} earlier document(s) of {config.resolved_model}: "
                              f"{rate.chars_per_token:.2f} characters per prompt token")
    else:
        result.calibration = (f"no earlier run of {config.resolved_model}: assuming {rate.chars_per_token:g} "
                              f"characters per token and {rate.completion:.0f} completion tokens (from the schema"
                              + ("; field by field, the document is priced once per question it would be asked)"
                                 if by_question else ")"))
    pricer = Pricer.for_config(config)
    # The run's own admission rule, with every document in flight at once (nothing settles here).
    budget = Budget(config.max_cost_usd, pricer, rate)
    reader = DocumentReader(max_chars=config.max_chars, timeout_s=config.parse_timeout_s,
                            ocr_max_pages=config.ocr_max_pages, ocr_page_timeout_s=config.ocr_page_timeout_s)
    intake = Intake.open(config, journal, schema, reader=reader, budget=budget, labels=labels, files=files)
    fit = 0
    walked = _Questions(schema)
    try:
        for src in files:
            decision = await intake.triage(src)
            if isinstance(decision, Unreadable):
                result.not_sendable.append((src.doc_id, "failed", decision.message))
                continue
            if isinstance(decision, Carry):
                result.cached += 1
                continue
            if isinstance(decision, Pending):
                result.pending += 1
                continue
            ready = await intake.prepare(decision)
            if isinstance(ready, NotSendable):
                result.not_sendable.append((src.doc_id, ready.status, ready.message))
                continue
            fit += intake.admit(ready) is not None
            chars = ready.prompt_chars
            prompt = rate.prompt_tokens(chars)
            longest = rate.prompt_tokens(chars // len(ready.parts))  # a chunk's request (chunks are of a size)
            if by_question:  # each chunk goes once per question (a calibrated rate has that in it already)
                every = one = 0
                for part in ready.parts:
                    part_every, part_one = await walked.questions(part.text, chars // len(ready.parts))
                    every, one = every + part_every, max(one, part_one)
                longest = TokenRate().prompt_tokens(one)
                prompt = prompt if rate.calibrated else rate.prompt_tokens(every)
            result.to_send.append(PlannedDocument(
                doc_id=src.doc_id, reason=_reason(config, journal, ready.identity.sha256, src.doc_id),
                prompt_chars=chars, prompt_tokens=prompt,
                completion_tokens=round(rate.completion) * len(ready.parts), chunks=len(ready.parts),
                request_tokens=longest, images=ready.images, image_tokens=ready.image_tokens))
    finally:
        reader.close()
        if journal is not None:
            journal.close()
    result.cost_usd = pricer.cost(result.prompt_tokens, result.completion_tokens, 0)
    if config.max_cost_usd is not None and result.cost_usd is not None:
        result.max_cost_usd = config.max_cost_usd
        result.fit_under_limit = fit
    return result


class _Questions:
    """The field strategy's questions per document for the dry run: the strategy walked with null answers
    (`fields.questions_chars`) on the first WALKED documents, then extrapolated from them by characters (walking
    costs ~0.13 s a letter: 10,000 documents would take 20 minutes to preview)."""

    WALKED = 50

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.chars = self.every = 0
        self.overhead = 0  # the longest question's characters beyond its document's text
        self.walked = 0

    async def questions(self, text: str, prompt_chars: int) -> tuple[int, int]:
        """(characters of every question, of the longest one) for a document of `prompt_chars` prompt characters."""
        if self.walked < self.WALKED:
            every, one = await questions_chars(self.schema, text)
            self.walked += 1
            self.chars += prompt_chars
            self.every += every
            self.overhead = max(self.overhead, one - len(text))
            return every, one
        return round(prompt_chars * self.every / max(1, self.chars)), len(text) + self.overhead


def _open_journal(path: Path) -> Journal | None:
    """The journal as the run would see it, written to only when an older extractor left it (then it is
    upgraded, as the run would); None before the first run: a dry run creates nothing."""
    if not path.exists():
        return None
    try:
        return Journal.open_readonly(path)
    except JournalError:
        return Journal(path)


def _reason(config: RunConfig, journal: Journal | None, sha256: str, doc_id: str) -> str:
    seen = journal.last_seen(doc_id) if journal is not None else None
    if config.force:
        return "forced"
    if seen is None:
        return "new"
    if seen[0] != sha256:
        return "changed"
    if seen[1] != "ok":
        return "retry"
    return "settings changed"
