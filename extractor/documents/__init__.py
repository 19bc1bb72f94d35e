"""Finding documents in a drop folder and turning each one into plain text.

Every file gets a stable `doc_id` (its path relative to the input folder) and the sha256 of its raw
bytes. Files that cannot be read raise `DocumentError` with a message a person understands and the
row status they deserve (`skipped` for nothing-to-do, `failed` for broken input).

- `model`: `SourceFile` (a file found, or one part of an e-mail: `mail.eml#cv.pdf`) and `Document` (its text
  and page starts; for pages read by OCR a `Box` per line: its offsets, page, bbox as fractions of the page, OCR
  confidence; `PageInfo` per page);
- `sources`: `discover` and `sha256_file`;
- `ocr`: scanned pages and photos read offline (RapidOCR): orientation, reading order, limits, page images;
- `parsers`: the text of a file's bytes, by format (scans and images through `ocr`);
- `reader`: `DocumentReader`, which parses under a time limit in worker processes, `read_text`, and
  `split_emails` (an e-mail with attachments as documents of their own, for `--schema auto`);
- `chunks`: `chunk_text`, a text too long for one request cut on its pages, paragraphs and sentences, with an
  overlap, each `Chunk` with its offsets into the whole text.

May import: `errors` only.
"""

from extractor.documents.chunks import Chunk, chunk_text
from extractor.documents.model import (
    BODY_PART,
    PAGE_MARK,
    PART_MARK,
    Box,
    Document,
    PageInfo,
    ParseOptions,
    SourceFile,
    text_json,
)
from extractor.documents.ocr import (
    IMAGE_SUFFIXES,
    MODEL_DPI,
    MODEL_QUALITY,
    MODEL_SIDE,
    may_need_ocr,
    page_image,
    page_picture,
)
from extractor.documents.ocr import engine_id as ocr_engine
from extractor.documents.parsers import SUPPORTED_SUFFIXES, decode_text, email_parts, html_to_text, parse_bytes
from extractor.documents.reader import (
    SMALL_TEXT_BYTES,
    DocumentReader,
    content_sha256,
    document_from_bytes,
    load_document,
    part_bytes,
    read_text,
    split_emails,
)
from extractor.documents.sources import MAX_FILE_BYTES, NOT_DOCUMENTS, discover, sha256_file

__all__ = [
    "BODY_PART",
    "IMAGE_SUFFIXES",
    "MAX_FILE_BYTES",
    "MODEL_DPI",
    "MODEL_QUALITY",
    "MODEL_SIDE",
    "NOT_DOCUMENTS",
    "PAGE_MARK",
    "PART_MARK",
    "SMALL_TEXT_BYTES",
    "SUPPORTED_SUFFIXES",
    "Box",
    "Chunk",
    "Document",
    "DocumentReader",
    "PageInfo",
    "ParseOptions",
    "SourceFile",
    "chunk_text",
    "content_sha256",
    "decode_text",
    "discover",
    "document_from_bytes",
    "email_parts",
    "html_to_text",
    "load_document",
    "may_need_ocr",
    "ocr_engine",
    "page_image",
    "page_picture",
    "parse_bytes",
    "part_bytes",
    "read_text",
    "sha256_file",
    "split_emails",
    "text_json",
]
