"""(Re)generate the sample invoices `samples/invoices/` and their gold labels `bench/labels/invoices.jsonl`.

Thirty fictional supplier invoices, five locales (US, UK, German, French, Swiss) times six formats (.txt, .md,
.pdf with a text layer, .docx, .html, .eml), each locale writing its own amounts ("$1,234.56", "£1,234.56",
"1.234,56 €", "1 234,56 €", "CHF 1'234.50") and dates ("10/01/2026", "1 October 2026", "01.10.2026",
"1er octobre 2026"), with 1 to 40 line items (the 40-line PDF runs over two pages). Item descriptions carry the
traps an evidence search falls into: digits inside words ("M8", "A4"), a row number beside each quantity,
payment terms ("Net 30"), quantities equal to the cents of a price. Gold values for `schemas/invoice.py`.

The output is deterministic (a seeded generator, fixed timestamps in PDF and DOCX): running the script twice
gives byte-identical files, and the test suite checks the committed files are what the script writes.

    python scripts/make_invoices.py            # writes samples/invoices/ and bench/labels/invoices.jsonl
    python scripts/make_invoices.py --check    # also parses every file with extractor.documents

Everything here is made up: companies, addresses and tax ids.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import io
import json
import random
import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "invoices"
LABELS = ROOT / "bench" / "labels" / "invoices.jsonl"
SEED = 20261202
FIXED_TIME = dt.datetime(2026, 11, 20, 9, 0, 0, tzinfo=dt.UTC)
FORMATS = ("txt", "md", "pdf", "docx", "html", "eml")
MOST_ITEMS = 40

_FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
              "novembre", "décembre")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")


def _group(value: float, thousands: str, mark: str, decimals: int = 2) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", mark).replace("\0", thousands)


@dataclass(frozen=True)
class Locale:
    """How one country writes an invoice: words, amounts, dates, tax."""

    key: str
    language: str
    currency: str
    money: Callable[[float], str]
    quantity: Callable[[float], str]
    date: Callable[[dt.date], str]
    tax_rate: float
    words: dict[str, str]
    suppliers: tuple[tuple[str, str, str | None], ...]  # (name, address, VAT id as printed)
    customers: tuple[str, ...]
    catalog: tuple[tuple[str, float], ...]  # (description, typical unit price)


def _qty(mark: str) -> Callable[[float], str]:
    return lambda q: f"{q:g}".replace(".", mark)


def _fr_date(day: dt.date) -> str:
    return f"{'1er' if day.day == 1 else day.day} {_FR_MONTHS[day.month - 1]} {day.year}"


_EN_WORDS = {"invoice": "Invoice", "number": "Invoice no.", "date": "Invoice date", "due": "Due date",
             "bill_to": "Bill to", "vat": "VAT No.", "pos": "#", "description": "Description", "qty": "Qty",
             "unit": "Unit price", "amount": "Amount", "net": "Subtotal", "tax": "VAT", "total": "Total due",
             "terms": "Payment terms: Net 30. Please quote the invoice number with your payment.",
             "subject": "Invoice", "greeting": "Please find our invoice below.", "page": "Page"}
_DE_WORDS = {"invoice": "Rechnung", "number": "Rechnungsnummer", "date": "Rechnungsdatum", "due": "Fällig am",
             "bill_to": "Rechnung an", "vat": "USt-IdNr.", "pos": "Pos.", "description": "Beschreibung",
             "qty": "Menge", "unit": "Einzelpreis", "amount": "Betrag", "net": "Nettobetrag", "tax": "MwSt.",
             "total": "Gesamtbetrag", "terms": "Zahlbar innerhalb von 30 Tagen ohne Abzug.",
             "subject": "Rechnung", "greeting": "anbei erhalten Sie unsere Rechnung.", "page": "Seite"}

LOCALES: dict[str, Locale] = {loc.key: loc for loc in (
    Locale("us", "en", "USD", lambda v: f"${_group(v, ',', '.')}", _qty("."),
           lambda d: d.strftime("%m/%d/%Y"), 0.08875,
           {**_EN_WORDS, "vat": "Tax ID", "tax": "Sales tax (8.875%)"},
           (("Harbor Office Supply Inc.", "410 Pier Avenue, Oakland, CA 94607", None),
            ("Redwood Fasteners LLC", "88 Industrial Way, Portland, OR 97217", None)),
           ("Bayside Dental Group", "Quarry Lane Architects", "Summit Ridge Logistics"),
           (("Ergonomic office chair", 289.0), ("Desk lamp, LED", 23.10), ("Printer paper A4, 500 sheets", 11.20),
            ("Whiteboard markers (set of 4)", 18.40), ("M8 hex bolts, box of 100", 14.75),
            ("USB-C cable 2 m", 9.99), ("Standing desk frame", 412.0), ("Toner cartridge TN-2420", 64.30),
            ("On-site setup (hours)", 95.0), ("Cable ties 300 mm, pack of 50", 6.45),
            ("Monitor arm, dual", 129.0), ("Shipping and handling", 25.0))),
    Locale("gb", "en", "GBP", lambda v: f"£{_group(v, ',', '.')}", _qty("."),
           lambda d: f"{d.day} {_EN_MONTHS[d.month - 1]} {d.year}", 0.20,
           {**_EN_WORDS, "tax": "VAT at 20%"},
           (("Thames Valley Print Ltd", "12 Mill Street, Reading RG1 2AB", "GB 123 4567 89"),
            ("Pennine Workwear Ltd", "Unit 4, Canal Side, Leeds LS11 5QR", "GB 987 6543 21")),
           ("Ashford & Lowe Solicitors", "Northgate Primary School", "Kestrel Cafés Ltd"),
           (("Business cards, 250 per box", 32.0), ("Hi-vis vest, size XL", 7.85), ("Safety boots S3", 58.90),
            ("Leaflets A5, 1000 pcs", 84.50), ("Design work (hours)", 65.0), ("Banner 3 x 1 m", 120.0),
            ("Polo shirt embroidered", 16.40), ("Delivery", 12.50), ("Envelopes C5, box of 500", 21.30),
            ("Poster A2 gloss", 4.60))),
    Locale("de", "de", "EUR", lambda v: f"{_group(v, '.', ',')} €", _qty(","),
           lambda d: d.strftime("%d.%m.%Y"), 0.19, {**_DE_WORDS, "tax": "MwSt. 19 %"},
           (("Müller Bürobedarf GmbH", "Lindenstraße 8, 10969 Berlin", "DE 287 654 321"),
            ("Schraubenwerk Kessler KG", "Am Hafen 3, 28217 Bremen", "DE 311 852 406")),
           ("Brückner Maschinenbau AG", "Praxis Dr. Sommer", "Stadtwerke Lüneburg GmbH"),
           (("Bürostuhl ergonomisch", 1845.50), ("Schreibtischleuchte LED", 23.10),
            ("Kopierpapier A4, 500 Blatt", 4.20), ("Sechskantschrauben M8 x 40", 0.18), ("Beratung (Stunden)", 120.0),
            ("Aktenordner 80 mm", 2.95),
            ("Druckerpatrone XL schwarz", 38.90), ("Montage vor Ort", 85.0), ("Dübel 8 mm, 100 Stück", 7.40),
            ("Versandkosten", 6.90), ("Whiteboard 120 x 90 cm", 149.0))),
    Locale("fr", "fr", "EUR", lambda v: f"{_group(v, chr(0xA0), ',')} €", _qty(","), _fr_date, 0.20,
           {"invoice": "Facture", "number": "Facture n°", "date": "Date de facture", "due": "Échéance",
            "bill_to": "Facturé à", "vat": "N° TVA", "pos": "N°", "description": "Désignation", "qty": "Qté",
            "unit": "Prix unitaire", "amount": "Montant", "net": "Total HT", "tax": "TVA 20 %", "total": "Total TTC",
            "terms": "Paiement à 30 jours fin de mois.", "subject": "Facture",
            "greeting": "veuillez trouver ci-dessous notre facture.", "page": "Page"},
           (("Papeterie Lefèvre SARL", "14 rue des Carmes, 69002 Lyon", "FR 40 303 265 045"),
            ("Quincaillerie Moreau SAS", "3 avenue Jean Jaurès, 33000 Bordeaux", "FR 83 404 833 048")),
           ("Cabinet Durand & Associés", "Boulangerie du Marché", "Mairie de Villeurbanne"),
           (("Ramette papier A4, 500 feuilles", 5.90), ("Stylos bille bleus, boîte de 50", 12.40),
            ("Classeur à levier 75 mm", 3.25), ("Vis à bois 4 x 40, boîte de 200", 8.60),
            ("Prestation de conseil (heures)", 110.0), ("Cartouche d'encre noire", 29.90),
            ("Lampe de bureau", 34.50), ("Frais de port", 9.50), ("Chaise de bureau", 219.0),
            ("Agrafeuse 24/6", 15.80))),
    Locale("ch", "de", "CHF", lambda v: f"CHF {_group(v, chr(0x27), '.')}", _qty("."),
           lambda d: d.strftime("%d.%m.%Y"), 0.081, {**_DE_WORDS, "vat": "MWST-Nr.", "tax": "MWST 8,1 %"},
           (("Bürobedarf Zürich AG", "Seefeldstrasse 21, 8008 Zürich", "CHE-123.456.789 MWST"),
            ("Holzbau Gerber GmbH", "Dorfstrasse 5, 3011 Bern", "CHE-246.802.468 MWST")),
           ("Gemeinde Küsnacht", "Hotel Alpenrose AG", "Treuhand Meier & Partner"),
           (("Bürostuhl Comfort", 389.0), ("Kopierpapier A4, 500 Blatt", 6.80), ("Schrauben M6, 200 Stück", 11.40),
            ("Beratung (Stunden)", 160.0), ("Tischleuchte", 49.90), ("Ordner A4 breit", 3.95),
            ("Fichtenlatten 3 m", 8.20), ("Montage (Stunden)", 98.0), ("Lieferung", 35.0),
            ("Whiteboard-Marker, 4 Stück", 9.60))),
)}


@dataclass(frozen=True)
class Invoice:
    path: str
    fmt: str
    locale: Locale
    number: str
    supplier: tuple[str, str, str | None]
    customer: str
    date: dt.date
    due: dt.date
    items: tuple[dict[str, Any], ...]
    net: float
    tax: float
    total: float

    @property
    def label(self) -> dict[str, Any]:
        """The gold row, as `schemas/invoice.py` dumps it (checked in `check_invoices`)."""
        vat = self.supplier[2]
        return {
            "invoice_number": self.number, "invoice_date": self.date.isoformat(), "due_date": self.due.isoformat(),
            "supplier_name": self.supplier[0],
            "supplier_vat_id": re.sub(r"[\s.\-]", "", vat.removesuffix(" MWST")) if vat else None,
            "customer_name": self.customer, "currency": self.locale.currency, "net_amount": self.net,
            "tax_amount": self.tax, "total_amount": self.total, "line_items": [dict(i) for i in self.items],
        }


def _item_counts(rng: random.Random, n: int) -> list[int]:
    """1 to 40 lines: one single-line invoice, one of 40 (the multi-page PDF), the rest mostly short."""
    counts = [rng.choice((2, 3, 4, 5, 6, 8, 12, 18, 25)) for _ in range(n)]
    counts[0] = 1
    return counts


def build(seed: int = SEED) -> list[Invoice]:
    """Every sample invoice, the same for the same seed."""
    rng = random.Random(seed)
    out: list[Invoice] = []
    combos = [(loc, fmt) for loc in LOCALES.values() for fmt in FORMATS]
    counts = _item_counts(rng, len(combos))
    for i, ((loc, fmt), count) in enumerate(zip(combos, counts, strict=True)):
        if (loc.key, fmt) == ("us", "pdf"):
            count = MOST_ITEMS
        items = []
        for _ in range(count):
            description, price = rng.choice(loc.catalog)
            unit_price = round(price * rng.choice((1.0, 1.0, 0.9, 1.15)), 2)
            quantity: float = rng.choice((1, 1, 2, 3, 4, 5, 10, 20, 40, 100))
            if "(hours" in description or "Stunden" in description or "heures" in description:
                quantity = rng.choice((0.5, 1.5, 2, 2.5, 4, 7.5))
            items.append({"description": description, "quantity": float(quantity), "unit_price": unit_price,
                          "amount": round(quantity * unit_price + 1e-9, 2)})
        net = round(sum(item["amount"] for item in items), 2)
        tax = round(net * loc.tax_rate + 1e-9, 2)
        day = dt.date(2026, 9, 1) + dt.timedelta(days=rng.randrange(0, 80))
        prefix = {"us": "INV", "gb": "INV", "de": "RE", "fr": "FA", "ch": "RG"}[loc.key]
        number = f"{prefix}-{day.year}-{loc.key.upper()}{i + 1:02d}{rng.randrange(100, 999)}"
        out.append(Invoice(
            path=f"{loc.key}_{i + 1:02d}.{fmt}", fmt=fmt, locale=loc, number=number,
            supplier=loc.suppliers[i % len(loc.suppliers)], customer=loc.customers[i % len(loc.customers)],
            date=day, due=day + dt.timedelta(days=30), items=tuple(items), net=net, tax=tax,
            total=round(net + tax, 2)))
    return out


# ---------------------------------------------------------------------------------------------------- render

def _head(inv: Invoice) -> list[tuple[str, str]]:
    w = inv.locale.words
    rows = [(w["number"], inv.number), (w["date"], inv.locale.date(inv.date)), (w["due"], inv.locale.date(inv.due)),
            (w["bill_to"], inv.customer)]
    return rows


def _supplier_lines(inv: Invoice) -> list[str]:
    name, address, vat = inv.supplier
    return [name, address] + ([f"{inv.locale.words['vat']} {vat}"] if vat else [])


def _table(inv: Invoice) -> tuple[list[str], list[list[str]]]:
    w, loc = inv.locale.words, inv.locale
    head = [w["pos"], w["description"], w["qty"], w["unit"], w["amount"]]
    rows = [[str(n), item["description"], loc.quantity(item["quantity"]), loc.money(item["unit_price"]),
             loc.money(item["amount"])] for n, item in enumerate(inv.items, 1)]
    return head, rows


def _totals(inv: Invoice) -> list[tuple[str, str]]:
    w, money = inv.locale.words, inv.locale.money
    return [(w["net"], money(inv.net)), (w["tax"], money(inv.tax)), (w["total"], money(inv.total))]


def render_text(inv: Invoice) -> str:
    """Aligned columns, as an accounting system prints an invoice to text."""
    head, rows = _table(inv)
    widths = [6, 34, 7, 15, 15]

    def line(cells: list[str]) -> str:
        return (f"{cells[0]:<{widths[0]}}{cells[1]:<{widths[1]}}" +
                "".join(f"{c:>{wd}}" for c, wd in zip(cells[2:], widths[2:], strict=True))).rstrip()

    parts = ["\n".join(_supplier_lines(inv)), inv.locale.words["invoice"].upper(),
             "\n".join(f"{k}: {v}" for k, v in _head(inv)),
             "\n".join([line(head), "-" * sum(widths), *(line(r) for r in rows)]),
             "\n".join(f"{k:>{sum(widths[:4])}}{v:>{widths[4]}}" for k, v in _totals(inv)),
             inv.locale.words["terms"]]
    return "\n\n".join(parts) + "\n"


def render_md(inv: Invoice) -> str:
    head, rows = _table(inv)
    table = "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---", "---", "--:", "--:", "--:"], *rows])
    return (f"# {inv.locale.words['invoice']} {inv.number}\n\n" + "  \n".join(_supplier_lines(inv)) + "\n\n"
            + "\n".join(f"- **{k}:** {v}" for k, v in _head(inv)) + "\n\n" + table + "\n\n"
            + "\n".join(f"**{k}:** {v}  " for k, v in _totals(inv)) + "\n\n" + inv.locale.words["terms"] + "\n")


def render_html(inv: Invoice) -> str:
    head, rows = _table(inv)
    e = html.escape
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _head(inv))
    ths = "".join(f"<th>{e(c)}</th>" for c in head)
    trs = "\n".join("    <tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    tot = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _totals(inv))
    supplier = "<br>".join(e(s) for s in _supplier_lines(inv))
    return f"""<!DOCTYPE html>
<html lang="{inv.locale.language}">
<head><meta charset="utf-8"><title>{e(inv.locale.words['invoice'])} {e(inv.number)}</title></head>
<body>
  <div class="supplier"><p>{supplier}</p></div>
  <h1>{e(inv.locale.words['invoice'])}</h1>
  <dl>{dl}</dl>
  <table class="items">
    <thead><tr>{ths}</tr></thead>
    <tbody>
{trs}
    </tbody>
  </table>
  <table class="totals">{tot}</table>
  <p>{e(inv.locale.words['terms'])}</p>
</body>
</html>
"""


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps so .docx output is byte-identical between runs."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=(2026, 11, 20, 9, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(item.filename))
    return out.getvalue()


def render_docx(inv: Invoice) -> bytes:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.author = props.last_modified_by = inv.supplier[0]
    props.title = f"{inv.locale.words['invoice']} {inv.number}"
    props.created = props.modified = props.last_printed = FIXED_TIME.replace(tzinfo=None)
    props.revision = 1
    for line in _supplier_lines(inv):
        document.add_paragraph(line)
    document.add_heading(inv.locale.words["invoice"], level=1)
    for k, v in _head(inv):
        document.add_paragraph(f"{k}: {v}")
    head, rows = _table(inv)
    table = document.add_table(rows=len(rows) + 1, cols=len(head))
    table.style = "Table Grid"
    for r, values in enumerate([head, *rows]):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    for k, v in _totals(inv):
        document.add_paragraph(f"{k}: {v}")
    document.add_paragraph(inv.locale.words["terms"])
    buf = io.BytesIO()
    document.save(buf)
    return _fixed_zip(buf.getvalue())


def render_pdf(inv: Invoice) -> bytes:
    """A text-layer PDF in the core Helvetica font; its Latin-1 has no euro sign, so amounts say EUR as such PDFs
    often do. Column heads repeat on each page."""
    from fpdf import FPDF

    def latin(text: str) -> str:
        return text.replace("€", "EUR")

    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_TIME)
    pdf.set_title(latin(f"{inv.locale.words['invoice']} {inv.number}"))
    pdf.set_author(latin(inv.supplier[0]))
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    for line in _supplier_lines(inv):
        pdf.cell(0, 5, latin(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, latin(inv.locale.words["invoice"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    for k, v in _head(inv):
        pdf.cell(0, 5, latin(f"{k}: {v}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    head, rows = _table(inv)
    widths = (10, 72, 16, 38, 38)
    aligns = ("L", "L", "R", "R", "R")

    def row(cells: list[str], bold: bool = False) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 9)
        for width, align, cell in zip(widths, aligns, cells, strict=True):
            pdf.cell(width, 6, latin(cell), align=align)
        pdf.ln(6)

    row(head, bold=True)
    for cells in rows:
        if pdf.get_y() > 297 - 30:
            pdf.set_font("Helvetica", size=8)
            pdf.cell(0, 5, f"{inv.locale.words['page']} {pdf.page_no()}", align="C")
            pdf.add_page()
            row(head, bold=True)
        row(cells)
    pdf.ln(3)
    for k, v in _totals(inv):
        pdf.cell(sum(widths[:4]), 6, latin(k), align="R")
        pdf.cell(widths[4], 6, latin(v), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(0, 5, latin(inv.locale.words["terms"]), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def render_eml(inv: Invoice) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{inv.supplier[0]} <billing@{re.sub(r'[^a-z]', '', inv.supplier[0].lower())[:16]}.example>"
    msg["To"] = "accounts@customer.example"
    msg["Subject"] = f"{inv.locale.words['subject']} {inv.number}"
    msg["Date"] = "Fri, 20 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = f"<{inv.number.lower()}@invoices.example>"
    msg.set_content(inv.locale.words["greeting"].capitalize() + "\n\n" + render_text(inv))
    return bytes(msg)


RENDERERS: dict[str, Callable[[Invoice], str | bytes]] = {
    "txt": render_text, "md": render_md, "pdf": render_pdf, "docx": render_docx, "html": render_html,
    "eml": render_eml}


def render(inv: Invoice) -> bytes:
    out = RENDERERS[inv.fmt](inv)
    return out.encode("utf-8") if isinstance(out, str) else out


# ---------------------------------------------------------------------------------------------------- checks

def check_invoices(invoices: list[Invoice]) -> None:
    """Every gold row is what the shipped schema makes of it, and its sums add up (the checks stay silent)."""
    sys.path.insert(0, str(ROOT))
    from extractor.schemas import load_schema

    schema = load_schema(ROOT / "schemas", "invoice")
    numbers = [inv.number for inv in invoices]
    if any(a != b and a in b for a in numbers for b in numbers):
        raise ValueError("an invoice number occurs inside another (the fake server keys answers by it)")
    for inv in invoices:
        model = schema.model.model_validate(inv.label)
        if model.model_dump(mode="json") != inv.label:
            raise ValueError(f"{inv.path}: gold row changes under validation:\n{model.model_dump(mode='json')}")
        flags = [flag for check in schema.checks for flag in check(model)]
        if flags:
            raise ValueError(f"{inv.path}: a clean invoice is flagged: {flags}")


def check_parsed(invoices: list[Invoice]) -> None:
    """Every file parses with the project's own reader; its text holds every description, the PDF of 40 lines
    has two pages."""
    from extractor.documents import discover, load_document

    by_id = {inv.path: inv for inv in invoices}
    found = discover(SAMPLES)
    if sorted(s.doc_id for s in found) != sorted(by_id):
        raise ValueError(f"discover() found {[s.doc_id for s in found]}, expected {sorted(by_id)}")
    for src in found:
        doc = load_document(src, max_chars=200_000)
        inv = by_id[src.doc_id]
        missing = [i["description"] for i in inv.items if i["description"] not in doc.text]
        if missing or inv.number not in doc.text:
            raise ValueError(f"{src.doc_id}: parsed text lacks {missing or inv.number}")
        if len(inv.items) == MOST_ITEMS and inv.fmt == "pdf" and len(doc.pages or ()) < 2:
            raise ValueError(f"{src.doc_id}: expected several pages, parsed {doc.pages}")


# ---------------------------------------------------------------------------------------------------- main

def write_all(invoices: list[Invoice], folder: Path = SAMPLES, labels: Path = LABELS) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for inv in invoices:
        (folder / inv.path).write_bytes(render(inv))
    labels.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"doc_id": inv.path, **inv.label}, ensure_ascii=False)
             for inv in sorted(invoices, key=lambda item: item.path)]
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="also parse every file with extractor.documents")
    parser.add_argument("--seed", type=int, default=SEED, help=f"generator seed (default {SEED}, the committed set)")
    args = parser.parse_args()
    invoices = build(args.seed)
    check_invoices(invoices)
    write_all(invoices)
    if args.check:
        check_parsed(invoices)
    items = sum(len(inv.items) for inv in invoices)
    total = sum(p.stat().st_size for p in SAMPLES.iterdir())
    print(f"wrote {len(invoices)} invoices with {items} line items ({total / 1024:.0f} KiB) to {SAMPLES} "
          f"and their labels to {LABELS}")


if __name__ == "__main__":
    main()
