"""The document model: a file found in the drop folder, and a readable document (its text and where its
pages start)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

PART_MARK = "#"  # `mail.eml#cv.pdf`: the attachment cv.pdf of mail.eml, a document of its own
BODY_PART = "body"  # `mail.eml#body`: an e-mail's own text (its headers and body) without its attachments


@dataclass(frozen=True)
class SourceFile:
    """A file found in the input folder (or one part of an e-mail, `part`); nothing has been read yet."""

    path: Path
    doc_id: str
    part: str | None = None  # an attachment's file name, or BODY_PART: the document is that part of `path`

    @classmethod
    def of(cls, path: Path, doc_id: str) -> SourceFile:
        """The document a stored row names (its `source_path` and `doc_id`): a part of an e-mail when the doc_id
        names one (`mail.eml#cv.pdf` of `.../mail.eml`), else the file itself."""
        head, mark, part = doc_id.rpartition(PART_MARK)
        if mark and part and PART_MARK not in Path(path).name and head.endswith(Path(path).name):
            return cls(path=Path(path), doc_id=doc_id, part=part)
        return cls(path=Path(path), doc_id=doc_id)

    @property
    def suffix(self) -> str:
        """The format its bytes are parsed as: the part's (an e-mail's body is text), else the file's."""
        if self.part is None:
            return self.path.suffix.lower()
        return ".txt" if self.part == BODY_PART else Path(self.part).suffix.lower()


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
