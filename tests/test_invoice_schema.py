"""The shipped invoice schema (`schemas/invoice.py`), its arithmetic checks, and the sample invoices that
`scripts/make_invoices.py` writes to `samples/invoices/` with their labels in `bench/labels/invoices.jsonl`."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import ValidationError

from extractor.schemas import load_schema
from extractor.values.detect import written_number

from .conftest import ROOT, load_script

SAMPLES = ROOT / "samples" / "invoices"
LABELS = ROOT / "bench" / "labels" / "invoices.jsonl"


def _script() -> ModuleType:
    return load_script(ROOT / "scripts" / "make_invoices.py", "make_invoices_under_test")


make_invoices = _script()
SCHEMA = load_schema(ROOT / "schemas", "invoice")


def labels() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]


def flags(values: dict) -> list[tuple[str, str]]:
    model = SCHEMA.model.model_validate(values)
    return [flag for check in SCHEMA.checks for flag in check(model)]


def test_the_committed_samples_are_what_the_script_writes(tmp_path: Path) -> None:
    invoices = make_invoices.build()
    make_invoices.write_all(invoices, tmp_path / "invoices", tmp_path / "labels.jsonl")
    written = {p.name: p.read_bytes() for p in (tmp_path / "invoices").iterdir()}
    committed = {p.name: p.read_bytes() for p in SAMPLES.iterdir()}
    assert sorted(written) == sorted(committed)
    assert [name for name in written if written[name] != committed[name]] == []
    assert (tmp_path / "labels.jsonl").read_bytes() == LABELS.read_bytes()


def test_the_sample_set_covers_every_format_locale_and_size() -> None:
    rows = labels()
    assert {Path(r["doc_id"]).suffix for r in rows} == {".txt", ".md", ".pdf", ".docx", ".html", ".eml"}
    assert {r["doc_id"].split("_")[0] for r in rows} == {"us", "gb", "de", "fr", "ch"}
    assert {r["currency"] for r in rows} == {"USD", "GBP", "EUR", "CHF"}
    sizes = [len(r["line_items"]) for r in rows]
    assert min(sizes) == 1 and max(sizes) == 40


def test_every_label_is_valid_and_adds_up() -> None:
    for row in labels():
        values = {k: v for k, v in row.items() if k != "doc_id"}
        assert SCHEMA.model.model_validate(values).model_dump(mode="json") == values, row["doc_id"]
        assert flags(values) == [], row["doc_id"]


def test_a_made_up_total_is_flagged_not_failed() -> None:
    values = {k: v for k, v in labels()[0].items() if k != "doc_id"}
    values["total_amount"] = round(values["total_amount"] + 100, 2)
    assert [field for field, _ in flags(values)] == ["total_amount"]
    message = flags(values)[0][1]
    assert "net" in message and f"{values['total_amount']:,.2f}" in message


def test_a_line_whose_amount_is_not_its_quantity_times_price_is_flagged_and_so_is_the_net() -> None:
    values = {k: v for k, v in labels()[1].items() if k != "doc_id"}
    values["line_items"][0]["amount"] += 10
    assert [field for field, _ in flags(values)] == ["line_items[0].amount", "net_amount"]


def test_rounding_is_not_a_flag() -> None:
    values = {"invoice_number": "A-1", "net_amount": 10.0, "tax_amount": 1.9, "total_amount": 11.9,
              "line_items": [{"description": "x", "quantity": 3, "unit_price": 3.333, "amount": 10.0}]}
    assert flags(values) == []
    values["total_amount"] = 11.93
    assert [field for field, _ in flags(values)] == ["total_amount"]


def test_amounts_and_ids_as_people_write_them_validate() -> None:
    invoice = SCHEMA.model.model_validate({
        "invoice_number": "RE-1", "currency": "€", "net_amount": "1.234,56 €", "tax_amount": "CHF 1'234.50",
        "total_amount": "1 234,56", "supplier_vat_id": "CHE-123.456.789 MWST",
        "line_items": [{"description": "Schrauben M8", "quantity": "2,5", "unit_price": "$1,234.56", "amount": ""}]})
    assert (invoice.currency, invoice.net_amount, invoice.tax_amount, invoice.total_amount) == \
        ("EUR", 1234.56, 1234.5, 1234.56)
    assert invoice.supplier_vat_id == "CHE123456789"
    assert invoice.line_items[0].quantity == 2.5 and invoice.line_items[0].amount is None
    with pytest.raises(ValidationError, match="ISO 4217"):
        SCHEMA.model.model_validate({"invoice_number": "X", "currency": "XYZ"})


@pytest.mark.parametrize(("written", "number"), [
    ("1,234.56", 1234.56), ("1.234,56", 1234.56), ("1\u00a0234,56 €", 1234.56), ("CHF 1'234.50", 1234.5),
    ("18,4", 18.4), ("1.234", 1234.0), ("0,25", 0.25), ("(12.50)", -12.5), ("-5,00", -5.0),
    ("12.345.678,90", 12345678.9), ("$11.20", 11.2), ("no digits", None)])
def test_a_written_number_is_read_in_every_locale_s_notation(written: str, number: float | None) -> None:
    assert written_number(written) == number


def test_the_shipped_invoice_kinds() -> None:
    kinds = {path: (k.kind, k.is_list) for path, k in SCHEMA.kinds.items()}
    assert kinds["line_items"] == ("object", True)
    assert kinds["line_items.quantity"] == ("number", False) and kinds["line_items.description"] == ("text", False)
    assert kinds["currency"] == ("currency", False) and kinds["due_date"] == ("date", False)
    assert kinds["supplier_name"] == ("name", False) and kinds["supplier_vat_id"] == ("text", False)
