"""Parsers: the text of a file's bytes by format (text, Markdown, PDF, DOCX, HTML, e-mail), tidied; scans
(image-only PDF pages) and images through `ocr`."""

from __future__ import annotations

import codecs
import copy
import email
import email.policy
import functools
import io
import logging
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from extractor.documents.model import BODY_PART, PAGE_MARK, PART_MARK, PageInfo, ParsedPage, ParseOptions
from extractor.documents.ocr import IMAGE_SUFFIXES, INSTALL_HINT, engine_id, read_image, read_pdf_pages
from extractor.errors import DocumentError

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm", ".eml",
                      *IMAGE_SUFFIXES)  # the keys of _PARSERS (tested)
# A PDF page with fewer letters and digits than this in its text layer is read by OCR (a scan with a stamped
# page number is still a scan).
OCR_BELOW_CHARS = 10
# What a parser gives: plain text (PDF pages separated by PAGE_MARK), or pages already laid out (OCR'd).
Parsed = str | list[ParsedPage]

# Elements that are never content: code, styling, page chrome around the main text, and what a browser
# would not show (the hidden attribute, aria-hidden, an inline display:none or visibility:hidden). A page's
# <header> (or role=banner) is chrome only when it holds nothing but navigation (`_HTML_BANNER_XPATH`): an
# invoice's <header> is where its supplier block stands.
_HTML_DROP = ["script", "style", "noscript", "template", "svg", "nav", "footer", "aside",
              "form", "iframe", "button", "select", "head"]
_HTML_BANNER_XPATH = "//header | //*[@role='banner']"
_HTML_LINKS_XPATH = ".//a | .//img | .//picture"  # what a banner of links and a logo shows besides navigation
_HTML_DROP_XPATH = " | ".join(
    [f"//{tag}" for tag in _HTML_DROP]
    + ["//*[@role='navigation' or @role='contentinfo']", "//*[@hidden]",
       "//*[@aria-hidden='true']",
       "//*[contains(translate(@style, 'ABDEHILNOPSTVY ', 'abdehilnopstvy'), 'display:none')]",
       "//*[contains(translate(@style, 'ABDEHILNOPSTVY ', 'abdehilnopstvy'), 'visibility:hidden')]"])


def parse_bytes(raw: bytes, suffix: str, options: ParseOptions | None = None) -> Parsed:
    """Text of a file's bytes, chosen by suffix (or by sniffing when there is none): a str, or the pages of a
    document read (partly) by OCR."""
    if not raw:
        raise DocumentError("empty file (0 bytes)", status="skipped")
    if suffix == "":
        suffix = _sniff(raw)
    parser = _PARSERS.get(suffix)
    if parser is None:
        raise _unsupported(suffix)
    return parser(raw, options or ParseOptions())


def parse_text(raw: bytes, suffix: str) -> str:
    """Text of a file's bytes without OCR (an e-mail's attachments): OCR'd pages joined, boxes dropped."""
    parsed = parse_bytes(raw, suffix, ParseOptions(ocr=False))
    return parsed if isinstance(parsed, str) else "\n\n".join(page.text for page in parsed)


def _unsupported(suffix: str) -> DocumentError:
    if not suffix:
        return DocumentError("no file extension, and the bytes are neither plain prose nor a PDF, DOCX, HTML or "
                             f"e-mail; supported: {', '.join(SUPPORTED_SUFFIXES)}", status="skipped")
    return DocumentError(f"unsupported file type {suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}",
                         status="skipped")


_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"II*\x00", ".tif"),
                (b"MM\x00*", ".tif"), (b"BM", ".bmp"))


def _sniff(raw: bytes) -> str:
    """The format of a file without an extension, from its bytes: a PDF, DOCX, HTML page, e-mail or plain
    text; anything else (binary, or text that is mostly not prose) is skipped as unsupported."""
    if raw.startswith(b"%PDF"):
        return ".pdf"
    if raw.startswith(b"PK\x03\x04"):
        return ".docx"
    for magic, suffix in _IMAGE_MAGIC:
        if raw.startswith(magic):
            return suffix
    head = raw[:2048].lower()
    if b"<html" in head or b"<!doctype html" in head:
        return ".html"
    if re.match(rb"(?:(?:from|to|subject|date|received|return-path|message-id|mime-version):[^\n]*\r?\n)+",
                head) and b"\nsubject:" in b"\n" + head:
        return ".eml"
    try:
        sample = raw[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < 4090:  # not a character cut in half at the sample's end
            return ""
        sample = raw[:exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in sample)
    letters = sum(ch.isalpha() for ch in sample)
    plainly_text = sample and printable / len(sample) > 0.98 and letters / len(sample) > 0.5
    return ".txt" if plainly_text else ""


def decode_text(raw: bytes) -> str:
    """Bytes to str: BOMs first, then strict UTF-8, then charset detection, refusing binary data."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
                       (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return raw.decode(codec, errors="replace")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = _detect(raw)
    nuls = text.count("\x00")
    if nuls:
        if nuls > max(8, len(text) * 0.01):  # a stray NUL in a short letter is not binary
            raise DocumentError(f"looks like binary data, not text ({nuls:,} NUL bytes)")
        text = text.replace("\x00", "")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > max(8, len(text) * 0.02):
        raise DocumentError("looks like binary data, not text (too many control characters)")
    return text


def _detect(raw: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = from_bytes(raw[: 1 << 20])
    best = matches.best()
    if best is None or best.encoding is None:
        raise DocumentError("not text: no character encoding fits (binary file?)")
    encoding = best.encoding
    # Short Western text ties between code pages (cp1250/cp1257/cp775 all decode it without chaos, turning
    # "é" into "ę" or "ķ"); on a tie prefer cp1252, the usual legacy encoding of such documents.
    if any("cp1252" in m.could_be_from_charset and m.chaos <= best.chaos for m in matches):
        encoding = "cp1252"
    return raw.decode(encoding, errors="replace")


def _parse_text(raw: bytes) -> str:
    return decode_text(raw)


def _parse_pdf(raw: bytes, options: ParseOptions) -> Parsed:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not raw.lstrip()[:5].startswith(b"%PDF"):
        raise DocumentError("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                raise DocumentError("PDF is encrypted with a password; cannot read its text")
        pages = [(page.extract_text() or "").replace(PAGE_MARK, "") for page in reader.pages]
        sizes = [(int(float(page.mediabox.width)), int(float(page.mediabox.height))) for page in reader.pages]
    except DocumentError:
        raise
    except PdfReadError as exc:
        raise DocumentError(f"corrupted or truncated PDF: {exc}") from None
    scanned = [i for i, page in enumerate(pages) if sum(c.isalnum() for c in page) < OCR_BELOW_CHARS]
    if scanned and options.ocr and engine_id() is not None:
        read = read_pdf_pages(raw, scanned, len(pages), options)
        out = [read[i] if i in read else ParsedPage(_tidy(page), PageInfo(i + 1, *sizes[i], ocr=False))
               for i, page in enumerate(pages)]
        if not any(page.text.strip() for page in out):
            raise DocumentError(f"PDF has no text layer and OCR read no text on its {len(pages)} page(s) (blank, "
                                "or pictures without writing)", status="skipped")
        return out
    text = PAGE_MARK + ("\n\n" + PAGE_MARK).join(pages)
    if not text.replace(PAGE_MARK, "").strip():
        why = "OCR is off" if not options.ocr else INSTALL_HINT
        raise DocumentError(f"PDF has no text layer ({len(pages)} page(s), image-only or scanned); {why}",
                            status="skipped")
    return text


def _parse_docx(raw: bytes) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise DocumentError("not a valid .docx file (not a zip archive)")
    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise DocumentError(f"not a valid .docx file (zip without a Word document): {exc}") from None
    parts: list[str] = []
    seen_headers: set[str] = set()
    for section in document.sections:
        for block in (section.header, section.first_page_header):
            text = _docx_blocks(block.iter_inner_content())
            if text and text not in seen_headers:
                seen_headers.add(text)
                parts.append(text)
    parts.append(_docx_blocks(document.iter_inner_content()))
    for section in document.sections:
        text = _docx_blocks(section.footer.iter_inner_content())
        if text and text not in seen_headers:
            seen_headers.add(text)
            parts.append(text)
    return "\n\n".join(p for p in parts if p)


def _docx_blocks(blocks: Iterator[object]) -> str:
    from docx.table import Table

    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                previous = None
                for cell in row.cells:
                    # A cell merged across columns comes back once per grid column it spans, as the same
                    # <w:tc>: it is one cell. Equal text in two cells is two cells ("1 | $10.50 | $10.50"),
                    # and an empty cell keeps its place so the columns do not shift.
                    if cell._tc is previous:
                        continue
                    previous = cell._tc
                    cells.append(" ".join(_docx_visible(p) for p in cell.paragraphs).strip())
                if any(cells):
                    lines.append(" | ".join(cells))
        else:
            lines.append(_docx_visible(block))
    return "\n".join(lines).strip()


def _docx_visible(paragraph: Any) -> str:
    """A paragraph's text without runs formatted as hidden (w:vanish): Word does not show them, and,
    like hidden HTML, they are a place to slip instructions past a reader."""
    from docx.text.hyperlink import Hyperlink

    parts: list[str] = []
    for item in paragraph.iter_inner_content():
        runs = item.runs if isinstance(item, Hyperlink) else [item]
        parts.extend(run.text for run in runs if not run.font.hidden)
    return "".join(parts)


# Block elements a browser puts on lines of their own that inscriptis' strict profile leaves inline: without
# them "<dt>Invoice date</dt><dd>1 October 2026</dd>" reached the model as "Invoice date1 October 2026".
_HTML_BLOCKS = ("section", "details", "summary", "dialog", "dl", "dt", "dd", "fieldset", "legend", "caption",
                "menu", "center", "hr")


@functools.cache
def _html_css() -> dict[str, Any]:
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.html_properties import Display
    from inscriptis.model.html_element import HtmlElement

    css = dict(CSS_PROFILES["strict"])
    css.update({tag: HtmlElement(tag, display=Display.block) for tag in _HTML_BLOCKS})
    return css


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, laid out as a browser shows it: block elements on their own
    lines, inline ones (<b>, <a>, <span>) inside the line, table rows as rows. Scripts, styles, page
    chrome and hidden elements are removed first; hidden text in an e-mail is a classic place to
    slip instructions past a reader, and nobody sees it in a browser either.
    """
    import lxml.etree
    import lxml.html
    from inscriptis.html_engine import Inscriptis
    from inscriptis.model.config import ParserConfig

    if not html.strip():
        return ""
    # As bytes with a declared encoding: lxml refuses str input that carries an XML encoding declaration.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True)
    try:
        tree = lxml.html.document_fromstring(html.encode("utf-8", "surrogatepass"), parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return ""
    for node in tree.xpath(_HTML_DROP_XPATH):
        if node.getparent() is not None:  # an ancestor may already have been dropped
            node.drop_tree()  # keeps the tail: text after the element belongs to its parent
    for node in tree.xpath(_HTML_BANNER_XPATH):
        if node.getparent() is not None and not _banner_content(node):
            node.drop_tree()
    text = Inscriptis(tree, ParserConfig(css=_html_css(), display_links=False, display_images=False)).get_text()
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _banner_content(node: Any) -> bool:
    """A <header> carries content besides navigation: text outside its links and logo (its <nav> is gone already).
    "<header><a>Home</a> | <a>Blog</a></header>" is chrome; "<header><p>Bürobedarf Zürich AG<br>...</p></header>"
    is an invoice's supplier block."""
    bare = copy.deepcopy(node)
    for link in bare.xpath(_HTML_LINKS_XPATH):
        if link.getparent() is not None:
            link.drop_tree()
    return bool(re.search(r"[^\W_]", bare.text_content() or ""))


def _parse_html(raw: bytes) -> str:
    return html_to_text(decode_text(raw))


def _email_sections(raw: bytes) -> tuple[list[str], str, list[tuple[str, str, bytes]]]:
    """An e-mail's header lines, its body text and its attachments that a parser takes: (name, suffix, bytes)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    header_lines = [f"{name}: {msg[name]}" for name in ("From", "To", "Date", "Subject") if msg[name]]
    body_text = ""
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        body_text = html_to_text(content) if body.get_content_subtype() == "html" else content
    attachments: list[tuple[str, str, bytes]] = []
    for attachment in msg.iter_attachments():
        name = attachment.get_filename() or "attachment"
        suffix = Path(name).suffix.lower()
        if attachment.get_content_maintype() == "text" and suffix not in _PARSERS:
            suffix = ".html" if attachment.get_content_subtype() == "html" else ".txt"
        if suffix not in _PARSERS or suffix == ".eml" or suffix in IMAGE_SUFFIXES:
            continue  # an e-mail's pictures are logos and signatures far more often than documents
        payload = attachment.get_payload(decode=True) or b""
        if isinstance(payload, bytes):
            attachments.append((name, suffix, payload))
    return header_lines, body_text, attachments


def _parse_eml(raw: bytes) -> str:
    header_lines, body_text, attachments = _email_sections(raw)
    parts: list[str] = [body_text] if body_text else []
    for name, suffix, payload in attachments:
        try:
            text = parse_text(payload, suffix).replace(PAGE_MARK, "")  # the e-mail has no pages
        except DocumentError:
            continue  # an unreadable attachment does not sink the e-mail's own body
        if text.strip():
            parts.append(f"[attachment: {name}]\n{text}")
    if not any(p.strip() for p in parts):
        raise DocumentError("e-mail has no text body and no readable attachment", status="skipped")
    # The headers as a block, like a mail client shows them; then the body and each attachment.
    return "\n\n".join(["\n".join(header_lines), *parts] if header_lines else parts)


def email_parts(raw: bytes) -> dict[str, tuple[str, bytes]]:
    """An e-mail as documents of their own (`--schema auto` routes each): part name -> (suffix, bytes).

    Every attachment a parser takes, by its file name (a repeated name gets ` (2)`, ...), and the body as
    `BODY_PART` (the header block and the body text, as UTF-8 text) when the body has words; an e-mail
    without such attachments has no parts (it stays one document)."""
    header_lines, body_text, attachments = _email_sections(raw)
    if not attachments:
        return {}
    parts: dict[str, tuple[str, bytes]] = {}
    if body_text.strip():
        text = "\n\n".join(["\n".join(header_lines), body_text] if header_lines else [body_text])
        parts[BODY_PART] = (".txt", text.encode())
    for name, suffix, payload in attachments:
        shown = Path(name).name.replace(PART_MARK, "_") or "attachment"
        unique, n = shown, 1
        while unique in parts:
            n += 1
            unique = f"{Path(shown).stem} ({n}){Path(shown).suffix}"
        parts[unique] = (suffix, payload)
    return parts


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()



def _plain(parse: Callable[[bytes], str]) -> Callable[[bytes, ParseOptions], Parsed]:
    """A parser that needs no options (no OCR)."""
    return lambda raw, options: parse(raw)


def _image(suffix: str) -> Callable[[bytes, ParseOptions], Parsed]:
    return lambda raw, options: read_image(raw, suffix, options)


_PARSERS: dict[str, Callable[[bytes, ParseOptions], Parsed]] = {
    ".txt": _plain(_parse_text),
    ".md": _plain(_parse_text),
    ".pdf": _parse_pdf,
    ".docx": _plain(_parse_docx),
    ".html": _plain(_parse_html),
    ".htm": _plain(_parse_html),
    ".eml": _plain(_parse_eml),
    **{suffix: _image(suffix) for suffix in IMAGE_SUFFIXES},
}
