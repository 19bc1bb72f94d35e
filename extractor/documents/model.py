"""The document model: a file found in the drop folder, and a readable document (its text and where its
pages start)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SourceFile:
    """A file found in the input folder; nothing has been read yet."""

    path: Path
    doc_id: str


@dataclass(frozen=True)
class Document:
    """A readable document: its identity, the hash of its bytes and its text."""

    doc_id: str
    source_path: Path
    sha256: str
    text: str
    pages: tuple[int, ...] | None = None  # where each page starts in `text` (PDF); None: no pages


# Between the pages of a PDF while it is tidied; removed again once page starts are known.
PAGE_MARK = "\ue000"



def text_json(doc: Document) -> dict[str, Any]:
    """`extractor text --json`: the text and, for paged formats, where each page starts and ends."""
    starts = list(doc.pages or [])
    pages = [{"page": i + 1, "start": start, "end": starts[i + 1] if i + 1 < len(starts) else len(doc.text)}
             for i, start in enumerate(starts)]
    return {"doc_id": doc.doc_id, "sha256": doc.sha256, "chars": len(doc.text), "pages": pages or None,
            "text": doc.text}
