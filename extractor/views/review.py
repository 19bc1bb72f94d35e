"""`extractor review`: one self-contained HTML page to check extracted values against their documents.

For every document of the latest results (those that need review first) the page shows the text the model
saw, with each value that has evidence highlighted where it was found (`<mark data-field=... data-status=...>`),
the values nothing in the document supports (`class="not-found"`), and the document's status, grounded share
and pages. Texts are read again from each result's `source_path`, or from `archive_dir` when `run --archive`
moved the input; a file that is gone or whose bytes changed since it was extracted is listed with its values
but without text, and the page says why.

A page read by OCR (a scan, a photo) is shown as its image beside the text, scaled down and embedded as a data
URI, with a box drawn where each value was read (`<div class="box" data-field=...>`, placed by the evidence's
bbox, fractions of the page).

The page opens from disk with no network: inline CSS, one small inline script for filtering by field,
status and review flag (allowed by its hash in the page's Content-Security-Policy; without it every value
is simply shown), no URL. Documents are untrusted: every piece of their text is escaped.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import glob
import hashlib
import html
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from extractor.config import RunConfig
from extractor.documents import DocumentReader, PageInfo, SourceFile, content_sha256, page_image
from extractor.errors import DocumentError
from extractor.formatting import pct
from extractor.quality.calibration import ConfidenceVerdict, read_verdict
from extractor.schemas import META_COLUMNS
from extractor.store import read_set, write_atomic_bytes
from extractor.values.evidence import STATUSES, Evidence

READERS = 4  # documents read at once (PDF, docx and HTML are parsed in worker processes)
SCAN_PAGES = 6  # OCR'd pages shown as images per document: those with values first (each ~60-120 kB embedded)
SCAN_SIDE = 900  # pixels on the long side of an embedded page image


@dataclass(frozen=True)
class ReviewConfig:
    """`extractor review`: the invocation's settings (schema, folders, archive_dir, parse_timeout_s) and where
    the page goes."""

    settings: RunConfig
    out: Path | None = None  # None: the layout's review.html

    @property
    def review_path(self) -> Path:
        return self.out if self.out is not None else self.settings.layout.review




@dataclass
class DocReview:
    """One document of the page: its latest result, its values, and its text when it can still be read."""

    doc_id: str
    status: str
    grounded: float | None
    needs_review: bool
    values: list[Evidence]
    source_path: str | None
    content_sha256: str | None
    error: str | None = None  # failed or skipped rows: why
    model: str | None = None
    extracted_at: str | None = None
    text: str | None = None
    pages: tuple[int, ...] | None = None
    read_from: Path | None = None  # where the text was read (the source, or the archive)
    no_text: str | None = None  # why the text is not shown
    flags: list[str] = field(default_factory=list)  # review_flags: a schema's broken checks, unread table cells
    empty: list[str] = field(default_factory=list)  # fields the result gives no value (`company`, `salary.max`)
    unjudged: bool = False  # eval found the confidence of this document's model uninformative: no green badge
    # Pages read by OCR: page -> (its image as a data URI, how it was read), for the page images with boxes.
    scans: dict[int, tuple[str, PageInfo]] = field(default_factory=dict)

    @property
    def not_found(self) -> list[Evidence]:
        return [v for v in self.values if v.status == "not_found"]

    @property
    def unplaced(self) -> list[Evidence]:
        """Values with a quote whose offsets no longer fit the text (it reads differently now)."""
        if self.text is None:
            return []
        return [v for v in self.values if v.quote is not None and not v.fits(self.text)]

    @property
    def order(self) -> tuple[int, float, str]:
        """Needs review first (least grounded first), then the other ok documents, then failed and skipped."""
        rank = 0 if self.needs_review else 1 if self.status == "ok" else 2
        return rank, self.grounded if self.grounded is not None else 1.0, self.doc_id


@dataclass
class ReviewData:
    schema_name: str
    results_path: Path
    threshold: float
    generated_at: str
    documents: list[DocReview] = field(default_factory=list)
    evidence_missing: bool = False  # no evidence.parquet: results from before evidence
    columns: list[str] = field(default_factory=list)  # of results.parquet: the schema's fields in its order
    confidence: ConfidenceVerdict | None = None  # the newest eval found confidence uninformative for its model

    @property
    def groups(self) -> list[str]:
        """Fields with values (`skills`, `salary.min`), in the schema's order."""
        seen = list(dict.fromkeys(v.group for d in self.documents for v in d.values))
        position = {name: i for i, name in enumerate(self.columns)}
        return sorted(seen, key=lambda g: (position.get(g.split(".")[0], len(position)), seen.index(g)))


# -- gathering ---------------------------------------------------------------------------------------------


def build_review(config: ReviewConfig) -> ReviewData:
    """Latest results and their evidence, with each ok document's text read again (see the module docstring)."""
    layout = config.settings.layout
    outputs = read_set(layout, children=False)  # results and their evidence of one checkpoint
    results = outputs.results
    evidence: dict[str, list[Evidence]] = {}
    for item in outputs.evidence.to_dicts() if outputs.evidence is not None else []:
        evidence.setdefault(item["doc_id"], []).append(Evidence.from_row(item))
    data = ReviewData(schema_name=config.settings.schema, results_path=layout.results,
                      threshold=config.settings.review_threshold,
                      generated_at=_when(dt.datetime.now(dt.UTC)) or "",
                      evidence_missing=outputs.evidence is None, columns=results.columns)
    for row in results.to_dicts():
        status = str(row.get("status"))
        error = ": ".join(str(p) for p in (row.get("error_type"), row.get("error_message")) if p) or None
        extracted = row.get("extracted_at")
        data.documents.append(DocReview(
            doc_id=row["doc_id"], status=status, grounded=row.get("grounded"),
            needs_review=bool(row.get("needs_review")), values=evidence.get(row["doc_id"], []),
            source_path=row.get("source_path"), content_sha256=row.get("content_sha256"), error=error,
            model=row.get("model"), extracted_at=_when(extracted),
            empty=_empty_fields(row) if status == "ok" else [], flags=list(row.get("review_flags") or [])))
    verdict = read_verdict(layout.calibration)
    if verdict is not None and verdict.uninformative:
        judged = set(verdict.model.split(","))
        for doc in data.documents:
            doc.unjudged = doc.status == "ok" and doc.model in judged
        data.confidence = verdict if any(d.unjudged for d in data.documents) else None
    data.documents.sort(key=lambda d: d.order)
    asyncio.run(_read_texts([d for d in data.documents if d.status == "ok"], config.settings))
    return data


def _empty_fields(row: dict[str, object]) -> list[str]:
    """The schema fields of a result row without a value, nested ones as `salary.max`: a reviewer checks that
    the document really has none (a value the model missed shows nowhere else)."""
    out: list[str] = []
    for name, value in row.items():
        if name in META_COLUMNS:
            continue
        if isinstance(value, dict):
            out += [f"{name}.{sub}" for sub, inner in value.items() if inner in (None, "", [])]
        elif value in (None, "", []):
            out.append(name)
    return out


def _when(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def _read_texts(docs: Sequence[DocReview], settings: RunConfig) -> None:
    # Unlimited length: the result was accepted under the max_chars of its run, whatever it is today.
    reader = DocumentReader(max_chars=sys.maxsize, timeout_s=settings.parse_timeout_s,
                            ocr_max_pages=settings.ocr_max_pages, ocr_page_timeout_s=settings.ocr_page_timeout_s)
    gate = asyncio.Semaphore(READERS)

    async def one(doc: DocReview) -> None:
        async with gate:
            await read_text_again(doc, reader, settings.archive_dir)

    try:
        await asyncio.gather(*(one(d) for d in docs))
    finally:
        reader.close()


def candidates(doc_id: str, source_path: str | None, archive_dir: Path | None) -> list[Path]:
    """Where the bytes of a result may be now: its source, else where `run --archive` moved it (renamed
    `<stem>.<run_id><suffix>` when the archive already had that name)."""
    paths = [Path(source_path)] if source_path else []
    if archive_dir is not None:
        target = archive_dir / doc_id
        paths.append(target)
        if target.parent.is_dir():
            pattern = f"{glob.escape(target.stem)}.*{glob.escape(target.suffix)}"
            paths.extend(sorted(target.parent.glob(pattern)))
    return list(dict.fromkeys(paths))


async def read_text_again(doc: DocReview, reader: DocumentReader, archive_dir: Path | None) -> None:
    """Set `doc.text` and `doc.pages` from the bytes it was extracted from (its source, else the archive), or
    `doc.no_text` to why they cannot be shown (gone, changed since, unreadable)."""
    found: Path | None = None
    existing: list[Path] = []
    for path in candidates(doc.doc_id, doc.source_path, archive_dir):
        if not path.is_file():
            continue
        try:
            same = doc.content_sha256 is None or await asyncio.to_thread(
                content_sha256, SourceFile.of(path, doc.doc_id)) == doc.content_sha256
        except (OSError, DocumentError) as exc:
            doc.no_text = f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
            continue
        existing.append(path)
        if same:
            found = path
            break
    if found is None:
        if doc.no_text and not existing:
            return
        if existing:
            doc.no_text = (f"{existing[0]} has changed since it was extracted (its bytes differ), so the values "
                           "cannot be placed in its text")
        else:
            where = f" nor in the archive {archive_dir}" if archive_dir is not None else ""
            doc.no_text = f"source file missing: {doc.source_path} does not exist{where}"
        return
    try:
        read = await reader.read(SourceFile.of(found, doc.doc_id))
    except DocumentError as exc:
        doc.no_text = f"cannot read {found} again: {exc}"
        return
    doc.text, doc.pages, doc.read_from, doc.no_text = read.text, read.pages, found, None
    if read.ocr is not None:
        await asyncio.to_thread(_scan_images, doc, found, [info for info in read.page_info if info.ocr])


def _scan_images(doc: DocReview, path: Path, pages: Sequence[PageInfo]) -> None:
    """The OCR'd pages' images (those with values first, at most SCAN_PAGES), scaled down, as data URIs."""
    with_values = {v.page for v in doc.values if v.bbox is not None}
    chosen = sorted(pages, key=lambda info: (info.page not in with_values, info.page))[:SCAN_PAGES]
    try:
        raw = path.read_bytes()
        for info in sorted(chosen, key=lambda info: info.page):
            jpeg = page_image(raw, path.suffix, info.page, info.rotation, SCAN_SIDE)
            doc.scans[info.page] = ("data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"), info)
    except (OSError, DocumentError) as exc:  # the text is shown all the same
        doc.scans.clear()
        doc.error = (doc.error + "; " if doc.error else "") + f"page images not shown: {exc}"


# -- the page ----------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _title(v: Evidence) -> str:
    confidence = f", {v.confidence:.2f}" if v.confidence is not None else ""
    page = f", page {v.page}" if v.page is not None else ""
    return f"{v.field} = {v.value} ({v.status}{confidence}{page})"


def _attrs(v: Evidence) -> str:
    return f'data-field="{_e(v.field)}" data-status="{_e(v.status)}"'


def highlight(text: str, values: Sequence[Evidence], pages: Sequence[int] | None = None) -> str:
    """`text`, escaped, with every value whose offsets fit it wrapped in `<mark>`, and a marker where each
    page starts.

    Spans may overlap (the same figure is `salary.min` and `salary.max`; a derived `seniority` lies inside
    `desired_role`). Marks are nested: a span starting inside an open one is opened inside it; where one
    ends inside another that started after it (they cross), the inner marks are closed with it and opened
    again right after, as continuations (`class="cont"`) of the same field. So every tag is closed in order
    and the HTML stays well-formed whatever the offsets are.
    """
    spans = sorted(((v.start, v.end, v) for v in values if v.start is not None and v.end is not None
                    and v.fits(text)), key=lambda span: (span[0], -span[1]))
    page_starts: dict[int, list[int]] = {}
    for n, start in enumerate(pages or (), start=1):
        if 0 <= start <= len(text):
            page_starts.setdefault(start, []).append(n)
    points = sorted({0, len(text), *page_starts, *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out: list[str] = []
    stack: list[tuple[int, Evidence]] = []  # (end, value) of the open marks, outermost first
    nxt = 0
    for i, here in enumerate(points):
        ending = [k for k, (end, _) in enumerate(stack) if end == here]
        if ending:  # close from the first span that ends here up, and reopen the ones that go on
            first = ending[0]
            out.append("</mark>" * (len(stack) - first))
            going_on = [(end, v) for end, v in stack[first:] if end != here]
            del stack[first:]
            for end, v in going_on:
                out.append(f'<mark class="cont" {_attrs(v)} title="{_e(_title(v))}">')
                stack.append((end, v))
        for n in page_starts.get(here, ()):
            out.append(f'<span class="pagebreak" data-page="{n}">page {n}</span>')
        while nxt < len(spans) and spans[nxt][0] == here:
            _, end, v = spans[nxt]
            out.append(f'<mark {_attrs(v)} title="{_e(_title(v))}">')
            stack.append((end, v))
            nxt += 1
        if i + 1 < len(points):
            out.append(html.escape(text[here:points[i + 1]], quote=False))
    out.append("</mark>" * len(stack))
    return "".join(out)


_STATUS_LABELS = {"exact": "exact", "normalized": "normalized", "fuzzy": "fuzzy", "derived": "derived",
                  "not_found": "not found"}

_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f3f4f6;--card:#fff;--accent:#2563eb;--warn:#b91c1c;
 --exact:rgba(22,163,74,.25);--normalized:rgba(37,99,235,.22);--fuzzy:rgba(217,119,6,.35);
 --derived:rgba(147,51,234,.2);--not_found:#fee2e2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1060px;margin:0 auto;padding:20px 24px 40px}
h1{margin:0 0 4px;font-size:26px}
h2{font-size:18px;margin:0 0 6px;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
h3{font-size:14px;margin:10px 0 4px}
.meta{color:var(--muted);margin:0;font-size:14px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 20px;margin:14px 0}
section.review{border-left:5px solid var(--warn)}
.id{font-family:ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
.badge{font-size:12px;font-weight:600;border-radius:10px;padding:1px 9px;white-space:nowrap}
.badge.review{background:#fee2e2;color:var(--warn)}
.badge.fine{background:#dcfce7;color:#166534}
.badge.other{background:var(--bg);color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:#374151}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
a{color:var(--accent);text-decoration:none}
.doctext{white-space:pre-wrap;overflow-wrap:anywhere;font:14px/1.6 ui-monospace,"DejaVu Sans Mono",monospace;
 background:#fafafa;border:1px solid var(--line);border-radius:6px;padding:10px 14px;max-height:36em;overflow:auto}
mark{color:inherit;border-radius:2px;border-bottom:2px solid transparent;padding:1px 0}
mark[data-status=exact]{background:var(--exact);border-bottom-color:#16a34a}
mark[data-status=normalized]{background:var(--normalized);border-bottom-color:#2563eb}
mark[data-status=fuzzy]{background:var(--fuzzy);border-bottom-color:#d97706}
mark[data-status=derived]{background:var(--derived);border-bottom-color:#9333ea}
mark.off{background:none;border-bottom-color:transparent}
.ocr{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px;align-items:start}
.scans{display:flex;flex-direction:column;gap:10px;max-height:48em;overflow:auto}
figure.scan{margin:0}
figure.scan figcaption{color:var(--muted);font-size:12px}
.scanpage{position:relative;border:1px solid var(--line);line-height:0}
.scanpage img{width:100%;height:auto}
.box{position:absolute;border:2px solid #16a34a;background:rgba(22,163,74,.12);border-radius:2px}
.box[data-status=normalized]{border-color:#2563eb;background:rgba(37,99,235,.12)}
.box[data-status=fuzzy]{border-color:#d97706;background:rgba(217,119,6,.15)}
.box[data-status=derived]{border-color:#9333ea;background:rgba(147,51,234,.12)}
.box.off{display:none}
.pagebreak{display:block;color:var(--muted);font:12px system-ui,sans-serif;border-top:1px dashed #cbd5e1;
 margin:6px 0 2px;padding-top:2px}
.pagebreak:first-child{border-top:0;margin-top:0}
ul.values{margin:4px 0;padding-left:20px;font-size:14px}
li.not-found{color:var(--warn)}
li.not-found code,li.unplaced code{color:var(--fg)}
li.off,tr.off,section.off{display:none}
.legend span{margin-right:10px;font-size:13px;padding:1px 6px;border-radius:3px}
.legend .exact{background:var(--exact)}.legend .normalized{background:var(--normalized)}
.legend .fuzzy{background:var(--fuzzy)}.legend .derived{background:var(--derived)}
.legend .not_found{background:var(--not_found);color:var(--warn)}
.why{color:var(--warn);font-style:italic}
.empty{color:var(--muted);font-style:italic}
form{font-size:14px;margin:10px 0 0;display:flex;gap:14px;flex-wrap:wrap;align-items:center}
details summary{cursor:pointer;color:var(--muted);font-size:13px;margin-top:6px}
@media print{body{background:#fff}form{display:none}.doctext{max-height:none}}
"""

# Filters by field, status and review flag; the page is complete without it (everything shown).
_SCRIPT = """
(function () {
  var form = document.getElementById("filters");
  var each = function (selector, fn) { Array.prototype.forEach.call(document.querySelectorAll(selector), fn); };
  form.hidden = false;
  function apply() {
    var group = form.elements.field.value, only = form.elements.review.checked, shown = {};
    each("#filters input[name=status]", function (box) { shown[box.value] = box.checked; });
    each("main [data-field]", function (el) {
      var inGroup = !group || el.getAttribute("data-field").replace(/\\[\\d+\\]/g, "") === group;
      el.classList.toggle("off", !(inGroup && shown[el.getAttribute("data-status")]));
    });
    each("main [data-review]", function (el) {
      el.classList.toggle("off", only && el.getAttribute("data-review") !== "1");
    });
  }
  form.addEventListener("change", apply);
  apply();
})();
"""


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def _badge(doc: DocReview) -> str:
    if doc.needs_review:
        return '<span class="badge review">needs review</span>'
    if doc.status == "ok" and doc.unjudged:
        return '<span class="badge other" title="eval found this model\'s confidence uninformative">unverified</span>'
    if doc.status == "ok":
        return '<span class="badge fine">grounded</span>'
    return f'<span class="badge other">{_e(doc.status)}</span>'


def _counts(values: Sequence[Evidence]) -> str:
    counts = {s: sum(v.status == s for v in values) for s in STATUSES}
    parts = [f"{n} {_STATUS_LABELS[s]}" for s, n in counts.items() if n]
    return f"{len(values)} value(s): {', '.join(parts)}" if values else "no values"


def _grounded(doc: DocReview) -> str:
    copied = [v for v in doc.values if v.status != "derived"]
    found = sum(v.status != "not_found" for v in copied)
    share = pct(doc.grounded) if doc.grounded is not None else "-"
    return f"grounded {share} ({found} of {len(copied)} copied values found)" if copied else "no copied values"


def _pages(doc: DocReview) -> str:
    if not doc.pages:
        return ""
    on = sorted({v.page for v in doc.values if v.page is not None})
    where = f", values on page{'s' if len(on) > 1 else ''} {', '.join(map(str, on))}" if on else ""
    return f"{len(doc.pages)} page{'s' if len(doc.pages) > 1 else ''}{where}"


def _value_items(values: Sequence[Evidence], cls: str, note: str = "") -> str:
    items = "".join(f'<li class="{cls}" {_attrs(v)}><code>{_e(v.field)}</code> = {_e(v.value)}{note}</li>'
                    for v in values)
    return f'<ul class="values">{items}</ul>'


def _values_table(doc: DocReview) -> str:
    rows = []
    for v in doc.values:
        confidence = f"{v.confidence:.2f}" if v.confidence is not None else "-"
        quote = _e(v.quote[:200]) if v.quote is not None else '<span class="empty">none</span>'
        rows.append(f"<tr {_attrs(v)}><td><code>{_e(v.field)}</code></td><td>{_e(v.value)}</td>"
                    f"<td>{_e(_STATUS_LABELS.get(v.status, v.status))}</td><td class=\"num\">{confidence}</td>"
                    f"<td class=\"num\">{v.page if v.page is not None else ''}</td><td>{quote}</td></tr>")
    for name in doc.empty:
        rows.append(f'<tr class="no-value"><td><code>{_e(name)}</code></td><td><span class="empty">no value</span>'
                    "</td><td>-</td><td class=\"num\">-</td><td class=\"num\"></td><td></td></tr>")
    return ("<table><thead><tr><th>field</th><th>value</th><th>evidence</th><th class=\"num\">confidence</th>"
            "<th class=\"num\">page</th><th>quote</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _scans_html(doc: DocReview) -> str:
    """Each OCR'd page as its image, with a box where each value was read (bbox: fractions of the page)."""
    figures = []
    for page, (uri, info) in sorted(doc.scans.items()):
        boxes = []
        for v in doc.values:
            if v.bbox is None or v.page != page:
                continue
            x0, y0, x1, y1 = (min(1.0, max(0.0, c)) * 100 for c in v.bbox)
            boxes.append(f'<div class="box" {_attrs(v)} title="{_e(_title(v))}" style="left:{x0:.2f}%;'
                         f'top:{y0:.2f}%;width:{x1 - x0:.2f}%;height:{y1 - y0:.2f}%"></div>')
        turned = f", turned {info.rotation}° to read" if info.rotation else ""
        figures.append(f'<figure class="scan" data-page="{page}"><div class="scanpage"><img src="{uri}" '
                       f'alt="page {page} as read by OCR">{"".join(boxes)}</div><figcaption>page {page}, read by '
                       f"OCR{_e(turned)}; {len(boxes)} value(s) boxed</figcaption></figure>")
    return f'<div class="scans">{"".join(figures)}</div>'


def _doc_html(n: int, doc: DocReview) -> str:
    meta = [f"status {_e(doc.status)}"]
    if doc.status == "ok":
        meta += [_e(_grounded(doc)), _e(_counts(doc.values))]
    if pages := _pages(doc):
        meta.append(_e(pages))
    if doc.model:
        meta.append(f"{_e(doc.model)}, {_e(doc.extracted_at or '')}")
    body = [f'<section class="doc{" review" if doc.needs_review else ""}" id="doc-{n}" '
            f'data-review="{int(doc.needs_review)}">',
            f'<h2><span class="id">{_e(doc.doc_id)}</span>{_badge(doc)}</h2>',
            f'<p class="meta">{" · ".join(meta)}</p>']
    if doc.read_from is not None and str(doc.read_from) != doc.source_path:
        body.append(f'<p class="meta">read from <span class="id">{_e(doc.read_from)}</span> (archived)</p>')
    if doc.error:
        body.append(f'<p class="why">{_e(doc.error)}</p>')
    if doc.flags:
        body.append("<h3>Flagged for review</h3><ul class=\"flags\">"
                    + "".join(f"<li>{_e(flag)}</li>" for flag in doc.flags) + "</ul>")
    if doc.status == "ok" and not doc.values:
        body.append('<p class="empty">No evidence recorded for this result (it was extracted before evidence '
                    "existed, or it has no value).</p>")
    if doc.not_found:
        body.append("<h3>Not found in the document</h3>" + _value_items(doc.not_found, "not-found"))
    if unplaced := doc.unplaced:
        body.append("<h3>Quotes no longer at their offsets (the file reads differently now)</h3>"
                    + _value_items(unplaced, "unplaced"))
    if doc.text is not None and doc.scans:
        body.append(f'<div class="ocr">{_scans_html(doc)}'
                    f'<div class="doctext">{highlight(doc.text, doc.values, doc.pages)}</div></div>')
    elif doc.text is not None:
        body.append(f'<div class="doctext">{highlight(doc.text, doc.values, doc.pages)}</div>')
    elif doc.no_text:
        body.append(f'<p class="why">Text not shown: {_e(doc.no_text)}.</p>')
    if doc.empty:
        body.append(f'<p class="meta">No value given for {len(doc.empty)} field(s): '
                    f'{_e(", ".join(doc.empty))}</p>')
    if doc.values or doc.empty:
        opened = " open" if doc.text is None else ""
        summary = f"All {len(doc.values)} value(s)" + (f" and {len(doc.empty)} empty field(s)" if doc.empty else "")
        body.append(f"<details{opened}><summary>{summary}</summary>{_values_table(doc)}</details>")
    body.append("</section>")
    return "\n".join(body)


def _index_html(data: ReviewData) -> str:
    rows = []
    for n, doc in enumerate(data.documents, start=1):
        grounded = pct(doc.grounded) if doc.grounded is not None else "-"
        rows.append(f'<tr data-review="{int(doc.needs_review)}"><td><a href="#doc-{n}" class="id">{_e(doc.doc_id)}</a>'
                    f"</td><td>{_e(doc.status)}</td><td class=\"num\">{grounded}</td>"
                    f'<td class="num">{len(doc.not_found) or ""}</td><td>{_badge(doc)}</td></tr>')
    head = ('<th>document</th><th>status</th><th class="num">grounded</th><th class="num">not found</th>'
            "<th></th>")
    return f'<section id="index"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></section>'


def _filters_html(data: ReviewData) -> str:
    options = "".join(f'<option value="{_e(g)}">{_e(g)}</option>' for g in data.groups)
    boxes = "".join(f'<label><input type="checkbox" name="status" value="{s}" checked> {_STATUS_LABELS[s]}</label>'
                    for s in STATUSES)
    return (f'<form id="filters" hidden><label>field <select name="field"><option value="">all fields</option>'
            f'{options}</select></label>{boxes}<label><input type="checkbox" name="review"> only documents that '
            "need review</label></form>")


def render_review(data: ReviewData) -> str:
    """The whole page (inline CSS, one inline script allowed by its hash, no external resource)."""
    docs = data.documents
    review = sum(d.needs_review for d in docs)
    missing = sum(len(d.not_found) for d in docs)
    legend = "".join(f'<span class="{s}">{_STATUS_LABELS[s]}</span>' for s in STATUSES)
    summary = (f"{len(docs):,} document(s) · {review:,} need{'s' if review == 1 else ''} review · {missing:,} "
               f"value(s) not found in their document · a document needs review when a value is not found or its "
               f"confidence is below {data.threshold:g}")
    note = ('<p class="why">No evidence.parquet: these results predate evidence, so no value can be shown in '
            "its text.</p>") if data.evidence_missing else ""
    if data.confidence is not None:
        said = data.confidence.note()
        note += f'<p class="why" id="confidence">{_e(said[:1].upper() + said[1:])}.</p>'
    sections = [_doc_html(n, d) for n, d in enumerate(docs, start=1)]
    # img-src data: only the page images embedded in the page itself (scans read by OCR).
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '{_script_hash(_SCRIPT)}'")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Defence in depth: only the page's own filter script may run, and nothing is fetched.
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        f"<title>extractor review: {_e(data.schema_name)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<header><h1>Review: {_e(data.schema_name)}</h1>",
        f'<p class="meta">{summary}</p>',
        f'<p class="meta">results <span class="id">{_e(data.results_path)}</span> · generated '
        f"{_e(data.generated_at)}</p>",
        f'<p class="legend">{legend}</p>',
        _filters_html(data),
        "</header>",
        note,
        _index_html(data) if docs else '<p class="empty">No documents in the results.</p>',
        *sections,
        f"</main><script>{_SCRIPT}</script></body></html>",
        "",
    ])


def write_review(config: ReviewConfig) -> Path:
    """Build the review page and write it atomically; returns its path."""
    path = config.review_path
    write_atomic_bytes(path, render_review(build_review(config)).encode("utf-8"))
    return path
