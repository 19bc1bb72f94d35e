"""Retrieved examples (`--examples similar:K`): the K labeled documents most like this one, as few-shot examples.

The pool is every labeled document (the labels store: labels files and people's corrections, a person's
value winning) whose text can be read (from its newest row's `source_path`, where `run --archive` moved it,
or the input folder); the example's output is its labeled fields, each validated with the schema's own
validators (a value that fails is left out; a document with none left is not in the pool).

Similarity is lexical, Okapi BM25 over lower-cased word tokens (k1 1.5, b 0.75), offline and without a
model: on the 24 labeled letters of `bench/labels` the labels of BM25's top 3 neighbours agreed more with a
letter's own labels than multilingual-e5-small's did (see README), at 2 ms instead of 0.5 s per document.
Each document's features (term counts, a hash of its normalized text) are kept in the journal by content
hash (`retrieval_features`), so an unchanged document is never read again just to choose its examples.
With `retrieval = "embeddings[:MODEL]"` documents are ranked instead by the cosine similarity of vectors from
the server's embeddings endpoint (`Backend.embed`, the same client and retry policy), kept the same way by
content hash and model, and their tokens priced into the run's cost (`Embedder`).

A document never gets itself as an example: not the same bytes, not the same doc_id, not the same
normalized text (case, spacing, punctuation), and not a near-duplicate (NEAR_DUPLICATE or more of its
distinct words shared, Jaccard). The chosen examples are part of the result's identity (`digest`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from extractor.config import RunConfig
from extractor.documents import DocumentReader, SourceFile, sha256_file
from extractor.errors import ConfigError, DocumentError, ExtractorError
from extractor.llm.transport import CallMeter
from extractor.schemas import validate_field
from extractor.store import Journal, Labels

METHOD = "bm25-words-v1"  # the features' format: a new tokenizer is a new method, never mixed with the old
NEAR_DUPLICATE = 0.9  # Jaccard of distinct words at or above which a labeled document counts as the same one
K1, B = 1.5, 0.75
EMBED_CHARS = 24_000  # an embeddings input is cut here: text-embedding-3 takes at most 8,191 tokens of one
EMBED_BATCH = 64  # texts per embeddings request

# (texts, model, meter) -> one vector per text (Backend.embed)
Embed = Callable[[list[str], str, CallMeter], Awaitable[list[list[float]]]]

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Shot:
    """One retrieved example: a labeled document's text and its validated labels."""

    doc_id: str
    sha256: str
    text: str
    output: dict[str, Any]


def features(text: str) -> dict[str, Any]:
    """What documents are compared by: term counts, length, and a hash of the normalized text."""
    words = [w.lower() for w in _WORD.findall(text)]
    return {"tf": dict(Counter(words)), "len": len(words),
            "norm": hashlib.sha256(" ".join(words).encode()).hexdigest()}


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm if norm else 0.0


def digest(shots: tuple[Shot, ...]) -> str:
    """The identity of an example set: who, which bytes, which labels, in order."""
    payload = [[s.doc_id, s.sha256, s.output] for s in shots]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Pool:
    """The labeled documents, ranked by BM25, or by cosine similarity where their embeddings are given."""

    def __init__(self, entries: list[tuple[Shot, dict[str, Any]]],
                 vectors: dict[str, list[float]] | None = None) -> None:
        self.entries = entries
        self.vectors = vectors  # content sha256 -> embedding (retrieval = "embeddings")
        self.df: Counter[str] = Counter(w for _, f in entries for w in f["tf"])
        self.avgdl = sum(f["len"] for _, f in entries) / len(entries) if entries else 0.0

    def score(self, query: set[str], doc: dict[str, Any]) -> float:
        n, tf, length = len(self.entries), doc["tf"], doc["len"]
        total = 0.0
        for word in query:
            if (count := tf.get(word)) is None:
                continue
            idf = math.log(1 + (n - self.df[word] + 0.5) / (self.df[word] + 0.5))
            total += idf * count * (K1 + 1) / (count + K1 * (1 - B + B * length / (self.avgdl or 1)))
        return total

    def nearest(self, query: dict[str, Any], *, sha256: str, doc_id: str, k: int,
                vector: list[float] | None = None) -> tuple[Shot, ...]:
        """The k most similar labeled documents, never the document itself or a near-duplicate of it (told
        by words whatever ranks them); by cosine similarity to `vector` when the pool has embeddings."""
        words = set(query["tf"])
        scored = []
        for shot, doc in self.entries:
            if shot.sha256 == sha256 or shot.doc_id == doc_id or doc["norm"] == query["norm"]:
                continue
            theirs = set(doc["tf"])
            union = words | theirs
            if union and len(words & theirs) / len(union) >= NEAR_DUPLICATE:
                continue
            if vector is not None and self.vectors is not None:
                scored.append((-cosine(vector, self.vectors[shot.sha256]), shot.doc_id, shot))
            elif (score := self.score(words, doc)) > 0:
                scored.append((-score, shot.doc_id, shot))
        return tuple(shot for _, _, shot in sorted(scored, key=lambda t: (t[0], t[1]))[:k])


class Embedder:
    """`retrieval = "embeddings[:MODEL]"`: vectors from the server's embeddings endpoint, each kept in the journal
    by content hash (`retrieval_features`, method `emb:<model>@<endpoint>`), so an unchanged document is never
    embedded again; what the calls used is counted for the run's cost."""

    def __init__(self, embed: Embed, model: str, endpoint: str, deadline_s: float) -> None:
        self.embed = embed
        self.model = model
        self.method = f"emb:{model}@{endpoint}"
        self.deadline_s = deadline_s
        self.tokens = 0
        self.requests = 0

    async def vectors(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            meter = CallMeter(deadline=time.monotonic() + self.deadline_s)
            try:
                out += await self.embed([t[:EMBED_CHARS] or " " for t in texts[start:start + EMBED_BATCH]],
                                        self.model, meter)
            except ExtractorError as exc:
                raise ConfigError(f"retrieval = embeddings:{self.model}: the server's embeddings endpoint failed: "
                                  f"{exc}; use a server that serves this embeddings model, or retrieval = bm25 "
                                  "(the default)") from None
            finally:
                self.tokens += meter.prompt_tokens
                self.requests += meter.requests
        return out


class Retriever:
    """Chooses each document's examples for one invocation (run, batch or dry run)."""

    def __init__(self, k: int, model: type[BaseModel], journal: Journal | None, reader: DocumentReader,
                 input_dir: Path | None, labels: dict[str, dict[str, Any]], embedder: Embedder | None = None) -> None:
        self.k = k
        self.model = model
        self.journal = journal
        self.reader = reader
        self.input_dir = input_dir
        self.labels = labels
        self.embedder = embedder
        self.skipped: dict[str, str] = {}  # labeled doc_id -> why it is not in the pool
        self._pool: Pool | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def open(cls, config: RunConfig, model: type[BaseModel], journal: Journal | None,
             reader: DocumentReader, labels: dict[str, dict[str, Any]] | None = None,
             embed: Embed | None = None) -> Retriever | None:
        """None unless `examples = "similar:K"`; the labels (`labels`, else the journal's store) are read once,
        here. With `retrieval = "embeddings"` documents are ranked by their embeddings, asked through `embed`;
        without `embed` (a dry run, which sends nothing) they are ranked by BM25: the estimate's examples are
        then alike in length, not necessarily the same documents."""
        k = config.similar_examples
        if k is None:
            return None
        embedder = (Embedder(embed, config.embedding_model, config.endpoint, config.document_deadline_s)
                    if embed is not None and config.embedding_model is not None else None)
        if labels is None:
            labels = {}
            if journal is not None:
                store = Labels.open_readonly(journal.path)
                try:
                    labels = store.latest()
                finally:
                    store.close()
        return cls(k, model, journal, reader, config.input_dir, labels, embedder)

    async def pool(self) -> Pool:
        async with self._lock:
            if self._pool is None:
                entries = await self._entries()
                vectors = None
                if self.embedder is not None:
                    vectors = await self._vectors([(shot.sha256, shot.text) for shot, _ in entries])
                self._pool = Pool(entries, vectors)
            return self._pool

    async def _vectors(self, texts: list[tuple[str, str]]) -> dict[str, list[float]]:
        """sha256 -> embedding, from the journal where it is kept, the rest asked for (and kept)."""
        assert self.embedder is not None
        method = self.embedder.method
        found = {sha: vector for sha, _ in texts if (vector := self._features(sha, method)) is not None}
        missing = [(sha, text) for sha, text in texts if sha not in found]
        if missing:
            for (sha, _), vector in zip(missing, await self.embedder.vectors([t for _, t in missing]), strict=True):
                found[sha] = self._store(sha, vector, method)
        return found

    async def _entries(self) -> list[tuple[Shot, dict[str, Any]]]:
        rows: dict[str, dict[str, Any]] = {}
        archived: dict[str, str] = {}
        if self.journal is not None and self.labels:
            rows = {row["doc_id"]: row for row in map(json.loads, self.journal.latest_rows(self.labels))}
            archived = self.journal.archived()
        entries = []
        for doc_id, values in sorted(self.labels.items()):
            output = self._output(values)
            if not output:
                self.skipped[doc_id] = "no labeled value passes the schema's validation"
                continue
            candidates = [rows.get(doc_id, {}).get("source_path"), archived.get(doc_id),
                          self.input_dir / doc_id if self.input_dir is not None else None]
            path = next((Path(p) for p in candidates if p and Path(p).is_file()), None)
            if path is None:
                self.skipped[doc_id] = "its text cannot be found"
                continue
            src = SourceFile.of(path, doc_id)
            try:
                raw = DocumentReader.small_text(src)
                sha = hashlib.sha256(raw).hexdigest() if raw is not None else await asyncio.to_thread(
                    sha256_file, path)
                text = (await self.reader.read(src, raw)).text
            except (OSError, DocumentError) as exc:
                self.skipped[doc_id] = f"its text cannot be read: {exc}"
                continue
            found = self._features(sha, METHOD) or self._store(sha, features(text), METHOD)
            entries.append((Shot(doc_id, sha, text, output), found))
        return entries

    def _output(self, values: dict[str, Any]) -> dict[str, Any]:
        """The labeled fields, each validated with the schema's own validators, in the schema's order (labels
        may cover only some fields: those are the example's output; nulls are left out as in static ones)."""
        output = {}
        for name in self.model.model_fields:
            if values.get(name) is None:
                continue
            try:
                output[name] = validate_field(self.model, name, values[name])
            except ValidationError:
                continue
        return output

    def _features(self, sha256: str, method: str) -> Any | None:
        return self.journal.features(sha256, method) if self.journal is not None else None

    def _store(self, sha256: str, found: Any, method: str) -> Any:
        if self.journal is not None:
            self.journal.record_features(sha256, method, found)
        return found

    async def choose(self, src: SourceFile, sha256: str, raw: bytes | None) -> tuple[Shot, ...]:
        """This document's examples; none when the pool is empty or its text cannot be read (then it is
        not sendable anyway)."""
        pool = await self.pool()
        if not pool.entries:
            return ()
        query = self._features(sha256, METHOD)
        vector = None
        if self.embedder is not None:
            vector = self._features(sha256, self.embedder.method)
        if query is None or (self.embedder is not None and vector is None):
            try:
                text = (await self.reader.read(src, raw)).text
            except DocumentError:
                return ()
            if query is None:
                query = self._store(sha256, features(text), METHOD)
            if self.embedder is not None and vector is None:
                vector = (await self._vectors([(sha256, text)]))[sha256]
        return pool.nearest(query, sha256=sha256, doc_id=src.doc_id, k=self.k, vector=vector)
