"""Reading documents as a run does: small text inline, every other parser in a worker process under a
time limit; the same text for `extractor text`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from pathlib import Path
from typing import Any

from extractor.documents.model import PAGE_MARK, PART_MARK, Document, SourceFile
from extractor.documents.parsers import _PARSERS, _tidy, _unsupported, email_parts, parse_bytes
from extractor.documents.sources import MAX_FILE_BYTES, NOT_DOCUMENTS, sha256_file
from extractor.errors import DocumentError


def load_document(src: SourceFile, *, max_chars: int) -> Document:
    """Read and parse one file (or one part of an e-mail). Raises DocumentError (with `.sha256` when the bytes
    were read)."""
    if src.part is not None:
        return document_from_bytes(src, part_bytes(src), max_chars=max_chars)
    try:
        size = src.path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(
                f"file is {size / 1e6:.1f} MB, above the {MAX_FILE_BYTES // 2**20} MiB limit; not read",
                status="failed", sha256=sha256_file(src.path))
        raw = src.path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}", status="failed",
                                     sha256=None) from None
    return document_from_bytes(src, raw, max_chars=max_chars)


def document_from_bytes(src: SourceFile, raw: bytes, *, max_chars: int) -> Document:
    """Parse bytes already read from `src` (see load_document)."""
    sha = hashlib.sha256(raw).hexdigest()
    try:
        text = parse_bytes(raw, src.suffix)
    except DocumentError as exc:
        raise DocumentError(str(exc), status=exc.status, sha256=sha) from None
    except Exception as exc:  # a parser library choking on hostile input is a bad file, not a crash
        raise DocumentError(
            f"could not parse {src.suffix or 'file'}: {type(exc).__name__}: {exc}",
            status="failed", sha256=sha) from None
    text = _tidy(text)
    pages: tuple[int, ...] | None = None
    if PAGE_MARK in text:  # each page begins with the mark
        parts = text.split(PAGE_MARK)
        position, starts = len(parts[0]), []
        for part in parts[1:]:
            starts.append(position)
            position += len(part)
        text, pages = "".join(parts), tuple(starts)
    if not text.strip():
        raise DocumentError("document has no text", status="skipped", sha256=sha)
    if len(text) > max_chars:
        raise DocumentError(
            f"document text is {len(text):,} characters, above the limit of {max_chars:,} "
            "(raise max_chars to send it)", status="failed", sha256=sha)
    return Document(doc_id=src.doc_id, source_path=src.path, sha256=sha, text=text, pages=pages)


# Plain text decodes in bounded time; every other parser gets a worker process and a time limit,
# because a hostile PDF or zip can make a parser spin for minutes.
_INLINE_SUFFIXES = frozenset({".txt", ".md"})


# Plain-text files up to this size are read once, hashed and decoded without a second read or a
# worker: the common case of a nightly drop of letters stays cheap.
SMALL_TEXT_BYTES = 256 * 1024


class DocumentReader:
    """Reads documents with a per-document parse time limit; a parser that hangs is killed."""

    def __init__(self, *, max_chars: int, timeout_s: float, workers: int = 2) -> None:
        self.max_chars = max_chars
        self.timeout_s = timeout_s
        self.workers = workers
        self._pool: object | None = None

    def _get_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing

            from pebble import ProcessPool

            # forkserver: forking the run's own process (threads, sockets) is unsafe; spawn is slow.
            self._pool = ProcessPool(max_workers=self.workers,
                                     context=multiprocessing.get_context("forkserver"))
        return self._pool

    @staticmethod
    def small_text(src: SourceFile) -> bytes | None:
        """The bytes of a small plain-text file (read once, for hashing and parsing), or of an e-mail's part (its
        own bytes are its identity, not the whole e-mail's), else None."""
        if src.part is not None:
            try:
                return part_bytes(src)
            except DocumentError:
                return None  # the regular path reports the error
        if src.path.suffix.lower() not in _INLINE_SUFFIXES:
            return None
        try:
            if src.path.stat().st_size > SMALL_TEXT_BYTES:
                return None
            return src.path.read_bytes()
        except OSError:
            return None  # the regular path reports the error

    async def read(self, src: SourceFile, raw: bytes | None = None) -> Document:
        if src.part is not None:
            return await self._read_part(src, raw)
        if raw is not None:  # small plain text: decoding takes microseconds, no thread needed
            return document_from_bytes(src, raw, max_chars=self.max_chars)
        suffix = src.path.suffix.lower()
        if suffix and suffix not in _PARSERS:
            raise _unsupported(suffix)  # known from the name alone: no read, no worker process
        if not suffix and src.path.name.upper() in NOT_DOCUMENTS:
            raise DocumentError(f"{src.path.name} is not a document (files like README or LICENSE without an "
                                "extension are skipped)", status="skipped")
        if suffix in _INLINE_SUFFIXES:
            return await asyncio.to_thread(load_document, src, max_chars=self.max_chars)
        future = self._get_pool().schedule(load_document, args=(src,), kwargs={"max_chars": self.max_chars},
                                           timeout=self.timeout_s)
        return await self._settle(src, future)

    async def _read_part(self, src: SourceFile, raw: bytes | None) -> Document:
        """An e-mail's part: text inline, anything else parsed in a worker under the time limit like a file."""
        if raw is None:
            raw = await asyncio.to_thread(part_bytes, src)
        if src.suffix in _INLINE_SUFFIXES:
            return document_from_bytes(src, raw, max_chars=self.max_chars)
        future = self._get_pool().schedule(document_from_bytes, args=(src, raw), kwargs={"max_chars": self.max_chars},
                                           timeout=self.timeout_s)
        return await self._settle(src, future)

    async def _settle(self, src: SourceFile, future: Any) -> Document:
        from pebble import ProcessExpired

        try:
            return await asyncio.wrap_future(future)
        except concurrent.futures.TimeoutError:
            sha = await asyncio.to_thread(sha256_file, src.path)
            raise DocumentError(f"parsing took longer than parse_timeout_s = {self.timeout_s:g}s; the parser was "
                                "stopped: raise parse_timeout_s in the config file if the file is just large, "
                                "or check the file", sha256=sha) from None
        except ProcessExpired as exc:
            sha = await asyncio.to_thread(sha256_file, src.path)
            raise DocumentError(f"the parser crashed on this file (exit code {exc.exitcode}): the file is probably "
                                "damaged; open and save it again, or convert it to PDF or text", sha256=sha) from None
        except asyncio.CancelledError:
            future.cancel()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()  # type: ignore[attr-defined]
            self._pool.join()  # type: ignore[attr-defined]
            self._pool = None


def part_bytes(src: SourceFile) -> bytes:
    """The bytes of one part of an e-mail (`src.part`, see `parsers.email_parts`). Raises DocumentError."""
    assert src.part is not None
    try:
        if (size := src.path.stat().st_size) > MAX_FILE_BYTES:
            raise DocumentError(f"e-mail is {size / 1e6:.1f} MB, above the {MAX_FILE_BYTES // 2**20} MiB limit; "
                                "not read", status="failed")
        raw = src.path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}", status="failed") from None
    found = email_parts(raw).get(src.part)
    if found is None:
        raise DocumentError(f"the e-mail {src.path.name} has no part {src.part!r} any more", status="failed",
                            sha256=hashlib.sha256(raw).hexdigest())
    return found[1]


def content_sha256(src: SourceFile) -> str:
    """The sha256 a document's row records: of its bytes (an e-mail's part: of the part's own bytes). Raises
    OSError, or DocumentError for a part that is gone."""
    if src.part is not None:
        return hashlib.sha256(part_bytes(src)).hexdigest()
    return sha256_file(src.path)


def split_emails(files: list[SourceFile]) -> list[SourceFile]:
    """Every e-mail with attachments as its parts (`mail.eml#body`, `mail.eml#cv.pdf`: documents of their own,
    for `--schema auto`), every other file as it is. An e-mail that cannot be read stays whole (its row says why)."""
    out: list[SourceFile] = []
    for src in files:
        parts: dict[str, tuple[str, bytes]] = {}
        if src.part is None and src.path.suffix.lower() == ".eml":
            try:
                if src.path.stat().st_size <= MAX_FILE_BYTES:
                    parts = email_parts(src.path.read_bytes())
            except Exception:
                parts = {}
        if not parts:
            out.append(src)
            continue
        out.extend(SourceFile(path=src.path, doc_id=f"{src.doc_id}{PART_MARK}{name}", part=name) for name in parts)
    return out


def read_text(path: Path, *, max_chars: int, timeout_s: float) -> Document:
    """The text the model sees for one file (the text evidence offsets index into), read as a run reads it."""
    if not path.is_file():
        raise DocumentError(f"{path} does not exist or is not a file")
    reader = DocumentReader(max_chars=max_chars, timeout_s=timeout_s)
    try:
        return asyncio.run(reader.read(SourceFile(path=path, doc_id=path.name)))
    finally:
        reader.close()


