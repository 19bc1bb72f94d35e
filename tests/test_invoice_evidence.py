"""Invoices as a finance team's own schema meets them: amounts with cents and thousands, in English, German,
French and Swiss notation, in every supported format. The fake server answers the true values, so any
`not_found` is a false alarm of the evidence search (issue 25)."""

from __future__ import annotations

import io
import textwrap
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import docx
import polars as pl
import pytest
from fpdf import FPDF

from extractor.extraction import runner

from .conftest import make_config, serving

SCHEMA = '''
"""A user's invoice schema: Decimal and float money, a VAT id, line items."""
import datetime as dt
from decimal import Decimal

from pydantic import BaseModel


class LineItem(BaseModel):
    description: str
    quantity: float
    unit_price: Decimal
    amount: Decimal


class Invoice(BaseModel):
    invoice_number: str
    invoice_date: dt.date
    supplier_name: str
    supplier_vat_id: str | None = None
    net_amount: Decimal
    tax_amount: Decimal
    total_amount: float
    line_items: list[LineItem] = []


MODEL = Invoice
INSTRUCTIONS = "Extract the invoice's fields as printed; amounts as numbers."
'''

# (key, supplier, VAT id as printed, date as printed, how an amount is printed)
LOCALES: dict[str, tuple[str, str, str, Any]] = {
    "en": ("Harbor Office Supply Inc.", "US 94-1234567", "October 1, 2026",
           lambda v: f"${v:,.2f}"),
    "de": ("Müller Bürobedarf GmbH", "DE 287 654 321", "01.10.2026",
           lambda v: f"{v:,.2f} €".replace(",", "X").replace(".", ",").replace("X", ".")),
    "fr": ("Papeterie Lefèvre SARL", "FR 40 303 265 045", "1er octobre 2026",
           lambda v: f"{v:,.2f} €".replace(",", "\u00a0").replace(".", ",")),
    "ch": ("Bürobedarf Zürich AG", "CHE-123.456.789 MWST", "01.10.2026",
           lambda v: f"CHF {v:,.2f}".replace(",", "'")),
}
ITEMS = [("Ergonomic office chair", 1, 1845.50), ("Desk lamp", 4, 23.10), ("Printer paper A4", 20, 11.20),
         ("Whiteboard markers", 1, 18.40)]
FORMATS = ["txt", "md", "html", "docx", "eml", "pdf"]


def invoice(locale: str, number: str = "INV-2026-117") -> tuple[dict[str, Any], list[list[str]], list[tuple[str, str]]]:
    """The true values, the item rows as printed, and the header lines as printed."""
    supplier, vat, date, money = LOCALES[locale]
    items = [{"description": d, "quantity": q, "unit_price": p, "amount": round(q * p, 2)} for d, q, p in ITEMS]
    net = round(sum(i["amount"] for i in items), 2)
    tax = round(net * 0.19, 2)
    values = {"invoice_number": number, "invoice_date": "2026-10-01", "supplier_name": supplier,
              "supplier_vat_id": vat.replace(" ", "").replace("-", "").replace(".", "").replace("MWST", ""),
              "net_amount": net, "tax_amount": tax, "total_amount": round(net + tax, 2), "line_items": items}
    rows = [[i["description"], str(i["quantity"]), money(i["unit_price"]), money(i["amount"])] for i in items]
    header = [("Invoice", number), ("Date", date), ("Supplier", supplier), ("VAT ID", vat)]
    totals = [("Net amount", money(net)), ("Tax (19%)", money(tax)), ("Total amount", money(net + tax))]
    return values, rows, header + totals


def render(fmt: str, locale: str, number: str) -> bytes:
    _, rows, lines = invoice(locale, number)
    head, totals = lines[:4], lines[4:]
    table_head = ["Description", "Qty", "Unit price", "Amount"]
    if fmt in ("txt", "eml"):
        text = "\n".join(f"{k}: {v}" for k, v in head) + "\n\n" + "\n".join(
            f"{r[0]:<26}{r[1]:>4}{r[2]:>16}{r[3]:>16}" for r in [table_head, *rows]) + "\n\n" + "\n".join(
            f"{k}: {v}" for k, v in totals) + "\n\nPayment terms: Net 30\n"
        if fmt == "txt":
            return text.encode()
        msg = EmailMessage()
        msg["From"] = "billing@example.com"
        msg["To"] = "ap@example.org"
        msg["Subject"] = f"Invoice {head[0][1]}"
        msg.set_content(text)
        return bytes(msg)
    if fmt == "md":
        table = "\n".join("| " + " | ".join(r) + " |" for r in [table_head, ["---"] * 4, *rows])
        return ("# Invoice\n\n" + "\n".join(f"**{k}:** {v}  " for k, v in head) + "\n\n" + table + "\n\n"
                + "\n".join(f"- {k}: {v}" for k, v in totals) + "\n").encode()
    if fmt == "html":
        dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in head)
        trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in [table_head, *rows])
        tot = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in totals)
        return f"<html><body><h1>Invoice</h1><dl>{dl}</dl><table>{trs}</table><dl>{tot}</dl></body></html>".encode()
    if fmt == "docx":
        document = docx.Document()
        for k, v in head:
            document.add_paragraph(f"{k}: {v}")
        table = document.add_table(rows=len(rows) + 1, cols=4)
        for r, values in enumerate([table_head, *rows]):
            for c, value in enumerate(values):
                table.cell(r, c).text = value
        for k, v in totals:
            document.add_paragraph(f"{k}: {v}")
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()
    pdf = FPDF()  # core fonts are Latin-1: the euro sign is written as EUR, as such PDFs often do
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()

    def latin(text: str) -> str:
        return text.replace("€", "EUR")

    for k, v in head:
        pdf.cell(0, 6, latin(f"{k}: {v}"), new_x="LMARGIN", new_y="NEXT")
    for r in [table_head, *rows]:
        for width, cell in zip((80, 20, 40, 40), r, strict=True):
            pdf.cell(width, 6, latin(cell))
        pdf.ln(6)
    for k, v in totals:
        pdf.cell(0, 6, latin(f"{k}: {v}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def invoice_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    tmp = tmp_path_factory.mktemp("invoices")
    schemas = tmp / "schemas"
    schemas.mkdir()
    (schemas / "my_invoice.py").write_text(textwrap.dedent(SCHEMA))
    (tmp / "in").mkdir()
    answers = {}
    for locale in LOCALES:
        for fmt in FORMATS:
            # The invoice number is the answer's key; each file gets its own so every answer is that file's.
            number = f"INV-{locale.upper()}-{fmt.upper()}-117"
            (tmp / "in" / f"{locale}.{fmt}").write_bytes(render(fmt, locale, number))
            answers[number] = invoice(locale, number)[0]
    with serving(answers=answers) as server:
        config = make_config(tmp, server, schema="my_invoice", schemas_dir=schemas)
        summary = runner.run(config)
    assert summary.ok == len(LOCALES) * len(FORMATS), summary
    out = config.schema_output_dir
    return pl.read_parquet(out / "results.parquet"), pl.read_parquet(out / "evidence.parquet")


def test_every_true_amount_id_and_date_of_an_invoice_is_found_in_every_format_and_locale(
        invoice_run: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    results, evidence = invoice_run
    missing = evidence.filter(pl.col("status") == "not_found").select("doc_id", "field", "value").rows()
    assert missing == [], missing
    assert results["needs_review"].to_list() == [False] * results.height, "no clean invoice is flagged"


def test_decimal_money_is_stored_as_a_number(invoice_run: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    results, _ = invoice_run
    assert results.schema["net_amount"] == pl.Float64 and results.schema["total_amount"] == pl.Float64
    row = results.filter(pl.col("doc_id") == "de.txt").to_dicts()[0]
    assert row["net_amount"] == invoice("de")[0]["net_amount"]
    assert row["line_items"][0]["unit_price"] == 1845.5


def test_an_item_quantity_is_not_found_in_the_cents_or_the_date(invoice_run: tuple[pl.DataFrame, pl.DataFrame],
                                                                tmp_path: Path) -> None:
    _, evidence = invoice_run
    text = render("txt", "de", "INV-DE-TXT-117").decode()
    row = evidence.filter((pl.col("doc_id") == "de.txt") & (pl.col("field") == "line_items[2].quantity")).to_dicts()[0]
    line = text[text.rfind("\n", 0, row["start"]) + 1:text.find("\n", row["start"])]
    assert row["quote"] == "20" and line.startswith("Printer paper A4"), line
