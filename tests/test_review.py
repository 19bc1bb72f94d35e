"""`extractor review`: a real run over a text, a two-page PDF and an HTML page against the fake server, then the
review page: needs review first, values marked at their offsets, made-up values listed, text escaped, archived
and missing inputs, and the page rendered in headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import polars as pl
import pytest

from extractor.documents import read_text
from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.values.evidence import Evidence as Value
from extractor.views.review import ReviewConfig, build_review, highlight, write_review

from .conftest import ROOT, make_config, serving, settings, two_page_pdf, write_docs

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "scripts" / "screenshot_report.sh"

ADA = ("Dear hiring team,\n\nI am Ada Lovelace <script>alert(1)</script> & I apply for the Engineer role.\n"
       "I live in Berlin and work for Acme Germany GmbH. Skills: Python, Rust.\n"
       "Reach me at ada@lovelace.org. Salary 85,000 EUR per year.")
HTML_PAGE = ("<html><head><script>alert(2)</script></head><body><h1>Application</h1><p>My name is <b>Li Wei</b>, "
             "living in Shanghai, China. I'd like the QA Lead job at Foo &amp; Bar Ltd.</p></body></html>")
MADE_UP = "li.wei@made-up.cn"
ANSWERS = {
    "Ada Lovelace": {"applicant_name": "Ada Lovelace", "email": "ada@lovelace.org", "desired_role": "Engineer",
                     "location": "Berlin, Germany", "company": "Acme Germany GmbH", "skills": ["Python", "Rust"],
                     "salary": {"min": 85000, "max": 85000, "currency": "EUR", "period": "year"}},
    "Marta Kowalska": {"applicant_name": "Marta Kowalska", "email": "marta.k@example.org", "skills": ["SQL", "Tableau"],
                       "location": "Krakow, Poland", "company": "Orbital Freight"},
    "Li Wei": {"applicant_name": "Li Wei", "email": MADE_UP, "location": "Shanghai, China", "company": "Foo & Bar Ltd",
               "desired_role": "QA Lead"},
}


MARTA = two_page_pdf("I am Marta Kowalska from Krakow, Poland. I apply for the Data Analyst role.\n"
                     "Skills: SQL, Tableau.\nmarta.k@example.org")
DOCS: dict[str, str | bytes] = {"ada.txt": ADA, "marta.pdf": MARTA, "page.html": HTML_PAGE,
                                "refused.txt": "A letter the server always refuses [[fault:400*99]]"}


@dataclass
class Reviewed:
    tmp: Path
    config: ReviewConfig
    path: Path
    page: str


def _run(tmp_path: Path, **overrides: object) -> None:
    write_docs(tmp_path / "in", DOCS)
    with serving(answers=ANSWERS) as server:
        summary = runner.run(make_config(tmp_path, server, **overrides))
    assert (summary.ok, summary.failed) == (3, 1)


@pytest.fixture
def reviewed(tmp_path: Path) -> Reviewed:
    _run(tmp_path)
    config = ReviewConfig(settings=settings(tmp_path / "out"))
    path = write_review(config)
    return Reviewed(tmp_path, config, path, path.read_text(encoding="utf-8"))


def _sections(page: str) -> dict[str, str]:
    """doc_id -> its section's HTML, in page order."""
    found = re.findall(r'<section class="doc[^"]*"[^>]*>\n<h2><span class="id">(.*?)</span>(.*?)</section>', page,
                       re.DOTALL)
    return {html.unescape(doc_id): body for doc_id, body in found}


def _doctext(section: str) -> str | None:
    match = re.search(r'<div class="doctext">(.*?)</div>', section, re.DOTALL)
    return match.group(1) if match else None


def _plain(fragment: str) -> str:
    """The text a reader sees in a highlighted fragment, without the page markers."""
    fragment = re.sub(r'<span class="pagebreak"[^>]*>page \d+</span>', "", fragment)
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


class _Nesting(HTMLParser):
    """Fails on any end tag that does not close the innermost open element."""

    VOID: ClassVar[set[str]] = {"meta", "br", "input", "img", "hr", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)


def _check_nesting(fragment: str) -> _Nesting:
    parser = _Nesting()
    parser.feed(fragment)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert not parser.stack, f"left open: {parser.stack}"
    return parser


def test_review_page(reviewed: Reviewed) -> None:
    page, config = reviewed.page, reviewed.config
    assert reviewed.path == config.settings.layout.review == reviewed.tmp / "out" / "cover_letter" / "review.html"
    assert not list(reviewed.path.parent.glob(".review.html.*")), "written atomically"
    sections = _sections(page)
    assert list(sections) == ["page.html", "ada.txt", "marta.pdf", "refused.txt"], "needs review first, failed last"
    results = pl.read_parquet(config.settings.layout.results)
    flags = dict(zip(results["doc_id"], results["needs_review"], strict=True))
    assert flags == {"page.html": True, "ada.txt": False, "marta.pdf": False, "refused.txt": None}

    first = sections["page.html"]
    assert "needs review</span>" in first and "grounded 80% (4 of 5 copied values found)" in first
    assert re.search(r'<mark data-field="applicant_name" data-status="exact" '
                     r'title="applicant_name = Li Wei \(exact, 0\.95\)">Li Wei</mark>', first)
    assert re.search(r'<mark data-field="company"[^>]*>Foo &amp; Bar Ltd</mark>', first)
    assert (f'<li class="not-found" data-field="email" data-status="not_found"><code>email</code> = {MADE_UP}</li>'
            in first), "the made-up value is listed as not found"
    assert f">{MADE_UP}<" not in (_doctext(first) or ""), "and never marked in the text"

    pdf = sections["marta.pdf"]
    assert "2 pages, values on pages 1, 2" in pdf
    text = _doctext(pdf) or ""
    assert text.startswith('<span class="pagebreak" data-page="1">page 1</span>')
    page2 = text.index('<span class="pagebreak" data-page="2">page 2</span>')
    name = re.search(r'<mark data-field="applicant_name"[^>]*, page 2\)">Marta Kowalska</mark>', text)
    assert name and name.start() > page2, "the name is marked on page 2"
    assert re.search(r'<mark data-field="company"[^>]*, page 1\)">Orbital Freight</mark>', text)

    failed = sections["refused.txt"]
    assert "status failed" in failed and "BadRequestError" in failed and _doctext(failed) is None

    # Overlaps stay well-formed: salary.min and .max share "85,000" (nested); "Berlin ... Germany" (location)
    # and "Acme Germany GmbH" (company) cross, so company goes on as a continuation after location closes.
    ada = _doctext(sections["ada.txt"]) or ""
    assert re.search(r'<mark data-field="salary.min"[^>]*><mark data-field="salary.max"[^>]*>85,000</mark></mark>', ada)
    assert re.search(r'<mark data-field="location" data-status="normalized"[^>]*>Berlin and work for '
                     r'<mark data-field="company"[^>]*>Acme Germany</mark></mark>'
                     r'<mark class="cont" data-field="company"[^>]*> GmbH</mark>', ada)
    _check_nesting(page)

    # Every document's text is exactly the text the model saw, and every value with evidence is marked once.
    evidence = pl.read_parquet(config.settings.layout.evidence)
    for doc_id in ("page.html", "ada.txt", "marta.pdf"):
        doc = read_text(reviewed.tmp / "in" / doc_id, max_chars=200_000, timeout_s=60)
        shown = _doctext(sections[doc_id])
        assert shown is not None and _plain(shown) == doc.text, doc_id
        placed = evidence.filter((pl.col("doc_id") == doc_id) & pl.col("start").is_not_null())
        assert placed.height and len(re.findall(r"<mark data-field=", shown)) == placed.height, doc_id


def test_empty_fields_are_listed_so_a_missed_value_can_be_seen(reviewed: Reviewed) -> None:
    marta = _sections(reviewed.page)["marta.pdf"]
    # The model gave no desired role, though her letter names "the Data Analyst role".
    assert re.search(r"No value given for \d+ field\(s\): [^<]*\bdesired_role\b", marta)
    assert '<tr class="no-value"><td><code>desired_role</code></td>' in marta
    assert '<code>salary</code></td><td><span class="empty">no value' in marta, "no object at all: the field"
    ada = _sections(reviewed.page)["ada.txt"]
    assert "<code>desired_role</code></td><td><span class=\"empty\">no value" not in ada, "Ada's role was given"


def test_document_text_is_escaped_and_the_page_self_contained(reviewed: Reviewed) -> None:
    page = reviewed.page
    assert "I am <mark" in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; I apply" in page
    assert "alert(1)</script>" not in page and "<script>alert" not in page
    scripts = _check_nesting(page).scripts
    assert page.lower().count("<script") == 1 and len(scripts) == 1, "only the page's own filter script"
    assert "alert" not in scripts[0]
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page, "the CSP allows that script and no other"
    assert "default-src 'none'" in page
    assert not re.search(r"\b(?:src|href)\s*=\s*\"(?!#)", page), "no resource or link leaves the page"
    assert "http://" not in page and "https://" not in page and "url(" not in page and "@import" not in page
    assert 'id="filters" hidden' in page, "filters appear only when the script runs; without it all is shown"


def test_archived_changed_and_missing_inputs(tmp_path: Path) -> None:
    archive = tmp_path / "done"
    _run(tmp_path, archive_dir=archive)
    assert sorted(p.name for p in archive.iterdir()) == ["ada.txt", "marta.pdf", "page.html"]
    where = settings(tmp_path / "out", archive_dir=archive)
    sections = _sections(write_review(ReviewConfig(settings=where)).read_text(encoding="utf-8"))
    for doc_id in ("ada.txt", "marta.pdf", "page.html"):
        assert f"read from <span class=\"id\">{archive / doc_id}</span> (archived)" in sections[doc_id]
        assert "<mark data-field=" in (_doctext(sections[doc_id]) or ""), doc_id

    # Archived twice under one name: the run renamed the second <stem>.<run_id><suffix>; found by its bytes.
    (archive / "page.html").rename(archive / "page.20260101T000000.html")
    (archive / "page.html").write_text("<p>another page that took its name</p>", encoding="utf-8")
    (archive / "marta.pdf").unlink()
    with (archive / "ada.txt").open("a", encoding="utf-8") as fh:
        fh.write("\nP.S. edited after the run")
    out = tmp_path / "elsewhere" / "r.html"
    page = write_review(ReviewConfig(settings=where, out=out)).read_text(encoding="utf-8")
    assert out.is_file()
    _check_nesting(page)
    sections = _sections(page)
    assert "page.20260101T000000.html" in sections["page.html"] and _doctext(sections["page.html"])
    missing, changed = sections["marta.pdf"], sections["ada.txt"]
    assert _doctext(missing) is None and _doctext(changed) is None
    assert (f"Text not shown: source file missing: {tmp_path / 'in' / 'marta.pdf'} does not exist nor in the "
            f"archive {archive}.") in missing
    assert f"{archive / 'ada.txt'} has changed since it was extracted" in changed
    for section, value in ((missing, "Marta Kowalska"), (changed, "Ada Lovelace")):
        assert "<details open>" in section and f"<td>{value}</td>" in section, "the values are still listed"

    # Without the archive setting the inputs are simply gone.
    data = build_review(ReviewConfig(settings=settings(tmp_path / "out")))
    assert {d.doc_id: (d.no_text or "")[:19] for d in data.documents if d.status == "ok"} == dict.fromkeys(
        ["ada.txt", "marta.pdf", "page.html"], "source file missing")


@pytest.mark.integration
def test_cli_review(tmp_path: Path) -> None:
    _run(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    out = tmp_path / "review.html"
    done = subprocess.run([sys.executable, "-m", "extractor", "review", "--output", str(tmp_path / "out"),
                           "--schemas", str(ROOT / "schemas"), "--out", str(out)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out}" and "Li Wei</mark>" in out.read_text(encoding="utf-8")
    nothing = subprocess.run([sys.executable, "-m", "extractor", "review", "--output", str(tmp_path / "none")],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert nothing.returncode == 2 and "no results yet" in nothing.stderr


def test_no_results(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no results yet"):
        write_review(ReviewConfig(settings=settings(tmp_path / "none")))


def _v(field: str, text: str, start: int, end: int, status: str = "exact", quote: str | None = None) -> Value:
    return Value(field=field, value=text[start:end], quote=text[start:end] if quote is None else quote,
                 start=start, end=end, page=None, status=status, confidence=0.9)


def test_highlight_nests_crossing_and_identical_spans() -> None:
    text = 'a <b>&"c" d e f g\nh'
    values = [
        _v("outer", text, 0, 12),  # a <b>&"c" d
        _v("inner", text, 2, 5),  # <b>
        _v("same.a", text, 6, 9),  # "c"
        _v("same.b", text, 6, 9),
        _v("cross", text, 10, 16, "fuzzy"),  # crosses the end of outer
        _v("cross2", text, 14, 19),  # crosses the end of cross, runs to the end
        _v('evil"><script>', text, 0, 1),
        _v("stale", text, 0, 3, quote="zzz"),  # offsets no longer fit: not marked
        _v("outside", text, 15, 99, quote="x"),
        _v("empty", text, 4, 4, quote=""),
    ]
    out = highlight(text, values, pages=[0, 14])
    _check_nesting(f"<div>{out}</div>")
    assert _plain(out) == text
    assert "<script>" not in out and 'data-field="evil&quot;&gt;&lt;script&gt;"' in out
    assert out.count('data-field="cross"') == 2 and out.count('class="cont" data-field="cross"') == 1
    assert "stale" not in out and "outside" not in out and "empty" not in out
    assert re.search(r'<mark data-field="same.a"[^>]*><mark data-field="same.b"[^>]*>"c"</mark></mark>', out)
    assert out.startswith('<span class="pagebreak" data-page="1">page 1</span>')
    assert '<span class="pagebreak" data-page="2">page 2</span>' in out
    assert highlight("", []) == "" and highlight("<x>", []) == "&lt;x&gt;"


@pytest.mark.integration
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's headless Chromium at /usr/bin/chromium "
                                                   "(apt-get install -y chromium)")
def test_rendered_in_chromium(reviewed: Reviewed, tmp_path: Path) -> None:
    png = tmp_path / "shot" / "review.png"
    done = subprocess.run(["bash", str(SCREENSHOT), str(reviewed.path), str(png)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "SCREENSHOT_SIZE": "1000,1400"})
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    # The filter script ran under the page's CSP (it shows the filters) and touched no document text.
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={profile}", "--dump-dom",
                              reviewed.path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert '<form id="filters">' in dom, "the script ran and showed the filters"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script>alert" not in dom
