"""The HTML report, built from real runs against the fake server: complete, self-contained, escaped, rendered."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from extractor.config import ModelPrice
from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.ladder import verdict
from extractor.ladder.breakeven import labeled_documents
from extractor.ladder.compare import Labelling, choose
from extractor.ladder.costmodel import Assumptions, analyze, observed_from_journal
from extractor.llm.pricing import finetune_prices
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.schemas import load_schema
from extractor.testing.fakeserver import FakeOpenAI
from extractor.views.htmlreport import (
    SECTION_TITLES,
    ReportConfig,
    build_report,
    print_report_summary,
    render_html,
    write_report,
)

from .conftest import ROOT, make_config, serving, settings, write_docs, write_experiments

EVIL = "<script>alert(1)</script>.txt"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "scripts" / "screenshot_report.sh"


def _letter(i: int) -> str:
    return " ".join(["Dear team, I would like to apply for the open position."] * (2 + 5 * i))


def _history(tmp_path: Path, server: FakeOpenAI) -> ReportConfig:
    """Three nights and two evaluations: gpt-4o-mini, then gpt-4o (drift), then a new prompt version."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(ROOT / "schemas" / "cover_letter.py", schemas / "cover_letter.py")
    docs: dict[str, str | bytes] = {
        f"letter{i:02}.txt": _letter(i) + (" [[vary:seniority=senior|mid]]" if i % 3 == 0 else "") for i in range(12)}
    docs[EVIL] = _letter(14)  # the longest letter: the costliest document, shown by name
    docs["refused.txt"] = "A letter the server always refuses [[fault:400*99]]"
    write_docs(tmp_path / "in", docs)
    where = settings(tmp_path / "out", schemas_dir=schemas)
    runner.run(make_config(tmp_path, server, schemas_dir=schemas, samples=3))
    runner.run(make_config(tmp_path, server, schemas_dir=schemas, samples=3, model="gpt-4o"))

    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps(
        {"doc_id": f"letter{i:02}.txt", "applicant_name": f"Applicant {i}", "language": "en", "email": None,
         "seniority": "senior" if i % 3 == 0 else None, "skills": ["Python"] if i % 2 else []}) for i in range(12)))
    evaluate(EvalConfig(settings=where, labels_file=labels))

    # A prompt change makes a new schema version: extracted again (drift) and evaluated again (quality wall).
    module = schemas / "cover_letter.py"
    module.write_text(module.read_text().replace('INSTRUCTIONS = """\\\n',
                                                 'INSTRUCTIONS = """\\\nRead the whole letter first.\n', 1))
    runner.run(make_config(tmp_path, server, schemas_dir=schemas, samples=3, model="gpt-4o"))
    evaluate(EvalConfig(settings=where))
    return ReportConfig(settings=where)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportConfig, Path, str]:
    """Built once for the module (three runs and two evaluations): the tests that use it only read it."""
    with serving(retry_after_s=0.05) as server:
        config = _history(tmp_path_factory.mktemp("report"), server)
    path = write_report(config)
    return config, path, path.read_text(encoding="utf-8")


def _text_outside_tags(page: str) -> str:
    return re.sub(r"<[^>]*>", " ", page)


def test_report_has_every_section_chart_and_the_recommendation(report: tuple[ReportConfig, Path, str]) -> None:
    config, path, page = report
    assert path == config.settings.output_dir / "cover_letter" / "report.html" and path.is_file()
    assert not list(path.parent.glob(".report.html.*")), "written atomically: no temporary file left"
    for key, title in SECTION_TITLES.items():
        if key == "experiments":  # shown only when experiments.parquet exists
            assert f">{html.escape(title)}</h2>" not in page and 'href="#experiments"' not in page
            continue
        assert f">{html.escape(title)}</h2>" in page, title
    assert page.count("<svg") >= 5, "cost histogram, cost per run, agreement, accuracy and break-even charts"
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page

    schema = load_schema(config.settings.schemas_dir, "cover_letter")
    observed = observed_from_journal(config.settings.output_dir / "cover_letter" / "journal.sqlite3", schema,
                                     "gpt-4o")
    assert observed is not None
    # The one verdict, read off the break-even of the journal as `extractor breakeven` reads it, shown once.
    have = labeled_documents(config.settings.layout.journal)
    labelling = Labelling(have=have, need=500, minutes_per_doc=3.0, hourly_usd=None)
    expected = verdict.render_verdict(choose(analyze(observed, Assumptions(), finetune_prices()), None, None,
                                             labelling))
    assert f"<strong>{html.escape(expected)}</strong>" in page and page.count('class="recommendation"') == 1
    assert "Assumptions</h3>" in page and page.count("<li>") >= 10

    data = build_report(config)
    assert data.breakeven is not None and data.verdict is not None
    assert verdict.render_verdict(data.verdict) == expected
    assert (data.headline.documents, data.headline.ok, data.headline.failed) == (14, 13, 1)
    assert data.latest_run is not None and data.latest_run.model == "gpt-4o" and len(data.runs) == 3
    assert data.sampled == 13 and 0 < data.agreement["seniority"] < 1 == data.agreement["language"]
    assert data.accuracy is not None and data.accuracy.accuracy["applicant_name"] == 0.0
    assert data.accuracy.accuracy["language"] == 1.0
    transitions = {d.transition for d in data.drift}
    assert len(transitions) == 2 and any("(gpt-4o-mini) ->" in t for t in transitions)
    assert "applicant_name" in data.quality_wall and "language" not in data.quality_wall
    assert "wall</td>" in page
    assert not data.notes, data.notes


def test_report_is_self_contained_and_escapes_document_names(report: tuple[ReportConfig, Path, str]) -> None:
    _, _, page = report
    lowered = page.lower()
    assert "<script" not in lowered
    assert "http://" not in lowered and "https://" not in lowered, "no URL: not even the price table's source"
    assert "openai.com/api/pricing" in page, "the price source is still cited, as plain text"
    assert not re.search(r"\b(?:src|href)\s*=\s*\"(?!#)", page), "no resource or link leaves the page"
    assert "@import" not in page and "url(" not in re.sub(r"url\(#[\w-]+\)", "", page)
    assert "Content-Security-Policy" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "charts share the page: their ids must not collide"
    assert set(re.findall(r'(?:href="#|url\(#)([^")]+)', page)) <= set(ids)
    escaped = html.escape(EVIL)
    assert escaped in page, "the hostile name is shown, escaped"
    assert page.count(EVIL) == 0 and "alert(1)" not in _text_outside_tags(page).replace(escaped, "")


def test_terminal_summary(report: tuple[ReportConfig, Path, str]) -> None:
    config, _, _ = report
    data = build_report(config)
    console = Console(record=True, width=200)
    print_report_summary(data, console)
    text = console.export_text()
    assert "14 documents" in text and "13 ok" in text and "1 failed" in text
    assert "quality wall: applicant_name" in text
    assert data.verdict is not None
    assert f"Verdict: {verdict.render_verdict(data.verdict)}" in " ".join(text.split())


def test_missing_optional_parts_are_explained(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "A letter", "b.txt": "Another letter, a little longer than the first"})
    # A model genai-prices does not know: no cost, so no break-even either.
    runner.run(make_config(tmp_path, fake_server, model="acme-local-7b"))
    config = ReportConfig(settings=settings(tmp_path / "out"), out=tmp_path / "elsewhere" / "r.html")
    data = build_report(config)
    assert set(data.notes) == {"cost", "runs", "agreement", "accuracy", "drift", "breakeven", "quality"}
    assert "no price known for model 'acme-local-7b'" in data.notes["breakeven"]
    assert "2 used tokens of a model with no known price (acme-local-7b)" in data.notes["cost"]
    assert data.headline.spent_usd is None and data.headline.unpriced_runs == 1
    page = render_html(data)
    for note in data.notes.values():
        assert html.escape(note) in page
    assert "<svg" not in page, "no chart without data"
    assert write_report(config, data) == tmp_path / "elsewhere" / "r.html"
    console = Console(record=True, width=200)
    print_report_summary(data, console)
    assert "break-even: Cannot price today's model" in console.export_text()

    price = ModelPrice(input_per_mtok=0.5, output_per_mtok=1.5)
    priced = build_report(dataclasses.replace(config, current_price=price))
    assert priced.breakeven is not None and "breakeven" not in priced.notes
    assert priced.breakeven.current_price_source == "price given in the assumptions"
    unknown = build_report(dataclasses.replace(config, current_price=price, target_model="no-such-model"))
    assert "no fine-tuning price for 'no-such-model'" in unknown.notes["breakeven"]
    with pytest.raises(ConfigError, match="no results yet"):
        build_report(ReportConfig(settings=settings(tmp_path / "none")))


@pytest.mark.integration
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's headless Chromium at /usr/bin/chromium "
                                                   "(apt-get install -y chromium)")
def test_screenshot(report: tuple[ReportConfig, Path, str], tmp_path: Path) -> None:
    _, path, _ = report
    png = tmp_path / "shot" / "report.png"
    done = subprocess.run(["bash", str(SCREENSHOT), str(path), str(png)], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


EVIL_VARIANT = "examples=similar:3,note=<img src=x onerror=alert(2)>"
EVIL_FIELD = "<b>salary</b>"


def _experiments_report(tmp_path: Path, server: FakeOpenAI, target: float | None) -> ReportConfig:
    """One production run (the monthly volume) and experiments.parquet with three variants, one hostile."""
    write_docs(tmp_path / "in", {f"letter{i}.txt": _letter(i) for i in range(4)})
    runner.run(make_config(tmp_path, server))
    where = settings(tmp_path / "out")
    write_experiments(where.layout.experiments, [
        {"variant": "examples=static", "accuracy": 0.90, "cost": 0.0004, "prompt_tokens": 2100.0,
         "completion_tokens": 180.0, "latency": 1.25, "fields": {"applicant_name": 1.0, EVIL_FIELD: 0.7}},
        {"variant": EVIL_VARIANT, "examples": "similar:3", "accuracy": 0.96, "cost": 0.0010,
         "prompt_tokens": 5000.0, "completion_tokens": 190.0, "latency": 2.5, "agreement": 0.8, "not_found": 0.05,
         "fields": {"applicant_name": 1.0, EVIL_FIELD: 0.9}},
        {"variant": "model=gpt-4.1,examples=static", "accuracy": 0.97, "cost": 0.0080,
         "fields": {"applicant_name": 0.95, EVIL_FIELD: 1.0}}])
    return ReportConfig(settings=where, target=target)


def test_experiments_section_terminal_and_escaping(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config = _experiments_report(tmp_path, fake_server, target=0.95)
    data = build_report(config)
    c = data.experiments
    assert c is not None and "experiments" not in data.notes
    assert [o.label for o in c.options] == ["examples=static", EVIL_VARIANT, "model=gpt-4.1,examples=static",
                                            "fine-tuned gpt-4.1-nano-2025-04-14 (not measured)"]
    assert data.verdict is not None
    recommendation = verdict.render_verdict(data.verdict)
    assert recommendation.startswith(f"Use retrieved examples, {EVIL_VARIANT}: 96.0% of 40 fields over 20 documents")
    page = render_html(data)
    assert '<section id="experiments"><h2>Experiments</h2>' in page and 'href="#experiments"' in page
    assert '<section id="verdict">' in page and html.escape(recommendation) in page
    assert page.count('class="recommendation"') == 1, "one verdict on the page"
    assert html.escape(EVIL_VARIANT) in page and html.escape(EVIL_FIELD) in page
    assert EVIL_VARIANT not in page and EVIL_FIELD not in page and "<img" not in page
    # 20 documents a field: no variant's interval clears the others' on either field, so both are ties.
    assert page.count('<strong class="best">') == 0 and page.count(">tie</td>") == 2
    assert "The fine-tuned model&#x27;s accuracy is UNKNOWN" in page

    console = Console(record=True, width=300)
    print_report_summary(data, console)
    text = " ".join(console.export_text().split())
    assert ("experiments: 3 variant(s) measured; No clear winner: model=gpt-4.1,examples=static, 97.0% of 40 fields "
            "over 20 documents (95% interval 86.4-99.4%)") in text
    assert f"Verdict: {recommendation}" in text

    # Without --target: the verdict on cost alone, and how to weigh accuracy.
    plain = build_report(dataclasses.replace(config, target=None))
    assert plain.experiments is not None and plain.verdict is not None and plain.verdict.use is None
    assert verdict.render_verdict(plain.verdict).startswith("Keep prompting gpt-4o-mini: on cost")
    assert "give --target to weigh it" in render_html(plain)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        dataclasses.replace(config, target=95)


@pytest.mark.integration
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's headless Chromium at /usr/bin/chromium "
                                                   "(apt-get install -y chromium)")
def test_experiments_table_rendered_in_chromium(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    import tempfile

    config = _experiments_report(tmp_path, fake_server, target=0.95)
    path = write_report(config)
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={profile}", "--dump-dom",
                              path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    section = re.search(r'<section id="experiments">(.*?)</section>', dom, re.S)
    assert section is not None, "the Experiments section is in the rendered DOM"
    tables = re.findall(r"<table>(.*?)</table>", section.group(1), re.S)
    assert len(tables) == 3, "the comparison, what each variant takes, and the per-field accuracy"

    def cells(table: str) -> list[list[str]]:
        rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
        return [[html.unescape(_text_outside_tags(c.replace("<wbr>", ""))).strip()
                 for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)] for row in rows]

    comparison, takes = cells(tables[0]), cells(tables[1])
    assert comparison[0] == ["variant", "kind", "overall accuracy", "95% interval", "fields / documents",
                             "a document", "a month (120 documents)", "training once", "Batch API (24 h) a document",
                             "Batch API a month"]
    by_variant = {row[0]: row for row in comparison[1:]}
    taken = {row[0]: row for row in takes[1:]}
    # One run of 4 documents, 30 nights a month: 120 documents a month.
    assert by_variant["examples=static"][1:] == [
        "static prompt", "90.0%", "76.9-96.0%", "40 / 20", "$0.000400", "$0.0480", "-", "$0.000200", "$0.0240"]
    assert taken["examples=static"][1:] == ["2,100", "180", "1.25 s", "-", "-", "20"]
    assert by_variant[EVIL_VARIANT][1:] == [
        "retrieved examples", "96.0%", "84.9-99.0%", "40 / 20", "$0.00100", "$0.120", "-", "$0.000500", "$0.0600"]
    assert taken[EVIL_VARIANT][1:] == ["5,000", "190", "2.50 s", "80%", "5%", "20"]
    finetuned = by_variant["fine-tuned gpt-4.1-nano-2025-04-14 (not measured)"]
    assert finetuned[1:5] == ["fine-tuned", "unknown", "-", "-"]
    assert "fine-tuned gpt-4.1-nano-2025-04-14 (not measured)" not in taken  # nothing measured: no figures
    per_field = cells(tables[2])
    assert per_field[0] == ["field", "examples=static", EVIL_VARIANT, "model=gpt-4.1,examples=static", ""]
    assert per_field[1:] == [["applicant_name", "100.0%", "100.0%", "95.0%", "tie"],
                             [EVIL_FIELD, "70.0%", "90.0%", "100.0%", "tie"]]
    assert "<img" not in section.group(1) and "&lt;img src=x" in section.group(1)
