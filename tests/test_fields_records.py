"""The field strategy and lists of objects (issue 20 item 6): the rows of the document's table found without a
model, the model asked only for what the table does not say, and what still cannot be filled said on the row
(review_flags, needs_review, a warning in the summary), never a silent empty list."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import polars as pl

from extractor.documents import discover, load_document
from extractor.extraction import runner
from extractor.extraction.fields import extract_fields
from extractor.llm.transport import CallMeter
from extractor.schemas import load_schema

from .conftest import ROOT, make_config, write_docs

SCHEMA = load_schema(ROOT / "schemas", "invoice")
SAMPLES = ROOT / "samples" / "invoices"


def scripted(answers: dict[str, Any], log: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """An `ask` answering each question's field from `answers` (a callable gets the question's text)."""

    async def ask(messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int, meter: CallMeter) -> str:
        name = next(iter(schema["properties"]))
        question = messages[-1]["content"].rsplit("Question: ", 1)[-1]
        log.append({"field": name, "question": question, "schema": schema["properties"][name]})
        answer = answers.get(name)
        return json.dumps({name: answer(question) if callable(answer) else answer})

    return ask


def extract(text: str, answers: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str], list[dict]]:
    log: list[dict[str, Any]] = []
    notes: list[str] = []
    value = asyncio.run(extract_fields(scripted(answers or {}, log), SCHEMA, text, CallMeter(), (), notes))
    return value.model_dump(mode="json"), notes, log


def test_every_sample_invoice_s_rows_are_read_from_its_table_without_asking_the_model() -> None:
    truth = {json.loads(line)["doc_id"]: json.loads(line)
             for line in (ROOT / "bench" / "labels" / "invoices.jsonl").read_text(encoding="utf-8").splitlines()}
    for src in discover(SAMPLES):
        value, notes, log = extract(load_document(src, max_chars=200_000).text)
        assert value["line_items"] == truth[src.doc_id]["line_items"], src.doc_id
        assert notes == [], (src.doc_id, notes)
        assert not any(e["field"] in ("description", "quantity", "unit_price", "amount") for e in log)


INVOICE = """Brightline Studio Ltd
Invoice no.: BL-0093

Item                         Qty     Unit price       Amount
Brand workshop                 1      £1,200.00    £1,200.00
Logo variants                  3        £150.00      incl.
Print-ready files              1        £80.00        £80.00

Total due: £1,730.00
"""


def test_a_cell_the_table_does_not_say_is_asked_of_the_model_with_its_row() -> None:
    value, notes, log = extract(INVOICE, {"amount": lambda q: 450 if "Logo variants" in q else None})
    assert [i["amount"] for i in value["line_items"]] == [1200.0, None, 80.0]  # 450 is not in the row: refused
    asked = [e for e in log if e["field"] == "amount"]
    assert len(asked) == 1 and "Logo variants" in asked[0]["question"] and "Brand workshop" not in asked[0]["question"]
    assert asked[0]["schema"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}  # under a grammar
    assert notes == ["line_items[1]: amount not read from the row 'Logo variants 3 £150.00 incl.'"]


def test_a_cell_the_model_reads_from_its_row_fills_it() -> None:
    text = INVOICE.replace("incl.", "(see note: 450)")
    value, notes, _ = extract(text, {"amount": lambda q: 450 if "Logo variants" in q else None})
    assert [i["amount"] for i in value["line_items"]] == [1200.0, 450.0, 80.0] and notes == []


def test_without_a_header_that_names_them_the_model_picks_a_column_among_the_table_s() -> None:
    text = """Invoice A-77
Item            Hours   Total
Site survey        4    360.00
Report             2    180.00
"""
    value, notes, log = extract(text, {"quantity": "Hours (e.g. 4)", "amount": "Total (e.g. 360.00)"})
    picks = [e for e in log if e["schema"].get("enum")]
    assert [(e["field"], e["schema"]["enum"]) for e in picks] == [
        ("quantity", ["Hours (e.g. 4)", "Total (e.g. 360.00)", None]),
        ("unit_price", ["Total (e.g. 360.00)", None]), ("amount", ["Total (e.g. 360.00)", None])]
    items = value["line_items"]
    assert [(i["description"], i["quantity"], i["unit_price"], i["amount"]) for i in items] == [
        ("Site survey", 4.0, None, 360.0), ("Report", 2.0, None, 180.0)]
    # no column holds a unit price: each row is asked, and says it has none
    rows = [e["question"] for e in log if e["field"] == "unit_price" and "row" in e["question"]]
    assert [q.split('"')[1] for q in rows] == ["Site survey 4 360.00", "Report 2 180.00"]
    assert notes == ["line_items[0]: unit_price not read from the row 'Site survey 4 360.00'",
                     "line_items[1]: unit_price not read from the row 'Report 2 180.00'"]


def test_a_document_without_a_table_says_so_in_the_summary_and_on_its_row(tmp_path: Path, fake_server: Any) -> None:
    write_docs(tmp_path / "in", {"letter.txt": "Invoice Q-1. Thank you for your order of a chair for 120.00 EUR."})
    config = make_config(tmp_path, fake_server, schema="invoice", strategy="fields")
    summary = runner.run(config)
    assert summary.ok == 1 and summary.unfilled_values == 1 and summary.unfilled_documents == 1
    assert any("could not fill 1 list item(s) or cell(s) in 1 document(s)" in w for w in summary.warnings)
    row = pl.read_parquet(config.layout.results).to_dicts()[0]
    assert row["line_items"] == [] and row["needs_review"] is True
    assert row["review_flags"][0] == "line_items: no table found in the document; the field strategy left it empty"
