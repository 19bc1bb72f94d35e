"""Invoices: who bills whom, when, for what, and whether the sums add up (finance and operations)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from extractor.values.detect import written_number

# Bounded strings and lists keep small local models from looping (the bounds become the grammar).
ShortStr = Annotated[str, Field(max_length=120)]
MAX_ITEMS = 200

_CURRENCY_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "FR.": "CHF",
                     "SFR.": "CHF", "ZŁ": "PLN", "R$": "BRL", "C$": "CAD", "A$": "AUD", "KČ": "CZK"}


def _amount(value: object) -> object:
    """A number as a person writes it ("1.234,56 €", "CHF 1'234.50") becomes the number; anything else is
    left for pydantic to judge."""
    if isinstance(value, str):
        if not value.strip():
            return None
        number = written_number(value)
        return number if number is not None else value
    return value


class LineItem(BaseModel):
    """One line of the invoice's table: what was billed, how many, at what price, for how much."""

    description: Annotated[str, Field(max_length=200)] = Field(description="the line's text as printed")
    quantity: float | None = Field(None, description="how many units (hours, pieces) the line bills")
    unit_price: float | None = Field(None, description="price of one unit, as a plain number")
    amount: float | None = Field(None, description="the line's total, as a plain number")

    @field_validator("quantity", "unit_price", "amount", mode="before")
    @classmethod
    def _numbers(cls, value: object) -> object:
        return _amount(value)


class Invoice(BaseModel):
    """Fields of a supplier's invoice and its line items."""

    invoice_number: ShortStr = Field(description="the invoice's number or reference as printed")
    invoice_date: dt.date | None = Field(None, description="date the invoice was issued (YYYY-MM-DD)")
    due_date: dt.date | None = Field(None, description="date payment is due (YYYY-MM-DD)")
    supplier_name: ShortStr | None = Field(None, description="the company that issued the invoice")
    supplier_vat_id: ShortStr | None = Field(
        None, json_schema_extra={"x-kind": "text"},
        description="the supplier's VAT or tax id, without spaces, dots or dashes (e.g. DE287654321)")
    customer_name: ShortStr | None = Field(None, description="the company or person the invoice is billed to")
    currency: str | None = Field(None, description="ISO 4217 code of the amounts, e.g. EUR, USD, CHF")
    net_amount: float | None = Field(None, description="total before tax, as a plain number")
    tax_amount: float | None = Field(None, description="VAT or sales tax, as a plain number")
    total_amount: float | None = Field(None, description="amount due including tax, as a plain number")
    line_items: list[LineItem] = Field(default_factory=list, max_length=MAX_ITEMS,
                                       description="every billed line of the invoice's table, in order")

    @field_validator("net_amount", "tax_amount", "total_amount", mode="before")
    @classmethod
    def _numbers(cls, value: object) -> object:
        return _amount(value)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> object:
        if isinstance(value, str):
            code = value.strip().upper()
            if not code:
                return None
            code = _CURRENCY_SYMBOLS.get(code, code)
            import pycountry  # lazily: only a run of this schema pays for its tables

            if not re.fullmatch(r"[A-Z]{3}", code) or pycountry.currencies.get(alpha_3=code) is None:
                raise ValueError(f"currency must be an ISO 4217 code like EUR, USD or CHF, not {value!r}")
            return code
        return value

    @field_validator("supplier_vat_id", mode="before")
    @classmethod
    def _vat_id(cls, value: object) -> object:
        """"DE 287 654 321", "CHE-123.456.789 MWST" -> DE287654321, CHE123456789: the id, as tax offices
        compare it (the Swiss suffix MWST/TVA/IVA names the tax, it is not part of the number)."""
        if isinstance(value, str):
            code = re.sub(r"\s+(?:MWST|TVA|IVA)\.?$", "", value.strip(), flags=re.IGNORECASE)
            code = re.sub(r"[\s.\-/]", "", code).upper()
            return code or None
        return value

    @field_validator("line_items", mode="before")
    @classmethod
    def _items(cls, value: object) -> object:
        return [] if value is None else value


# -- arithmetic checks: review flags, never failures ---------------------------------------------------------

CENT = 0.01


def _off(expected: float, printed: float, steps: int = 1) -> bool:
    """More apart than rounding explains: each rounded amount may be half a cent off (`steps` of them),
    plus float noise."""
    return abs(expected - printed) > steps * CENT / 2 + 1e-6


def _money(value: float) -> str:
    return f"{value:,.2f}"


def arithmetic(invoice: Invoice) -> Iterator[tuple[str, str]]:
    """(field, message) for each sum that does not add up within rounding: quantity x unit price against each
    line's amount, the lines' amounts against the net, net plus tax against the total."""
    for i, item in enumerate(invoice.line_items):
        if item.quantity is not None and item.unit_price is not None and item.amount is not None:
            expected = item.quantity * item.unit_price
            if _off(expected, item.amount, 2):
                yield (f"line_items[{i}].amount", f"line {i + 1}: {item.quantity:g} x {_money(item.unit_price)} is "
                       f"{_money(expected)}, the line says {_money(item.amount)}")
    amounts = [item.amount for item in invoice.line_items]
    if amounts and invoice.net_amount is not None and all(a is not None for a in amounts):
        expected = sum(a for a in amounts if a is not None)
        if _off(expected, invoice.net_amount, len(amounts) + 1):
            yield ("net_amount", f"the {len(amounts)} lines add up to {_money(expected)}, the net amount is "
                   f"{_money(invoice.net_amount)}")
    if None not in (invoice.net_amount, invoice.tax_amount, invoice.total_amount):
        net, tax, total = invoice.net_amount or 0.0, invoice.tax_amount or 0.0, invoice.total_amount or 0.0
        if _off(net + tax, total, 3):
            yield ("total_amount", f"net {_money(net)} + tax {_money(tax)} is {_money(net + tax)}, the total is "
                   f"{_money(total)}")


MODEL = Invoice
DESCRIPTION = "Supplier invoices with line items (finance, accounts payable)"
# Routing hints for `--schema auto`: an invoice's headings and terms in English, German, French, Italian, Spanish
# and Portuguese (whole words in a document's beginning; a few decide without asking the model).
KEYWORDS = ["invoice", "invoice number", "invoice no", "bill to", "due date", "VAT", "subtotal", "total due",
            "amount due", "payment terms", "IBAN", "Rechnung", "Rechnungsnummer", "MwSt", "Zahlungsziel", "facture",
            "TVA", "échéance", "fattura", "IVA", "factura", "fatura", "NIF"]
CHECKS = [arithmetic]

INSTRUCTIONS = """\
You extract structured fields from one supplier invoice.
Rules:
- Use only what the invoice states; use null for anything it does not say.
- invoice_number: the invoice's own number, copied exactly (not an order or customer number).
- invoice_date and due_date: ISO dates (YYYY-MM-DD); read 01.10.2026 as 1 October 2026.
- supplier_name: the company that issued the invoice; customer_name: the one it is billed to.
- supplier_vat_id: the supplier's VAT id without spaces, dots or dashes.
- currency: the ISO 4217 code of the amounts (€ is EUR, $ is USD, Fr. or CHF is CHF).
- amounts as plain numbers: "1.234,56 €" is 1234.56, "CHF 1'234.50" is 1234.5.
- line_items: every line of the table in order, each with description, quantity, unit_price, amount.
"""

EXAMPLES = [
    (
        """Nordwind Logistik GmbH · Hafenstraße 12 · 20457 Hamburg · USt-IdNr. DE 312 456 789

Rechnung an: Brückner Maschinenbau AG

Rechnungsnummer: RE-2026-0415
Rechnungsdatum: 14.09.2026
Fällig am: 14.10.2026

Pos  Beschreibung             Menge   Einzelpreis      Betrag
1    Palettenversand Hamburg      3      120,00 €    360,00 €
2    Expresszuschlag              1       45,50 €     45,50 €

Nettobetrag:     405,50 €
MwSt. 19 %:       77,05 €
Gesamtbetrag:    482,55 €""",
        Invoice(
            invoice_number="RE-2026-0415", invoice_date=dt.date(2026, 9, 14), due_date=dt.date(2026, 10, 14),
            supplier_name="Nordwind Logistik GmbH", supplier_vat_id="DE312456789",
            customer_name="Brückner Maschinenbau AG", currency="EUR", net_amount=405.5, tax_amount=77.05,
            total_amount=482.55,
            line_items=[LineItem(description="Palettenversand Hamburg", quantity=3, unit_price=120.0, amount=360.0),
                        LineItem(description="Expresszuschlag", quantity=1, unit_price=45.5, amount=45.5)],
        ),
    ),
]
