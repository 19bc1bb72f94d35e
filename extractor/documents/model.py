"""The document model: a file found in the drop folder, and a readable document (its text, where its pages
start and, for pages read by OCR, a box per line with the engine's confidence)."""

from __future__ import annotations

from dataclasses import dataclass, field
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
class Box:
    """Where one line of OCR'd text stands: `text[start:end]` was read from `bbox` on `page`.

    `bbox` is (x0, y0, x1, y1) as fractions of the page's width and height (0..1, origin top-left, the page as
    read, that is after turning it upright), so it does not depend on the resolution a page was rendered at;
    multiply by `PageInfo.width`/`height` for pixels. `confidence` is the OCR engine's score of the line (0..1).
    """

    start: int
    end: int
    page: int  # 1-based
    bbox: tuple[float, float, float, float]
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "page": self.page, "bbox": list(self.bbox),
                "confidence": self.confidence}


@dataclass(frozen=True)
class PageInfo:
    """One page of a paged document: its size in pixels as read and how it was read."""

    page: int  # 1-based
    width: int  # pixels of the page image the OCR read (a text-layer page: points, 1/72 inch)
    height: int
    ocr: bool  # read by OCR (else from the PDF's text layer)
    rotation: int = 0  # degrees the page was turned clockwise to stand upright before it was read (0/90/180/270)


@dataclass(frozen=True)
class ParsedPage:
    """A parser's page before assembly: its text and, when OCR'd, its boxes (offsets into this text)."""

    text: str
    info: PageInfo
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True)
class ParseOptions:
    """How far a parser may go on one file: OCR on or off, and its limits (see extractor.documents.ocr)."""

    ocr: bool = True
    ocr_max_pages: int = 50  # a document with more pages to OCR is refused (failed row) before any is read
    ocr_page_timeout_s: float = 30.0  # each OCR'd page adds this to the document's parse time limit
    parse_timeout_s: float = 60.0
    # Stop where OCR would begin and say how many pages it would read (OcrNeeded): the reader then gives the
    # document a time limit for that many pages.
    defer_ocr: bool = False


class OcrNeeded(Exception):
    """Raised by a parser under `ParseOptions.defer_ocr`: the file needs `pages` pages read by OCR."""

    def __init__(self, pages: int) -> None:
        super().__init__(pages)
        self.pages = pages


@dataclass(frozen=True)
class Document:
    """A readable document: its identity, the hash of its bytes and its text."""

    doc_id: str
    source_path: Path
    sha256: str
    text: str
    pages: tuple[int, ...] | None = None  # where each page starts in `text` (PDF, TIFF); None: no pages
    boxes: tuple[Box, ...] = ()  # OCR'd lines in text order (empty: nothing was read by OCR)
    page_info: tuple[PageInfo, ...] = field(default=())  # per page, when paged
    ocr: str | None = None  # the OCR engine and version that read some of its pages (None: no OCR)


# Between the pages of a PDF while it is tidied; removed again once page starts are known.
PAGE_MARK = "\ue000"


def text_json(doc: Document) -> dict[str, Any]:
    """`extractor text --json`: the text and, for paged formats, where each page starts and ends; for OCR'd
    pages also their size and turn, and every line's box (`Box`: fractions of the page, origin top-left)."""
    starts = list(doc.pages or [])
    infos = {info.page: info for info in doc.page_info}
    pages = []
    for i, start in enumerate(starts):
        page: dict[str, Any] = {"page": i + 1, "start": start,
                                "end": starts[i + 1] if i + 1 < len(starts) else len(doc.text)}
        if (info := infos.get(i + 1)) is not None:
            page.update(width=info.width, height=info.height, ocr=info.ocr, rotation=info.rotation)
        pages.append(page)
    out: dict[str, Any] = {"doc_id": doc.doc_id, "sha256": doc.sha256, "chars": len(doc.text),
                           "pages": pages or None, "text": doc.text}
    if doc.ocr is not None:
        out.update(ocr=doc.ocr, bbox_units="fraction of the page's width and height, origin top-left",
                   boxes=[box.as_dict() for box in doc.boxes])
    return out


def assemble(pages: list[ParsedPage]) -> tuple[str, tuple[int, ...], tuple[Box, ...]]:
    """One text of several pages (a blank line between them): the text, each page's start, and the boxes moved
    from page offsets to text offsets with their page numbers."""
    parts: list[str] = []
    starts: list[int] = []
    boxes: list[Box] = []
    position = 0
    for number, page in enumerate(pages, start=1):
        if parts:
            parts.append("\n\n")
            position += 2
        starts.append(position)
        parts.append(page.text)
        boxes.extend(Box(b.start + position, b.end + position, number, b.bbox, b.confidence) for b in page.boxes)
        position += len(page.text)
    return "".join(parts), tuple(starts), tuple(boxes)
