"""OCR: the text of scanned pages and photos, offline, with a box and a confidence per line.

The engine is RapidOCR (PP-OCR detection, line-direction and recognition models as ONNX, shipped inside the
`rapidocr` wheel; onnxruntime runs them on the CPU): no model is downloaded at run time. Chosen by measurement
(bench/ocr.py; docs/benchmarks.md): on the sample letters rendered at 200 dpi it reads a page in a few seconds
on 2 cores with a character error rate of about 1%.

A page goes through:

1. limits: an image's pixel count is checked from its header before it is decoded (a 20,000 x 20,000 PNG is
   refused, not decoded: `MAX_IMAGE_PIXELS`); a page is read at most `MAX_SIDE` pixels on its long side (the
   engine's own limit, so nothing is lost) and one page at a time, so memory stays bounded;
2. orientation: EXIF orientation is applied first. A page is read as it stands; when that reading looks turned
   (mostly tall lines, or mostly unsure ones), text detection on a small copy says whether lines run across or
   up the page (turned 90 or 270 degrees), and the line-direction model on its widest lines says whether it
   stands on its head; the page is turned upright and read again (`PageInfo.rotation`);
3. reading order: the lines are cut into columns and paragraphs (a recursive XY cut), each block read top to
   bottom, each line left to right; a blank line between paragraphs. A line that continues the line above it (a
   paragraph wrapped at the margin: decided by the boxes' geometry, `_continues`) is joined to it with a space;
   address lines, greetings, sign-offs, list items and headings stay lines.

Imports of Pillow, numpy, pypdfium2 and rapidocr are lazy: `extractor --help` must stay fast.
"""

from __future__ import annotations

import functools
import io
import itertools
import re
import statistics
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from extractor.documents.model import Box, OcrNeeded, PageInfo, ParsedPage, ParseOptions
from extractor.errors import DocumentError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
# Pillow's own guard warns above 89 MP and refuses above twice that; set explicitly, and lower: an A3 page at
# 600 dpi is 70 MP, and a 20,000 x 20,000 bomb (400 MP, 1.2 GB as RGB) is refused from its header alone.
MAX_IMAGE_PIXELS = 80_000_000
MAX_SIDE = 2000  # rapidocr's Global.max_side_len: a larger page is scaled down by the engine anyway
RENDER_DPI = 200  # PDF pages are rendered at this resolution (a letter page: 1700 x 2200 px)
PROBE_SIDE = 1024  # the small copy the orientation probe detects lines on
PIPELINE = "3"  # bump when the page pipeline changes what text comes out (it is in the cache key)
# Text detection on the page scaled to 1280 px on its long side, not rapidocr's default (the short side kept at
# 736 px or more: a 200 dpi letter page was detected at its full 1545 x 2000). Measured on three sample letters at
# 200 dpi (CPU seconds a page, a machine at load ~16, 2026-12-02): detection 4.6 -> 1.6 s, recognition unchanged
# (it reads each line's crop from the full-size page, scaled to 48 px high), character error rate 0.06% -> 0.03%.
# 960 px saved another 0.6 s but leaves 11 pt text 13 px high and small print (7 pt) under 9 px.
DETECT_SIDE = 1280
INSTALL_HINT = "reading scans and photos needs the OCR packages: pip install 'extractor[ocr]' (or scripts/setup.sh)"


@functools.cache  # asked for every PDF and image of a run: the installed packages do not change meanwhile
def engine_id() -> str | None:
    """The OCR engine, its models' runtime and this pipeline's version, as the cache key records them; None
    when the OCR packages are not installed. Cheap: package metadata only, no import."""
    try:
        return (f"rapidocr {metadata.version('rapidocr')}; onnxruntime {metadata.version('onnxruntime')}; "
                f"pipeline {PIPELINE}")
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _engine() -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise DocumentError(INSTALL_HINT, status="skipped") from None
    return RapidOCR(params={"Global.log_level": "error", "Global.max_side_len": MAX_SIDE, "Det.limit_type": "max",
                            "Det.limit_side_len": DETECT_SIDE})


@dataclass
class _Clock:
    """The document's OCR time budget: the parse time limit plus `ocr_page_timeout_s` a page."""

    options: ParseOptions
    pages: int
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def check(self, done: int) -> None:
        budget = self.options.parse_timeout_s + self.options.ocr_page_timeout_s * done
        elapsed = time.monotonic() - self.started
        if elapsed > budget:
            raise DocumentError(
                f"OCR stopped after {done} of {self.pages} page(s): {elapsed:.0f} s, above parse_timeout_s + "
                f"ocr_page_timeout_s a page ({budget:.0f} s); raise ocr_page_timeout_s if the pages are just "
                "large or the machine is busy")


def ocr_timeout(options: ParseOptions, pages: int) -> float:
    """The worker's kill time for a file with `pages` pages to read by OCR."""
    return options.parse_timeout_s + options.ocr_page_timeout_s * pages


# -- images -----------------------------------------------------------------------------------------------


def _pillow() -> Any:
    from PIL import Image

    # Explicit, whatever a library or the environment set: above this, Pillow raises instead of decoding.
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    return Image


def _check_pixels(width: int, height: int, what: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise DocumentError(
            f"{what} is {width:,} x {height:,} px ({width * height / 1e6:,.0f} MP), above the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP limit (a decompression-bomb guard); not decoded: scan it again at "
            "300 dpi or less")


def image_frames(raw: bytes, suffix: str, options: ParseOptions) -> Iterator[tuple[Any, int]]:
    """The pages of an image file (every frame of a TIFF), upright by their EXIF orientation, each checked
    against the pixel limit before it is decoded."""
    Image = _pillow()
    from PIL import ImageOps, UnidentifiedImageError

    kind = suffix.lstrip(".").upper() or "image"
    try:
        # Opening reads the header only; Pillow's own guard would refuse a bomb here with its pixel count alone,
        # so it waits for the check below, which names the size. Nothing is decoded before that check.
        Image.MAX_IMAGE_PIXELS = None
        try:
            image = Image.open(io.BytesIO(raw))
        finally:
            Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    except UnidentifiedImageError:
        raise DocumentError(f"not a readable {kind} image (damaged, or not an image at all)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DocumentError(f"{kind} image is above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit "
                            "(a decompression-bomb guard); not decoded") from None
    frames = getattr(image, "n_frames", 1)
    if frames > options.ocr_max_pages:
        raise DocumentError(f"{kind} has {frames} pages, above ocr_max_pages = {options.ocr_max_pages}; "
                            "split it or raise ocr_max_pages in the config file")
    for index in range(frames):
        try:
            image.seek(index)
            width, height = image.size
            _check_pixels(width, height, f"{kind} page {index + 1}" if frames > 1 else f"{kind} image")
            frame = ImageOps.exif_transpose(image)
            frame.load()
        except DocumentError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise DocumentError(f"{kind} image is damaged or truncated (page {index + 1}): {exc}") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DocumentError(f"{kind} image is above the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit "
                                "(a decompression-bomb guard); not decoded") from None
        yield frame, index


def read_image(raw: bytes, suffix: str, options: ParseOptions) -> list[ParsedPage]:
    """Every page of an image file, read by OCR."""
    if not options.ocr:
        raise DocumentError("OCR is off (ocr_max_pages = 0): images are not read", status="skipped")
    if engine_id() is None:  # a missing OCR package is a skipped row before any decoding
        raise DocumentError(INSTALL_HINT, status="skipped")
    Image = _pillow()
    try:
        frames = getattr(Image.open(io.BytesIO(raw)), "n_frames", 1)
    except Exception:
        frames = 1  # image_frames says what is wrong with it
    if options.defer_ocr:
        next(image_frames(raw, suffix, options), None)  # header, page count, pixels, decoding: checked first
        raise OcrNeeded(frames)
    clock = _Clock(options, frames)
    pages = []
    for frame, index in image_frames(raw, suffix, options):
        clock.check(index)
        pages.append(read_page(frame, index + 1))
    if not any(page.text.strip() for page in pages):
        raise DocumentError(f"OCR read no text in this {suffix.lstrip('.').upper()} image (a picture without "
                            "writing, or too blurred to read)", status="skipped")
    return pages


# -- PDFs ---------------------------------------------------------------------------------------------------


def render_pdf_page(raw: bytes, index: int, dpi: float = RENDER_DPI) -> Any:
    """One page of a PDF as a Pillow image at `dpi`, scaled down to stay within the pixel limit."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(raw)
    try:
        page = pdf[index]
        width, height = page.get_size()  # points
        scale = dpi / 72.0
        if width * height * scale * scale > MAX_IMAGE_PIXELS:
            scale = (MAX_IMAGE_PIXELS / (width * height)) ** 0.5
        # Rendered at `dpi` and scaled down to MAX_SIDE by Pillow (read_page), not rendered at the smaller size:
        # pdfium's own downscaling of a scanned page's image blurred the gaps between words, and the engine ran
        # words together ("AnnaSchmidt"; CER of a sample letter's image-only PDF 1.4%, its PNG 0.08%).
        return page.render(scale=scale).to_pil()
    finally:
        pdf.close()


def read_pdf_pages(raw: bytes, indexes: list[int], total: int, options: ParseOptions) -> dict[int, ParsedPage]:
    """The pages of a PDF without a text layer (0-based `indexes`), rendered one at a time and read by OCR."""
    if not options.ocr:
        raise DocumentError(f"PDF has {len(indexes)} page(s) without a text layer and OCR is off", status="skipped")
    if len(indexes) > options.ocr_max_pages:
        raise DocumentError(
            f"PDF has {len(indexes)} of {total} page(s) without a text layer, above ocr_max_pages = "
            f"{options.ocr_max_pages} (OCR takes a few seconds a page); split the file or raise ocr_max_pages "
            "in the config file")
    if engine_id() is None:
        raise DocumentError(INSTALL_HINT, status="skipped")
    if options.defer_ocr:  # the models are loaded only by the pass that reads
        raise OcrNeeded(len(indexes))
    clock = _Clock(options, len(indexes))
    out: dict[int, ParsedPage] = {}
    for done, index in enumerate(indexes):
        clock.check(done)
        out[index] = read_page(render_pdf_page(raw, index), index + 1)
    return out


# -- one page -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One detected text segment in page pixels."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    score: float
    # The middle of the line's left edge: where reading starts. On a skewed photo a long line's box rises or
    # falls by more than a line across the page, so its centre would order it among its neighbours wrongly.
    left_y: float | None = None
    left_h: float | None = None
    right_y: float | None = None  # the middle of the right edge: with left_y, the slope of a skewed line

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def row_y(self) -> float:
        return self.left_y if self.left_y is not None else self.cy

    @property
    def row_h(self) -> float:
        return self.left_h if self.left_h is not None else self.height

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


def read_page(image: Any, number: int) -> ParsedPage:
    """One page image read by OCR: upright, in reading order, a box per detected line.

    Most pages stand upright, so a page is read as it is first; only when that reading looks like a turned page
    (most lines taller than wide, or a median line confidence under SUSPECT_SCORE, which is what text upside down
    reads as) does the orientation probe run, and the page is read again only if the probe turns it."""
    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    rotation = 0
    lines = _read(image)
    if _suspect(lines):
        rotation = orientation(image)
        if rotation:
            image = image.rotate(-rotation, expand=True)  # PIL turns counter-clockwise
            lines = _read(image)
    width, height = image.size
    text, boxes = layout_text(lines, width, height, number)
    return ParsedPage(text, PageInfo(number, width, height, ocr=True, rotation=rotation), boxes)


SUSPECT_SCORE = 0.8  # median line confidence: upright letters read at 0.95-0.99, upside-down ones far lower


def _suspect(lines: list[_Line]) -> bool:
    """Whether a reading looks like a page on its side or head: mostly tall lines, or mostly unsure ones."""
    if not lines:
        return True  # nothing read: perhaps turned lines the detector missed; the probe says
    tall = sum(line.height > 1.5 * (line.x1 - line.x0) for line in lines)
    return tall * 2 > len(lines) or statistics.median(line.score for line in lines) < SUSPECT_SCORE


def _read(image: Any) -> list[_Line]:
    """The engine's lines of an upright page image, in page pixels."""
    import numpy as np

    width, height = image.size
    # Every flag each call: rapidocr keeps the flags of the previous call (the probe's) as its new defaults.
    # No line-direction classifier here: the page already stands upright, and the classifier turned single
    # lines of upright letters on their heads (a 78-character line of a sample letter came out "Dos n -n n n s
    # n icn"; CER of that page 5.2% with it, 0.08% without), and it costs ~8% of the page's time.
    result = _engine()(np.asarray(image), use_det=True, use_cls=False, use_rec=True)
    lines = []
    for quad, text, score in zip(result.boxes if result.boxes is not None else [], result.txts or (),
                                 result.scores or (), strict=False):
        text = " ".join(str(text).split())
        if not text:
            continue
        xs, ys = [float(p[0]) for p in quad], [float(p[1]) for p in quad]
        # rapidocr's quads run top-left, top-right, bottom-right, bottom-left
        left_y, left_h, right_y = (ys[0] + ys[3]) / 2, abs(ys[3] - ys[0]), (ys[1] + ys[2]) / 2
        lines.append(_Line(max(0.0, min(xs)), max(0.0, min(ys)), min(float(width), max(xs)),
                           min(float(height), max(ys)), text, float(score), left_y, left_h or None, right_y))
    return lines


def orientation(image: Any) -> int:
    """Degrees (0, 90, 180, 270) to turn a page clockwise so that its text stands upright.

    Lines taller than wide mean the page lies on its side; then the line-direction classifier, run on the widest
    lines of the page turned a quarter, says whether it is upside down. Costs a detection on a 1024 px copy and a
    classification of at most 16 lines (measured in bench/ocr.py)."""
    import numpy as np

    small = image.copy()
    small.thumbnail((PROBE_SIDE, PROBE_SIDE))
    engine = _engine()
    found = engine(np.asarray(small), use_det=True, use_cls=False, use_rec=False)
    quads = list(found.boxes) if getattr(found, "boxes", None) is not None else []
    if not quads:
        return 0
    spans = [(float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())) for q in quads]
    tall = sum((y1 - y0) > 1.5 * (x1 - x0) for x0, y0, x1, y1 in spans)
    wide = sum((x1 - x0) > 1.5 * (y1 - y0) for x0, y0, x1, y1 in spans)
    turn = 90 if tall > wide else 0
    longest = sorted(spans, key=lambda s: max(s[2] - s[0], s[3] - s[1]), reverse=True)[:16]
    upside_down = 0
    for x0, y0, x1, y1 in longest:
        crop = small.crop((int(x0), int(y0), int(x1) + 1, int(y1) + 1))
        if turn:
            crop = crop.rotate(-90, expand=True)
        verdict = engine(np.asarray(crop), use_det=False, use_cls=True, use_rec=False)
        labels = getattr(verdict, "cls_res", None) or []
        upside_down += sum(1 for label, _ in labels if str(label) == "180")
    return (turn + (180 if upside_down * 2 > len(longest) else 0)) % 360


# -- reading order ------------------------------------------------------------------------------------------


def layout_text(lines: list[_Line], width: int, height: int, page: int) -> tuple[str, tuple[Box, ...]]:
    """The page's text in reading order (blocks by an XY cut, a blank line between them) and a box per line
    segment, its offsets into that text and its bbox as fractions of the page.

    Within a block, a line that continues the paragraph of the line above it (`_continues`: a wrapped line of
    prose) follows it after a space instead of a line break, so that a name or a phrase cut by the page's margin
    reads whole ("role at Lion\nCity Commerce Pte. Ltd." is one line in the text version). Each line keeps its own
    box: a value quoted across the join has the union of its lines' boxes (values.evidence.Grounder.located)."""
    if not lines:
        return "", ()
    unit = statistics.median(line.row_h for line in lines) or 1.0
    slope = _slope(lines)
    parts: list[str] = []
    boxes: list[Box] = []
    position = 0
    for block, column in _cut(lines, unit, slope):
        if parts:
            parts.append("\n\n")
            position += 2
        margin = (min(_u(line, slope) for line in column), max(_u(line, slope, right=True) for line in column))
        rows = _rows(block)
        for r, row in enumerate(rows):
            if r:
                joint = _joint(rows[r - 1], row, margin, slope, unit)
                parts.append(joint)
                position += len(joint)
            for s, segment in enumerate(row):
                if s:
                    parts.append(" ")
                    position += 1
                parts.append(segment.text)
                bbox = (round(segment.x0 / width, 5), round(segment.y0 / height, 5), round(segment.x1 / width, 5),
                        round(segment.y1 / height, 5))
                boxes.append(Box(position, position + len(segment.text), page, bbox, round(segment.score, 4)))
                position += len(segment.text)
    return "".join(parts), tuple(boxes)


def _slope(lines: list[_Line]) -> float:
    """The page's skew as the rise of its lines across (dy/dx; 0 on an upright scan, ~0.05 on a photo taken at
    3 degrees): the median over the lines at least 4 line heights long, from their boxes' left and right edges."""
    slopes = [(line.right_y - line.left_y) / (line.x1 - line.x0) for line in lines
              if line.left_y is not None and line.right_y is not None and line.x1 - line.x0 > 4 * line.row_h]
    return statistics.median(slopes) if slopes else 0.0


def _u(line: _Line, slope: float, right: bool = False) -> float:
    """Where a line starts (or ends) across the page, measured along the page's skewed lines: on a photo taken at
    an angle the left margin drifts sideways down the page; the lines of one paragraph still start at one u."""
    if right:
        return line.x1 + slope * (line.right_y if line.right_y is not None else line.cy)
    return line.x0 + slope * line.row_y


# A wrapped line ends where the next word did not fit: its gap to the column's right margin is less than that word
# and a space. Up to 4 characters more: text wrapped by character count (a plain-text e-mail or a typewritten page,
# 72-78 characters a line) and set in a proportional font ends up to a few characters short of the widest line.
WRAP_SLACK_CHARS = 4
# A new list item or heading, not a continuation: a bullet, "1." / "12)" / "a)" / "(iv)", or a plain-text heading's
# "#", before a space. At most two digits: "(416) 555-0142" is a phone number wrapped after its "+1".
_ITEM = re.compile(r"^(?:#{1,6}|[\u2022\u00b7\u25aa\u25cf\u25e6\u2023\u2219*\u2013\u2014-]"
                   r"|\(?(?:\d{1,2}|[A-Za-z]|[ivxIVX]{1,4})[.)])\s")


# The last word of a sentence: a full stop, question or exclamation mark (a closing quote or bracket after it) ending a
# word that is not an abbreviation: a capital and at most two more letters ("Dr.", "Ltd.", "Pte.", "Inc.") or a word
# with a full stop inside it ("s.r.o.", "e.g.", "z.B.").
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*$")
_ABBREVIATION = re.compile(r"(?:^|\s)(?:[A-Z][a-z]{0,2}|\w+\.\w[\w.]*)\.$")


def _ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text)) and not (text.endswith(".") and _ABBREVIATION.search(text))


def _joint(above: list[_Line], row: list[_Line], margin: tuple[float, float], slope: float, unit: float) -> str:
    """What separates two consecutive rows of one block: " " where `row` continues the paragraph of `above`
    (`_continues`), nothing after a word broken at a hyphen ("well-" + "known"), else a line break."""
    if not _continues(above, row, margin, slope, unit):
        return "\n"
    last, first = above[-1].text, row[0].text
    return "" if len(last) > 1 and last[-1] == "-" and last[-2].isalpha() and first[:1].islower() else " "


def _continues(above: list[_Line], row: list[_Line], margin: tuple[float, float], slope: float, unit: float) -> bool:
    """Whether `row` is the wrapped continuation of `above`, by geometry: both rows plain lines of text (no gap
    wider than 1.5 line heights inside them: a table or form row stays a row); the same type size (heights within
    a third); the next line down (its pitch at most two line heights); `row` starting at the left edge of `above`
    (or left of it, when `above` is an indented first line); and `above` filling its column (at least 60% of the
    column's width and 10 line heights) to within the next word of the column's right margin, so that the word
    went down because it did not fit. Short lines (an address, a greeting, a sign-off, a heading, a paragraph's
    last line) therefore stay lines. Three signs in the text itself keep a line break: a line ending in a colon
    (a lead-in), a row starting with a list marker (a new item), and a line ending a sentence (`_ends_sentence`:
    not an abbreviation such as "Pte." or "s.r.o.") above a row that does not start in lower case, since a
    paragraph may end on a full line with the next one right below it (on the sample letters' scans every false
    join was one; a wrapped line that ends a sentence costs only a line break between two sentences)."""
    for line in (above, row):
        if any(_u(b, slope) - _u(a, slope, right=True) > 1.5 * unit for a, b in itertools.pairwise(line)):
            return False
    high, low = statistics.median(x.row_h for x in above), statistics.median(x.row_h for x in row)
    if not 0.75 <= low / max(high, 1.0) <= 1.0 / 0.75:
        return False
    pitch = (row[0].row_y - slope * row[0].x0) - (above[0].row_y - slope * above[0].x0)
    if not 0 < pitch <= 2 * max(high, low):
        return False
    start, end, begins = _u(above[0], slope), _u(above[-1], slope, right=True), _u(row[0], slope)
    if not -6 * unit <= begins - start <= 0.75 * unit:
        return False
    left, right = margin
    filled = end - start
    if filled < 0.6 * (right - left) or filled < 10 * high:
        return False
    text_above, text_row = " ".join(x.text for x in above), " ".join(x.text for x in row)
    if text_above.endswith(":") or _ITEM.match(text_row) or (_ends_sentence(text_above) and not text_row[:1].islower()):
        return False
    width = filled + (_u(row[-1], slope, right=True) - begins)
    char = width / max(len(text_above) + len(text_row), 1)
    word = len(text_row.split()[0]) if text_row.split() else 0
    return right - end <= (word + 1 + WRAP_SLACK_CHARS) * char


def _rows(block: list[_Line]) -> list[list[_Line]]:
    """Lines of one block: segments whose vertical centres are within half a line of each other, left to right."""
    rows: list[list[_Line]] = []
    for line in sorted(block, key=lambda item: item.row_y):
        if rows and abs(line.row_y - statistics.fmean(x.row_y for x in rows[-1])) < 0.5 * max(line.row_h, 1.0):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [sorted(row, key=lambda item: item.x0) for row in rows]


def _gaps(spans: list[tuple[float, float]], least: float) -> list[float]:
    """Where a projection of intervals has empty stretches at least `least` long: the middle of each."""
    cuts = []
    spans = sorted(spans)
    reach = spans[0][1]
    for lo, hi in spans[1:]:
        if lo - reach >= least:
            cuts.append((reach + lo) / 2)
        reach = max(reach, hi)
    return cuts


def _cut(lines: list[_Line], unit: float, slope: float = 0.0, depth: int = 0,
         column: list[_Line] | None = None) -> list[tuple[list[_Line], list[_Line]]]:
    """Blocks in reading order, each with the lines of the column it stands in (whose right edge is the margin a
    wrapped line reaches): columns (a vertical gutter at least 1.5 lines wide, whose two sides are not rows of
    one table) left to right, then paragraphs (a vertical gap of more than 0.8 of a line, measured across the
    page's skew: on a photo taken at an angle the boxes of long lines overlap in height, the lines do not)
    top to bottom, recursively."""
    column = lines if column is None else column
    if len(lines) < 2 or depth > 12:
        return [(lines, column)]
    for x in _gaps([(line.x0, line.x1) for line in lines], 1.5 * unit):
        left = [line for line in lines if line.x1 <= x]
        right = [line for line in lines if line.x0 >= x]
        if _columns(left, right, unit):
            return _cut(left, unit, slope, depth + 1, left) + _cut(right, unit, slope, depth + 1, right)
    cuts = _gaps([_band(line, slope) for line in lines], 0.8 * unit)
    if not cuts:
        return [(lines, column)]
    bands: list[list[_Line]] = [[] for _ in range(len(cuts) + 1)]
    for line in lines:
        bands[sum(sum(_band(line, slope)) / 2 > y for y in cuts)].append(line)
    return [block for band in bands if band for block in _cut(band, unit, slope, depth + 1, column)]


def _band(line: _Line, slope: float) -> tuple[float, float]:
    """A line's top and bottom measured across the page's skew: its height about the middle of its left edge,
    moved back by the rise of the page's lines at that distance from the page's left edge."""
    middle = line.row_y - slope * line.x0
    return middle - line.row_h / 2, middle + line.row_h / 2


def _columns(left: list[_Line], right: list[_Line], unit: float) -> bool:
    """Two sides of a gutter are columns of text, not the cells of table rows ("Total" ... "120.00"): at least
    two lines on each side, and either a narrow gutter (under 4 lines' height: columns of prose set side by
    side, whose lines may well stand at the same heights) or most lines of the shorter side without a partner
    at the same height (a wide gap between label and value, row by row, is a table or a form)."""
    if len(_rows(left)) < 2 or len(_rows(right)) < 2:
        return False
    if min(line.x0 for line in right) - max(line.x1 for line in left) < 4 * unit:
        return True
    fewer, other = (left, right) if len(left) <= len(right) else (right, left)
    paired = sum(any(abs(a.cy - b.cy) < 0.5 * unit for b in other) for a in fewer)
    return paired <= len(fewer) / 2


# -- what the review page shows -----------------------------------------------------------------------------


def may_need_ocr(path: Any) -> bool:
    """Whether a file may be read by OCR, from its name alone: an image, a PDF, or no extension (sniffed)."""
    suffix = str(getattr(path, "suffix", "")).lower()
    return suffix in (".pdf", "", *IMAGE_SUFFIXES)


def page_image(raw: bytes, suffix: str, page: int, rotation: int = 0, max_side: int = 900) -> bytes:
    """One page as the OCR read it (upright), scaled down to `max_side` pixels, as JPEG bytes: for the review
    page, which embeds it (no network). The boxes' fractions apply to it as they do to the page read."""
    return page_picture(raw, suffix, page, rotation, max_side)[0]


# A page image sent to a model that reads images (`pages = "images" | "both"`): 1600 px on its long side is a
# letter page at 145 dpi, where 11 pt text is ~22 px high (OpenAI scales a page to 768 px on its short side anyway:
# 4 tiles, 765 tokens on gpt-4o; a self-hosted model that reads at full size sees it sharp). JPEG at quality 85:
# ~250 KB a page, under every provider's per-image limit (OpenAI: 20 MB).
MODEL_SIDE = 1600
MODEL_DPI = 150
MODEL_QUALITY = 85


def page_picture(raw: bytes, suffix: str, page: int, rotation: int = 0, max_side: int = 900,
                 dpi: float = 110, quality: int = 70) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of one page as the OCR read it (upright), at most `max_side` pixels on its long
    side; a PDF page rendered at `dpi` (at most RENDER_DPI). Bounded like the OCR: an image is checked against
    MAX_IMAGE_PIXELS from its header before it is decoded, a PDF page rendered within it."""
    if suffix.lower() == ".pdf":
        image = render_pdf_page(raw, page - 1, dpi=min(RENDER_DPI, dpi))
    else:
        frames = image_frames(raw, suffix, ParseOptions(ocr_max_pages=10_000))
        image = next((frame for frame, index in frames if index == page - 1), None)
        if image is None:
            raise DocumentError(f"the image has no page {page}")
    image = image.convert("RGB")
    if rotation:
        image = image.rotate(-rotation, expand=True)
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue(), image.width, image.height
