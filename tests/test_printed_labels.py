"""Header fields printed next to their labels (issue 20 remainder, item 1): `values.printed` reads an invoice's
number, dates, parties, VAT id, currency and sums without a model, and the field strategy asks the model only what
no label prints. The invoices here are written by hand in layouts `scripts/make_invoices.py` does not make (a title
with the number in it, two labels on one line, a label above its value, Dutch and Spanish labels, a totals table in
Markdown, a customer's own VAT id, an issuer named only in the footer), so the reader is not fitted to the samples.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from extractor.documents import discover, load_document
from extractor.extraction.fields import extract_fields, settled
from extractor.llm.transport import CallMeter
from extractor.schemas import load_schema
from extractor.values import detect, printed

from .conftest import ROOT

SCHEMA = load_schema(ROOT / "schemas", "invoice")
HEADER = ["invoice_number", "invoice_date", "due_date", "supplier_name", "supplier_vat_id", "customer_name",
          "currency", "net_amount", "tax_amount", "total_amount"]

STUDIO = """Blue Fern Studio
Unit 4, 77 Canal Road, Leeds LS12 2PX
hello@bluefern.example

INVOICE # 10442                          Date: 03/03/2026
                                         Payment due: 04/02/2026
Bill To:
Carrow & Finch Architects
2 Quay Street, Bristol

Description                         Hours      Rate       Total
Logo design                            12     85.00     1020.00
Brand guidelines                        6     85.00      510.00

Sub-total:                                             $1,530.00
Tax (7%):                                                $107.10
Balance due:                                           $1,637.10

Thank you for your business. To pay by card, call us.
"""

DUTCH = """Bakkerij Levering & Co
Kanaalweg 8, 3526 KL Utrecht
BTW-nummer: NL123456789B01

Factuurnummer: 2026-117
Factuurdatum: 5-2-2026
Vervaldatum: 5-3-2026
Klant: Bakkerij de Molen B.V., Dorpsstraat 3, Zeist

Omschrijving            Aantal    Prijs       Bedrag
Broodkratten               40    € 7,50    € 300,00
Bezorging                   1   € 900,00   € 900,00

Subtotaal    € 1.200,00
BTW 21%      € 252,00
Totaal       € 1.452,00
"""

SPANISH_MD = """## Factura nº F-2026/0311

**Proveedor:** Suministros Iberia S.L.
**Cliente:** Talleres Ruiz S.A.

| Concepto | Cantidad | Precio | Importe |
| --- | --: | --: | --: |
| Tornillos M6 | 200 | 0,15 | 30,00 |
| Llave dinamométrica | 2 | 84,50 | 169,00 |

| | |
| --- | --: |
| Base imponible | 199,00 |
| IVA (21 %) | 41,79 |
| Total a pagar | 240,79 EUR |

Fecha de factura: 14 de marzo de 2026
Fecha de vencimiento: 13 de abril de 2026
NIF: ESB12345678
"""

CUSTOMER_FIRST = """Customer:
Jane Doe Consulting
12 High Street, Oxford
VAT no: GB999999973

Invoice number: 55-A
Invoice date: 1 June 2026
Currency: GBP

Item            Qty   Price     Amount
Consulting day    2   600.00  1,200.00

Net amount    1,200.00
VAT 20%         240.00
Total         1,440.00

Issued by: Nordlicht Design Ltd, Hamburg
VAT Reg. No. GB 123 4567 89
"""


def read(text: str) -> dict[str, Any]:
    language = detect.language(text)
    kinds = {"invoice_date": "date", "due_date": "date", "currency": "currency", "net_amount": "number",
             "tax_amount": "number", "total_amount": "number"}
    return {name: printed.value(text, name, kinds.get(name, "text"), language) for name in HEADER}


def test_a_title_with_the_number_two_labels_on_a_line_and_a_customer_under_its_label() -> None:
    got = read(STUDIO)
    assert got["invoice_number"] == "10442"
    assert got["invoice_date"] == dt.date(2026, 3, 3)  # English, slashed: month first
    assert got["due_date"] == dt.date(2026, 4, 2)
    assert got["customer_name"] == "Carrow & Finch Architects"
    assert got["supplier_name"] == "Blue Fern Studio"  # the letterhead, without a legal form
    assert got["supplier_vat_id"] is None  # none printed: nothing invented
    assert (got["net_amount"], got["tax_amount"], got["total_amount"]) == (1530.0, 107.1, 1637.1)
    assert got["currency"] == "USD"


def test_dutch_labels_dashed_dates_day_first_and_a_customer_with_its_address_on_the_line() -> None:
    got = read(DUTCH)
    assert got["invoice_number"] == "2026-117"
    assert got["invoice_date"] == dt.date(2026, 2, 5)
    assert got["due_date"] == dt.date(2026, 3, 5)
    assert got["customer_name"] == "Bakkerij de Molen B.V."
    assert got["supplier_name"] == "Bakkerij Levering & Co"
    assert got["supplier_vat_id"] == "NL123456789B01"
    assert (got["net_amount"], got["tax_amount"], got["total_amount"]) == (1200.0, 252.0, 1452.0)
    assert got["currency"] == "EUR"


def test_spanish_labels_in_markdown_with_the_totals_in_a_table_of_their_own() -> None:
    got = read(SPANISH_MD)
    assert got["invoice_number"] == "F-2026/0311"
    assert got["invoice_date"] == dt.date(2026, 3, 14)
    assert got["due_date"] == dt.date(2026, 4, 13)
    assert got["supplier_name"] == "Suministros Iberia S.L."
    assert got["customer_name"] == "Talleres Ruiz S.A."
    assert got["supplier_vat_id"] == "ESB12345678"
    assert (got["net_amount"], got["tax_amount"], got["total_amount"]) == (199.0, 41.79, 240.79)
    assert got["currency"] == "EUR"


def test_the_customer_s_own_vat_id_is_not_the_supplier_s_and_a_footer_names_the_issuer() -> None:
    got = read(CUSTOMER_FIRST)
    assert got["customer_name"] == "Jane Doe Consulting"
    assert got["supplier_name"] == "Nordlicht Design Ltd"
    assert got["supplier_vat_id"] == "GB 123 4567 89"
    assert got["currency"] == "GBP"
    assert (got["net_amount"], got["tax_amount"], got["total_amount"]) == (1200.0, 240.0, 1440.0)
    assert got["invoice_number"] == "55-A"


def test_a_legal_form_after_a_comma_belongs_to_the_name_an_address_does_not() -> None:
    assert read("Sold to: Acme, Inc., 5 Main Street\n")["customer_name"] == "Acme, Inc."
    assert read("Sold to: Acme Inc., 5 Main Street\n")["customer_name"] == "Acme Inc."


def test_words_that_are_labels_elsewhere_are_no_values_in_a_sentence_or_a_header_row() -> None:
    text = ("Payment terms: Net 30 days\nTo be paid within a month.\nDue to a delay, the order ships later.\n\n"
            "Item    Qty    Tax    Total\nPaper    2    0.40    4.40\n")
    got = read(text)
    assert got["net_amount"] is None and got["customer_name"] is None and got["due_date"] is None
    assert got["tax_amount"] is None and got["total_amount"] is None


@pytest.mark.parametrize(("name", "kind", "expected"), [
    ("invoice_number", "text", "number"), ("supplier_vat_id", "text", "tax_id"), ("due_date", "date", "due"),
    ("invoice_date", "date", "issued"), ("subtotal", "number", "net"), ("vat_amount", "number", "tax"),
    ("amount_due", "number", "total"), ("vendor", "text", "supplier"), ("bill_to", "text", "customer"),
    ("currency", "currency", "currency"),
    # a cover letter's or a resume's fields are none of these
    ("company", "text", None), ("available_from", "date", None), ("notice_period_days", "number", None),
    ("applicant_name", "text", None), ("due_date", "text", None),  # a due date that is no date: not read so
])
def test_a_field_s_concept_is_read_from_its_name_and_kind(name: str, kind: str, expected: str | None) -> None:
    assert printed.concept(name, kind) == expected


def test_the_field_strategy_settles_a_hand_written_invoice_s_header_without_a_question() -> None:
    got = asyncio.run(settled(SCHEMA, DUTCH))
    assert {k: got[k] for k in HEADER} == {
        "invoice_number": "2026-117", "invoice_date": dt.date(2026, 2, 5), "due_date": dt.date(2026, 3, 5),
        "supplier_name": "Bakkerij Levering & Co", "supplier_vat_id": "NL123456789B01",
        "customer_name": "Bakkerij de Molen B.V.", "currency": "EUR", "net_amount": 1200.0, "tax_amount": 252.0,
        "total_amount": 1452.0}


def test_what_no_label_prints_is_still_asked_of_the_model() -> None:
    asked: list[str] = []

    async def ask(messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int, meter: CallMeter) -> str:
        name = next(iter(schema["properties"]))
        asked.append(name)
        return json.dumps({name: None})

    value = asyncio.run(extract_fields(ask, SCHEMA, STUDIO, CallMeter()))
    assert asked == ["supplier_vat_id"]  # the only header field this invoice prints no label for
    assert value.total_amount == 1637.1


def test_a_currency_printed_as_its_sign_is_kept_though_the_schema_s_example_has_the_same_code() -> None:
    async def ask(messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int, meter: CallMeter) -> str:
        raise AssertionError("every header field of this invoice is printed under its label")

    value = asyncio.run(extract_fields(ask, SCHEMA, DUTCH, CallMeter()))
    assert "EUR" not in DUTCH and value.currency == "EUR"  # the shipped schema's example says "EUR" too


def test_every_sample_invoice_s_header_is_settled_without_asking_the_model() -> None:
    truth = {json.loads(line)["doc_id"]: json.loads(line)
             for line in (ROOT / "bench" / "labels" / "invoices.jsonl").read_text(encoding="utf-8").splitlines()}
    wrong = []
    for src in discover(ROOT / "samples" / "invoices"):
        text = load_document(src, max_chars=200_000).text
        got = SCHEMA.model.model_validate({"invoice_number": "", **asyncio.run(settled(SCHEMA, text))})
        dumped = got.model_dump(mode="json")
        wrong += [(src.doc_id, k, dumped[k], truth[src.doc_id][k]) for k in HEADER
                  if dumped[k] != truth[src.doc_id][k] and truth[src.doc_id][k] is not None]
    assert wrong == []
