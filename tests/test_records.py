"""Many records per document (issue 20): a list of objects as a child table of its own, kept in step with
results.parquet, as sheets both ways, and scored item by item."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor import schemas as schemas_module
from extractor import table
from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.layout import Layout
from extractor.schemas import load_schema_file
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import make_config, write_docs

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
