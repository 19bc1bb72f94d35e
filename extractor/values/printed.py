"""Values printed next to their labels, as business documents print them: "Invoice no.: INV-7", "Total due
$4,485.65", "Rechnung an" with the customer on the next line, "**Échéance:** 18 octobre 2026", "MwSt. 19 %
285,34 €", "Subtotal | $2,125.60"; and the issuer's letterhead, which is printed without a label.

A label is one of a concept's terms (`TERMS`: English, German, French, Italian, Spanish, Dutch, Portuguese),
matched accent- and case-blind at the start of a line or of a column of it (after two spaces, a tab or a
pipe, so "Invoice no.: 7      Date: 1.2.2026" is two labels), the longest term of any concept first
("Total HT" is the net, "Total TTC" the total, "VAT No." an id and "VAT 20 %" an amount). The value is the
rest of that column, or the next line when the label stands alone ("<dt>Rechnungsnummer</dt><dd>...</dd>" as
the HTML parser renders it). Which field a concept fills is read from the field's name (`concept`), so a
user's own schema with `vendor`, `subtotal` or `bill_to` gets the same reading.

Nothing here asks a model: a concept with no printed label gives None, and the field strategy asks as before.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from extractor.values import detect, tables
from extractor.values.evidence import fold

# Folded (lower case, no accents) label terms of each concept; words may be joined by spaces, dots, dashes or
# slashes in the document ("USt-IdNr." is "ust idnr"). A term is only ever a label at the start of a column.
TERMS: dict[str, tuple[str, ...]] = {
    "number": (
        "invoice number", "invoice no", "invoice nr", "invoice #", "invoice n°", "invoice ref", "invoice reference",
        "invoice id", "inv no", "inv #", "bill no", "bill number", "receipt no", "receipt number", "invoice",
        "tax invoice", "rechnungsnummer", "rechnungs nr", "rechnung nr", "rechnungsnr", "rechnung n°", "rechnung",
        "belegnummer", "beleg nr", "facture n°", "facture no", "facture nr", "facture numero", "facture",
        "n° de facture", "no de facture", "numero de facture", "fattura n", "fattura n°", "fattura nr",
        "numero fattura", "numero della fattura", "fattura", "factura n°", "factura no", "factura nº",
        "numero de factura", "factura", "factuurnummer", "factuur nr", "factuur", "fatura n°", "fatura nº",
        "numero da fatura", "fatura"),
    "issued": (
        "invoice date", "date of invoice", "date of issue", "issue date", "issued on", "issued", "billing date",
        "bill date", "date", "dated", "rechnungsdatum", "datum der rechnung", "belegdatum", "ausstellungsdatum",
        "datum", "date de facture", "date de la facture", "date d'emission", "date de facturation",
        "data fattura", "data della fattura", "data di emissione", "data", "fecha de factura", "fecha de emision",
        "fecha", "factuurdatum", "datum factuur", "data da fatura", "data de emissao"),
    "due": (
        "due date", "payment due", "payment due date", "due on", "due by", "pay by", "payable by", "due",
        "faellig am", "fallig am", "fallig", "falligkeit", "falligkeitsdatum", "zahlbar bis", "zahlungsziel",
        "echeance", "date d'echeance", "date limite de paiement", "a payer avant le", "payable avant le",
        "scadenza", "data di scadenza", "data scadenza", "vencimiento", "fecha de vencimiento", "vervaldatum",
        "te betalen voor", "data de vencimento", "vencimento"),
    "total": (
        "total", "total due", "amount due", "balance due", "total amount", "total amount due", "grand total",
        "invoice total", "total payable", "amount payable", "total to pay", "total incl vat", "total incl. vat",
        "total including vat", "total inc vat", "total (incl. vat)", "gesamtbetrag", "rechnungsbetrag",
        "endbetrag", "gesamtsumme", "gesamt", "summe", "zu zahlen", "zahlbetrag", "bruttobetrag", "brutto",
        "total ttc", "montant ttc", "net a payer", "montant total", "montant du", "total a payer", "totale",
        "totale fattura", "totale da pagare", "importe total", "total a pagar", "totaal", "te betalen",
        "valor total", "total a pagar"),
    "net": (
        "subtotal", "sub total", "sub-total", "net", "net amount", "net total", "total net", "total excl vat",
        "total excl. vat", "total excluding vat", "total before tax", "total ex vat", "amount before tax",
        "nettobetrag", "netto", "nettosumme", "summe netto", "zwischensumme", "gesamt netto", "total ht",
        "montant ht", "sous-total", "sous total", "total hors taxes", "imponibile", "totale imponibile",
        "base imponible", "subtotal sin iva", "subtotaal", "totaal excl btw", "valor liquido"),
    "tax": (
        "tax", "sales tax", "vat", "vat amount", "tax amount", "gst", "hst", "iva", "mwst", "mwst betrag",
        "mehrwertsteuer", "ust", "umsatzsteuer", "tva", "montant tva", "montant de la tva", "btw", "imposta",
        "impuesto", "plus vat", "zzgl mwst", "zzgl ust"),
    "tax_id": (
        "vat no", "vat number", "vat id", "vat reg no", "vat registration no", "vat registration number",
        "vat reg", "tax id", "tax number", "tax no", "tin", "ein", "gst no", "gst number", "gstin", "abn",
        "ust idnr", "ust id nr", "ust id", "ustid", "ust-id", "steuernummer", "steuer nr", "uid", "uid nr",
        "mwst nr", "mwst-nr", "n° tva", "no tva", "numero de tva", "tva intracommunautaire", "n° tva intracom",
        "partita iva", "p iva", "p.iva", "nif", "cif", "nif/cif", "btw nummer", "btw nr", "btw-nr", "nipc"),
    "customer": (
        "bill to", "billed to", "invoice to", "invoiced to", "sold to", "customer", "client", "buyer",
        "recipient", "to", "rechnung an", "rechnungsempfanger", "kunde", "empfanger", "auftraggeber",
        "facture a", "facturer a", "destinataire", "adresse de facturation", "fatturato a", "fattura a",
        "intestatario", "cliente", "facturar a", "facturado a", "factuur aan", "klant", "faturado a"),
    "supplier": (
        "from", "supplier", "vendor", "seller", "issued by", "sold by", "billed by", "payee", "lieferant",
        "verkaufer", "rechnungssteller", "fournisseur", "vendeur", "emetteur", "fornitore", "emittente",
        "proveedor", "emisor", "leverancier", "fornecedor"),
    "currency": ("currency", "wahrung", "devise", "monnaie", "valuta", "moneda", "moeda"),
}

# The words of a field's name (split at "_") that say which concept it is; checked in this order, so
# "supplier_vat_id" is a tax id before it is a supplier, and "due_date" is due before it is a date.
_BY_NAME: tuple[tuple[str, tuple[frozenset[str], ...], str], ...] = (
    # (concept, alternatives: every word of one set in the name, the kind the field must have)
    ("tax_id", (frozenset({"vat", "id"}), frozenset({"vat", "number"}), frozenset({"vat", "no"}),
                frozenset({"tax", "id"}), frozenset({"tax", "number"}), frozenset({"tin"}), frozenset({"vatin"}),
                frozenset({"gstin"})), "text"),
    ("number", (frozenset({"invoice", "number"}), frozenset({"invoice", "no"}), frozenset({"invoice", "id"}),
                frozenset({"invoice", "ref"}), frozenset({"invoice", "reference"}), frozenset({"bill", "number"}),
                frozenset({"receipt", "number"})), "text"),
    ("due", (frozenset({"due"}),), "date"),
    ("issued", (frozenset({"invoice", "date"}), frozenset({"issue", "date"}), frozenset({"issued"}),
                frozenset({"bill", "date"}), frozenset({"billing", "date"}), frozenset({"receipt", "date"})), "date"),
    ("net", (frozenset({"net"}), frozenset({"subtotal"}), frozenset({"sub", "total"}), frozenset({"untaxed"})),
     "number"),
    ("tax", (frozenset({"tax"}), frozenset({"vat"}), frozenset({"gst"})), "number"),
    ("total", (frozenset({"total"}), frozenset({"amount", "due"}), frozenset({"balance", "due"})), "number"),
    ("customer", (frozenset({"customer"}), frozenset({"buyer"}), frozenset({"client"}), frozenset({"bill", "to"}),
                  frozenset({"billed", "to"}), frozenset({"recipient"})), "text"),
    ("supplier", (frozenset({"supplier"}), frozenset({"vendor"}), frozenset({"seller"}), frozenset({"issuer"}),
                  frozenset({"merchant"}), frozenset({"biller"})), "text"),
    ("currency", (frozenset({"currency"}),), "currency"),
)

# What may stand between a label and its value: a colon, dots, a "#", a pipe, Markdown emphasis.
_SEPARATOR = re.compile(r"[\s:.#|*_=–—]*")
# A rate printed after a tax label ("19 %", "(8.875%)", "at 20%", "@ 7,7 %"), before the amount.
_RATE = re.compile(r"(?:(?:at|@|a|à|zu|de|al)\s+)?[(\[]?\s*\d{1,2}(?:[.,]\d{1,3})?\s?%\s*[)\]]?[\s:|*]*",
                   re.IGNORECASE)
_PARENTHESIS = re.compile(r"\([^)]{0,40}\)[\s:|*]*")  # "Total (EUR):", "Subtotal (excl. VAT)"
_COLUMN = re.compile(r"(?:^|(?<=\t)|(?<=  )|(?<=\|))[ \t>*_#•·|-]*", re.MULTILINE)  # where a column of a line starts
# A tax id: an optional country prefix, then digits with spaces, dots or dashes ("GB 123 4567 89",
# "CHE-123.456.789 MWST", "12-3456789", "FR 83 404 833 048").
_TAX_ID = re.compile(r"^(?:[A-Z]{2,3}[\s.\-]?)?[0-9A-Z](?:[0-9A-Z]|[\s.\-/](?=[0-9A-Z])){5,20}(?:\s(?:MWST|TVA|IVA))?")
LETTERHEAD_LINES = 40  # lines from the top searched for the issuer's letterhead (an e-mail's headers come first)
# Terms that are common words in a sentence too: a label only with its colon ("To: ...", "From: ...").
_COLON_ONLY = {"to", "from", "due", "net", "dated", "issued", "data"}
_TITLES = {"invoice", "tax invoice", "rechnung", "facture", "fattura", "factura", "factuur", "fatura", "receipt",
           "bill", "quittung", "recu", "ricevuta", "recibo", "proforma", "credit note", "gutschrift", "avoir"}
_SENTENCE = re.compile(r"[.!?]\s*$")
_ADDRESS = re.compile(r"\d")  # an address, phone or id line has digits; a company's name rarely does


@dataclass(frozen=True)
class Printed:
    concept: str
    label: str  # as printed
    text: str  # the value as printed
    start: int  # the value's span in the document's text
    end: int
    rank: int  # characters of the term matched: a longer term is a more specific label
    at: int  # where the label starts


@functools.cache
def _term_pattern() -> re.Pattern[str]:
    """Every term, longest first (an alternation takes the first that matches), as group t<n> of `_term_concepts`."""
    parts = []
    for n, (term, _) in enumerate(_term_concepts()):
        words = [re.escape(w) for w in re.split(r"[\s.\-/]+", term) if w]
        parts.append(f"(?P<t{n}>" + r"[\s.\-/]*".join(words) + r"\.?)")
    return re.compile("(?:" + "|".join(parts) + r")(?![a-z0-9])")


@functools.cache
def _first_words() -> frozenset[str]:
    """The first word of every term: a column that starts with none of them is no label (checked before the
    pattern, whose ~300 alternatives cost 5 s on a 400 kB text when tried at every column)."""
    return frozenset(_WORD.match(term).group(0) for term, _ in _term_concepts())  # type: ignore[union-attr]


_WORD = re.compile(r"[^\s.\-/:]+")


@functools.cache
def _term_concepts() -> tuple[tuple[str, str], ...]:
    """(term, concept) pairs, longest term first, ties in alphabetical order."""
    return tuple(sorted({(t, c) for c, ts in TERMS.items() for t in ts}, key=lambda tc: (-len(tc[0]), tc)))


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and (text[start].isspace() or text[start] in "*_|"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in "*_|"):
        end -= 1
    return start, end


@functools.lru_cache(maxsize=8)
def labels(text: str) -> tuple[Printed, ...]:
    """Every label of a concept in the text with the value printed after it (or under it), in document order."""
    folded = fold(text)
    if len(folded) != len(text):  # a character whose lower case is longer: offsets would not match
        folded = "".join(fold(c)[:1] or c for c in text)
    lines = tables.line_spans(text)
    pattern, concepts, first = _term_pattern(), _term_concepts(), _first_words()
    found: list[tuple[int, int, str, int, int]] = []  # (label start, label end, concept, line index, rank)
    for n, (a, b) in enumerate(lines):
        taken = a  # a column inside a label already found is none
        for column in _COLUMN.finditer(folded, a, b):
            if column.end() < taken or (column.start() > a and not folded[column.start() - 1].isspace()
                                        and folded[column.start() - 1] != "|"):
                continue
            word = _WORD.match(folded, column.end(), b)
            if word is None or (word.group(0).rstrip("#°.") not in first and word.group(0) not in first):
                continue
            match = pattern.match(folded, column.end(), b)
            if match is None or not match.group(0).strip():
                continue
            taken = match.end()
            term, concept = concepts[int(match.lastgroup[1:])]  # type: ignore[index]
            if term in _COLON_ONLY and not re.match(r"\s?:", text[match.end():b]):
                continue
            found.append((match.start(), match.end(), concept, n, len(term)))
    out: list[Printed] = []
    for i, (start, end, concept, n, rank) in enumerate(found):
        line_end = lines[n][1]
        stop = found[i + 1][0] if i + 1 < len(found) and found[i + 1][3] == n else line_end
        value_start = _SEPARATOR.match(text, end, stop).end()  # type: ignore[union-attr]
        if concept in ("tax", "total", "net"):  # "Sales tax (8.875%)        $365.65": the rate is no column
            for cut in (_PARENTHESIS, _RATE, _PARENTHESIS):
                if (m := cut.match(text, value_start, stop)) is not None:
                    value_start = m.end()
        stop = min(stop, _column_end(text, value_start, stop))
        a, b = _strip(text, value_start, stop)
        if a >= b:  # the label alone on its line: its value on the next line that is not a label itself
            if text[lines[n][0]:start].strip(" \t*_#>-|") or text[stop:line_end].strip(" \t*_|:"):
                continue  # a header row's column ("Qty  Tax  Total"), not a label above its value
            below = next((m for m in range(n + 1, min(n + 3, len(lines))) if text[slice(*lines[m])].strip()), None)
            if below is None or any(f[3] == below for f in found):
                continue
            a, b = _strip(text, *lines[below])
            b = min(b, _column_end(text, a, b))
            a, b = _strip(text, a, b)
            if a >= b:
                continue
        out.append(Printed(concept, text[start:end], text[a:b], a, b, rank, start))
    return tuple(out)


def _column_end(text: str, start: int, stop: int) -> int:
    """Where the value's column ends: at two spaces or a tab after some text (an aligned second column)."""
    begun = False
    for i in range(start, stop):
        if not text[i].isspace():
            begun = True
        elif begun and (text[i] == "\t" or text[i:i + 2] == "  "):
            return i
    return stop


def concept(name: str, kind: str) -> str | None:
    """The concept a field's name says it is ("supplier_vat_id" -> "tax_id", "total_amount" -> "total"), when its
    kind fits (a date for a date concept, a number for an amount); None for any other field."""
    words = set(name.lower().split("_"))
    for found, alternatives, wanted in _BY_NAME:
        if any(a <= words for a in alternatives) and (kind == wanted or (wanted == "currency" and kind == "text")):
            return found
    return None


def _amount(item: Printed) -> float | None:
    cell = tables.leading_amount(item.text)
    return cell[0] if cell is not None else None


def _date(item: Printed, language: str | None) -> Any:
    found = detect.dates(item.text, language)
    return found[0].value if found and found[0].start <= 4 else None  # "1er novembre 2026", "le 3 mars 2026"


def _number_text(item: Printed) -> str | None:
    """An invoice's number: the value's first token when it has a digit ("INV-2026-0042", "#1042", "7/2026")."""
    token = re.match(r"[#№]?\s?([A-Za-z0-9][\w\-/.]*[A-Za-z0-9]|\d)", item.text)
    if token is None or not re.search(r"\d", token.group(1)):
        return None
    return token.group(1)


def _tax_id(item: Printed) -> str | None:
    match = _TAX_ID.match(item.text)
    if match is None or sum(c.isdigit() for c in match.group(0)) < 6:
        return None
    return match.group(0).strip()


def _name(item: Printed) -> str | None:
    """A party's name: the value up to its first comma when an address follows it on the same line."""
    from extractor.values import letters

    # "Bakkerij de Molen B.V., Dorpsstraat 3, Zeist", "Nordlicht Design Ltd, Hamburg": the name, not its address;
    # "Acme, Inc." is one name
    parts = re.split(r"\s+<", item.text, maxsplit=1)[0].split(", ")
    value = parts[0]
    if len(parts) > 1 and letters.legal_form(value) is None and len(parts[1].split()) <= 2 and \
            letters.legal_form(f"{value} {parts[1]}") is not None:
        value = f"{value}, {parts[1]}"
    value = value.strip(" ,;")
    if not re.search(r"[^\W\d_]", value) or _is_label(value) or "@" in value:
        return None
    return value


def _is_label(value: str) -> bool:
    return value.rstrip().endswith(":") or _term_pattern().fullmatch(fold(value.strip(" :*_").lower())) is not None


def value(text: str, name: str, kind: str, language: str | None = None) -> Any:
    """The typed value printed under the label of the field's concept (`concept`), or None: the most specific
    label's first readable value (an amount's last: a total is printed at the bottom, after any carried sums)."""
    wanted = concept(name, kind)
    if wanted is None:
        return None
    if wanted == "currency":
        return currency(text)
    if wanted == "supplier":
        return supplier(text)
    read = {"total": _amount, "net": _amount, "tax": _amount, "number": _number_text, "tax_id": _tax_id,
            "customer": _name, "issued": lambda item: _date(item, language),
            "due": lambda item: _date(item, language)}[wanted]
    found = [item for item in labels(text) if item.concept == wanted]
    if wanted == "tax_id":
        found = [item for item in found if not _in_block(text, item.start, "customer")]
    for rank in sorted({item.rank for item in found}, reverse=True):
        same = [item for item in found if item.rank == rank]
        if wanted in ("total", "net", "tax"):
            same.reverse()
        for item in same:
            result = read(item)
            if result is not None:
                return result
    return None


def _blocks(text: str, owner: str) -> list[tuple[int, int]]:
    """The blocks of lines that a label of `owner` heads: from the label to the next blank line."""
    out = []
    for item in labels(text):
        if item.concept == owner:
            end = text.find("\n\n", item.start)
            out.append((item.at, end if end >= 0 else len(text)))
    return out


def _in_block(text: str, start: int, owner: str) -> bool:
    """The offset lies in a block of lines that a label of `owner` heads (`_blocks`)."""
    return any(lo <= start < hi for lo, hi in _blocks(text, owner))


def currency(text: str) -> str | None:
    """The ISO 4217 code of a document's amounts: a "Currency:" label's code, else the currency of its labeled
    total, net or tax, else the one most of its amounts are written in."""
    codes = detect.money_codes()
    for item in labels(text):
        if item.concept == "currency":
            code = item.text.split()[0].strip(".,;:").upper() if item.text.split() else ""
            if code in codes:
                return code
    for item in labels(text):
        if item.concept in ("total", "net", "tax") and _amount(item) is not None:
            found = detect.money(item.text)
            if found:
                return str(found[0].value["currency"])
    counted = Counter(str(c.value["currency"]) for c in detect.money(text))
    return counted.most_common(1)[0][0] if counted else None


def supplier(text: str) -> str | None:
    """The issuer: a "Supplier:"/"From:" label's name (an e-mail's sender's display name too), else the
    letterhead: the first line above the first label that is a name (a legal form where one has it), not a title,
    a sentence, an address or the customer's block."""
    from extractor.values import letters

    found = labels(text)
    for item in found:
        if item.concept == "supplier" and (name := _name(item)) is not None and "@" not in name:
            return name
    # The letterhead ends where the invoice's dates, parties or sums begin (its number may be its title).
    first = min((item.at for item in found if item.concept not in ("supplier", "number", "tax_id", "currency")),
                default=len(text))
    labeled = {text.rfind("\n", 0, item.at) + 1 for item in found}  # the starts of label lines
    blocks = _blocks(text, "customer")
    names: list[str] = []
    for a, b in tables.line_spans(text[:first])[:LETTERHEAD_LINES]:
        line = " ".join(text[a:b].strip(" #*_>\t").split())
        if not line or len(line) > 80 or a in labeled or any(lo <= a < hi for lo, hi in blocks):
            continue
        folded = fold(line).strip(" :")
        company = letters.legal_form(line) is not None  # "Harbor Office Supply Inc." ends with a dot, "3M AG" a digit
        if folded in _TITLES or "@" in line or (not company and (_SENTENCE.search(line) or _ADDRESS.search(line))):
            continue
        if not re.match(r"[^\W\d_]", line) or len(line.split()) > 8:
            continue
        names.append(line)
    legal = [n for n in names if letters.legal_form(n) is not None]
    return (legal or names)[0] if names else None
