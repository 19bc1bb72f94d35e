"""One decision per document, for every path that handles documents: a run, `--batch` and `--dry-run`.

For each file the intake decides, in this order:
- **unreadable**: its bytes cannot be read (a failed row);
- **carry**: a stored ok result has the same cache key (bytes, schema version, model, settings): free;
- **pending**: it waits in a batch an earlier `run --batch` submitted (paid for already);
- **fresh**: it needs the model. Then `prepare` parses it (**not sendable** when that fails: a failed or
  skipped row) into the messages to send, and `admit` reserves its expected cost under `--max-cost`
  (**defer** when it does not fit: no row, the next run takes it).

The run, the batch submission and the dry run all call these, so a dry run cannot disagree with the
run it previews. What happens next (sending, submitting, listing) is the caller's business.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from extractor.config import RunConfig
from extractor.documents import (
    MODEL_DPI,
    MODEL_QUALITY,
    MODEL_SIDE,
    Box,
    Chunk,
    DocumentReader,
    PageInfo,
    SourceFile,
    may_need_ocr,
    ocr_engine,
    page_picture,
    part_bytes,
    sha256_file,
)
from extractor.errors import ConfigError, DocumentError
from extractor.extraction import chunked
from extractor.extraction.budget import Budget
from extractor.extraction.prompts import build_messages, pictured_text, system_prompt
from extractor.extraction.retrieval import Embed, Retriever, Shot, digest
from extractor.extraction.sampling import draw_for_run
from extractor.llm.pricing import context_window
from extractor.llm.tokens import accepts_images, image_tokens
from extractor.schemas import Schema
from extractor.store import Journal


@dataclass(frozen=True)
class Identity:
    """Who a document is: its bytes' hash and the cache key it would be extracted under."""

    src: SourceFile
    sha256: str
    key: str
    sampled: bool  # gets K self-consistency samples
    raw: bytes | None = None  # small plain text, read once for the hash and the text
    examples: tuple[Shot, ...] = ()  # `--examples similar:K`: the labeled documents sent as its examples
    # A file that may be read by OCR (an image, a PDF): its key if it is, which names the OCR engine and version,
    # so that another engine or version extracts it again; a text PDF keeps `key` (known once it is parsed).
    ocr_key: str | None = None

    @property
    def example_ids(self) -> list[str]:
        """The doc_ids of its retrieved examples, in order: what its row records (`Recorder.base_row`)."""
        return [shot.doc_id for shot in self.examples]


@dataclass(frozen=True)
class Unreadable:
    src: SourceFile
    message: str


@dataclass(frozen=True)
class Carry:
    identity: Identity
    stored: dict  # the stored ok row


@dataclass(frozen=True)
class Pending:
    identity: Identity


@dataclass(frozen=True)
class Fresh:
    identity: Identity


@dataclass(frozen=True)
class NotSendable:
    identity: Identity
    status: str  # failed | skipped
    message: str


@dataclass(frozen=True)
class Ready:
    identity: Identity
    messages: list[dict[str, Any]]
    # The characters of every request's messages; a page image counts as the characters its estimated tokens are
    # worth at the run's rate (`llm.tokens.image_tokens`), so the budget, the dry run and the journal's
    # calibration price it with the text.
    prompt_chars: int
    text: str  # the document's text as the model sees it: what evidence offsets index into
    pages: tuple[int, ...] | None = None  # where each page starts in `text` (PDF)
    # The parts it is asked in (`extraction.chunked`): one, the whole text, where it fits the model's context.
    chunks: tuple[Chunk, ...] = ()
    boxes: tuple[Box, ...] = ()  # the OCR'd lines, where pages were read by OCR
    images: int = 0  # pages sent as images (`pages = "images" | "both"`)
    image_tokens: int = 0  # their estimated prompt tokens, inside `prompt_chars`

    @property
    def parts(self) -> tuple[Chunk, ...]:
        return self.chunks or (Chunk(0, 0, len(self.text), self.text),)


Triage = Unreadable | Carry | Pending | Fresh


class Intake:
    """The per-document decision of one invocation (see the module docstring)."""

    def __init__(self, config: RunConfig, journal: Journal | None, *, schema_version: str, system: str,
                 reader: DocumentReader, budget: Budget, retriever: Retriever | None = None,
                 sampled: frozenset[str] = frozenset()) -> None:
        self.config = config
        self.sampled = sampled  # the doc_ids drawn for K self-consistency samples (extraction.sampling)
        self.retriever = retriever
        self.journal = journal
        self.schema_version = schema_version
        self.system = system
        self.reader = reader
        self.budget = budget
        # Documents submitted to the Batch API and not collected yet: never sent again meanwhile.
        # (A dry run before the first run has no journal: nothing is stored, nothing waits.)
        self.in_batch = {key for _, _, docs in journal.open_submissions() for key in docs} if journal else set()
        self.schema: Schema | None = None  # set by `open`: what sizes a long document's chunks
        self._context: tuple[int | None] | None = None  # the model's context window, looked up once

    @property
    def context_tokens(self) -> int | None:
        """The model's context window (`llm.pricing.context_window`), looked up on the first document."""
        if self._context is None:
            self._context = (context_window(self.config),)
        return self._context[0]

    @classmethod
    def open(cls, config: RunConfig, journal: Journal | None, schema: Schema, *, reader: DocumentReader,
             budget: Budget, labels: dict[str, dict[str, Any]] | None = None,
             embed: Embed | None = None, files: Sequence[SourceFile] = (), remember: bool = False) -> Intake:
        """The intake for `schema` under `config.examples`: static (the schema's examples in the system
        prompt), none (no examples at all) or similar:K (the static prefix plus K retrieved examples, from
        `labels` if given, else the journal's labels store; `embed`: the backend's embeddings, for
        `retrieval = "embeddings"`). `files`: the documents of this invocation, over which the self-consistency
        draw is taken (`remember`: keep its new decisions in the journal, as a run does and a dry run does not)."""
        sampled = draw_for_run(config, journal, (f.doc_id for f in files), remember=remember)
        intake = cls(config, journal, schema_version=schema.version,
                     system=system_prompt(schema, examples=config.examples != "none"), reader=reader, budget=budget,
                     retriever=Retriever.open(config, schema.model, journal, reader, labels, embed), sampled=sampled)
        intake.schema = schema
        if config.pages != "text":
            sees = config.vision if config.vision is not None else accepts_images(config.resolved_model)
            if sees is False:
                raise ConfigError(
                    f"pages = {config.pages} sends page images, and model {config.resolved_model!r} reads text "
                    f"only{' (vision = false)' if config.vision is False else ''}: use pages = text, a model that "
                    "reads images, or vision = true in the config file if this one does")
        return intake

    async def identify(self, src: SourceFile) -> Identity | Unreadable:
        try:
            # Small plain text is read right here: a stat and one read of at most 256 KiB cost less
            # than the hop to a worker thread and back (which waited on the busy loop, up to 30 ms).
            raw = DocumentReader.small_text(src)
            sha = hashlib.sha256(raw).hexdigest() if raw is not None else await asyncio.to_thread(
                sha256_file, src.path)
        except OSError as exc:
            return Unreadable(src, f"cannot read file: {exc.strerror or exc}")
        # The examples are part of the result's identity: other examples, another key (none: the old key).
        shots = await self.retriever.choose(src, sha, raw) if self.retriever is not None else ()
        sampled = src.doc_id in self.sampled
        examples = digest(shots) if shots else None
        key = self.config.document_key(sha, self.schema_version, sampled=sampled, examples=examples)
        engine = ocr_engine() if may_need_ocr(src.path) else None
        ocr_key = (self.config.document_key(sha, self.schema_version, sampled=sampled, examples=examples, ocr=engine)
                   if engine else None)
        return Identity(src, sha, key, sampled, raw, shots, ocr_key)

    def lookup(self, identity: Identity) -> Carry | Pending | Fresh:
        """Whether a document already has its result (carry), waits in a batch (pending) or needs the model."""
        for key in (identity.key, identity.ocr_key):
            if key is None:
                continue
            stored = None if self.config.force or self.journal is None else self.journal.cached_row(key)
            if stored is not None:
                return Carry(dataclasses.replace(identity, key=key), stored)
        # --force re-extracts a pending document through a plain run; a batch run never submits it twice.
        if {identity.key, identity.ocr_key} & self.in_batch and (self.config.batch or not self.config.force):
            return Pending(identity)
        return Fresh(identity)

    async def triage(self, src: SourceFile) -> Triage:
        identity = await self.identify(src)
        return identity if isinstance(identity, Unreadable) else self.lookup(identity)

    async def prepare(self, fresh: Fresh) -> Ready | NotSendable:
        """The messages a fresh document would be sent as; not sendable when it has no usable text."""
        identity = fresh.identity
        try:
            doc = await self.reader.read(identity.src, identity.raw)
        except DocumentError as exc:
            return NotSendable(identity, exc.status, str(exc))
        # The raw bytes are not needed past this point: memory holds only what is in flight.
        pictures: list[tuple[int, bytes, int, int]] = []
        model_text = doc.text  # what the model is sent of the text (pages = images: not the OCR'd pages')
        if self.config.pages != "text" and doc.ocr is not None:
            try:
                pictures = await asyncio.to_thread(_pictures, identity.src, doc.page_info)
            except DocumentError as exc:
                return NotSendable(identity, "failed", f"pages = {self.config.pages}: no page image: {exc}")
            if self.config.pages == "images":
                model_text = pictured_text(doc.text, doc.pages, [page for page, *_ in pictures])
        messages = build_messages(self.system, model_text, [(s.text, s.output) for s in identity.examples],
                                  [(page, jpeg) for page, jpeg, _, _ in pictures])
        system_chars = sum(len(m["content"]) for m in messages if m["role"] == "system")
        try:
            chunks = self.chunks(model_text, doc.pages, system_chars, identity.examples)
        except chunked.ContextTooSmall:
            return NotSendable(identity, "failed", (
                f"context_tokens = {self.context_tokens:,} leaves no room for the document beside the prompt's "
                f"fixed part (instructions, examples, schema, answer: about {system_chars:,} characters): raise "
                "context_tokens to the model's real context window, or use --examples none"))
        images = sum(image_tokens(self.config.resolved_model, width, height) for _, _, width, height in pictures)
        if pictures:
            if len(chunks) > 1:
                return NotSendable(identity, "failed", (
                    f"pages = {self.config.pages} sends a document whole, with its page images, and this one needs "
                    f"{len(chunks)} requests' worth of text under the model's context: use pages = text, which "
                    "asks a long document in chunks"))
            chunks = (Chunk(0, 0, len(doc.text), doc.text),)  # one request: the messages above
        # The document's characters and every system message's (the retrieved examples' too), as before them,
        # once per chunk for a long document; the page images at what their tokens are worth in characters.
        chars = system_chars * len(chunks) + (sum(len(c) for c in chunks) if not pictures else len(model_text))
        chars += self.budget.rate.chars(images) if images else 0
        key = identity.ocr_key if doc.ocr is not None and identity.ocr_key is not None else identity.key
        return Ready(dataclasses.replace(identity, raw=None, key=key), messages, chars, doc.text, doc.pages,
                     chunks=chunks, boxes=doc.boxes, images=len(pictures), image_tokens=images)

    def chunks(self, text: str, pages: tuple[int, ...] | None, system_chars: int,
               shots: tuple[Shot, ...]) -> tuple[Chunk, ...]:
        """The parts a text is asked in under the model's context (`chunked.plan_chunks`)."""
        if self.schema is None:
            return (Chunk(0, 0, len(text), text),)
        fixed = chunked.fixed_chars(self.config, self.schema, system_chars, shots)
        limit = chunked.chunk_limit(self.context_tokens, fixed, chunked.answer_room(self.config), self.budget.rate)
        return chunked.plan_chunks(text, pages, limit)

    def chunk_messages(self, ready: Ready, chunk: Chunk) -> list[dict[str, Any]]:
        """The whole-schema request of one chunk: the document's messages with the chunk in its place."""
        if len(chunk) == len(ready.text):
            return ready.messages
        return build_messages(self.system, chunk.text, [(s.text, s.output) for s in ready.identity.examples])

    def admit(self, ready: Ready) -> tuple[float, float] | None:
        """Reserve a ready document's expected cost under the cost limit, every chunk of it (a long document is
        sent whole or not at all); None: defer it to the next run."""
        return self.budget.admit(ready.prompt_chars, requests=len(ready.parts))


def _pictures(src: SourceFile, infos: Sequence[PageInfo]) -> list[tuple[int, bytes, int, int]]:
    """(page, JPEG, width, height) of each page of `src` read by OCR, upright, as a model is sent it."""
    try:
        raw = part_bytes(src) if src.part is not None else src.path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}", status="failed") from None
    return [(info.page, *page_picture(raw, src.suffix, info.page, info.rotation, MODEL_SIDE, MODEL_DPI,
                                      MODEL_QUALITY)) for info in infos if info.ocr]
