"""Typed values found in a document without a model: e-mail addresses, phone numbers, URLs, dates,
durations, money amounts and the document's language.

Each finder returns `Candidate`s (the text as written, where it is, and the typed value), in document
order, for the field-by-field strategy (`extractor.extraction.fields`) to use directly when there is exactly one,
or to offer to the model as the only choices. Maintained libraries do the parsing where one exists
(phonenumbers, dateparser, py3langid, babel's currency list); the patterns here only find spans.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Candidate:
    text: str  # as written in the document
    start: int
    end: int
    value: Any  # the typed value (str, float, date, dict for money)


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+[^\s<>\"')\].,;:!?]", re.IGNORECASE)


def _unique(found: list[Candidate], key: Any = None) -> list[Candidate]:
    seen: set[Any] = set()
    out = []
    for cand in found:
        k = key(cand) if key else cand.value
        if k not in seen:
            seen.add(k)
            out.append(cand)
    return out


def emails(text: str) -> list[Candidate]:
    return _unique([Candidate(m.group(0), m.start(), m.end(), m.group(0).lower()) for m in _EMAIL.finditer(text)])


def urls(text: str) -> list[Candidate]:
    return _unique([Candidate(m.group(0), m.start(), m.end(), m.group(0)) for m in _URL.finditer(text)])


# Regions tried for numbers written without a country code (most to least common in letters we see);
# a number must be valid in the region to count, so a wrong region finds nothing rather than noise.
_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CH", "AT", "SE", "PL", "IE", "AU", "CA", "IN",
            "BR", "JP", "CZ", "PT", "BE", "DK", "NO", "FI", "ZA", "AE", "SG", "MA", "NG", "KE", "GH", "MX",
            "RO", "TR", "CN", "KR", "NZ")


def phones(text: str) -> list[Candidate]:
    """Phone numbers as written (phonenumbers' matcher, valid numbers only), one per national number."""
    import phonenumbers

    found: dict[tuple[int, int], Candidate] = {}
    for region in _REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            span = (match.start, match.end)
            if len(re.sub(r"\D", "", match.raw_string)) < 7:
                continue  # postal codes, amounts
            if not any(s <= span[0] < e or span[0] <= s < span[1] for s, e in found):
                found[span] = Candidate(match.raw_string, match.start, match.end, match.raw_string)
    digits = {c.value: str(phonenumbers.parse(c.value, "US").national_number) if c.value.startswith("+")
              else re.sub(r"\D", "", c.value).lstrip("0") for c in found.values()}
    return _unique(sorted(found.values(), key=lambda c: c.start), key=lambda c: digits[c.value])


_FULL_DATE_HINT = re.compile(r"\d")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")


LONG_TEXT = 20_000  # characters past which dates are searched only around years
_AROUND_YEAR = 80  # characters searched on each side of a year: a written-out date is shorter


def dates(text: str, language: str | None = None) -> list[Candidate]:
    """Calendar dates with day, month and year (dateparser's multilingual search).

    A long text is searched only in windows around its years (every date kept has one): dateparser took 40 s on
    a 200,000-character pack, and grows with the text (measured)."""
    if len(text) <= LONG_TEXT:
        return _unique(_dates(text, language))
    windows: list[list[int]] = []
    for year in _YEAR.finditer(text):
        lo, hi = max(0, year.start() - _AROUND_YEAR), min(len(text), year.end() + _AROUND_YEAR)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    out: list[Candidate] = []
    for lo, hi in windows:
        out += [Candidate(c.text, c.start + lo, c.end + lo, c.value) for c in _dates(text[lo:hi], language)]
    return _unique(out)


def _dates(text: str, language: str | None) -> list[Candidate]:
    from dateparser.search import search_dates

    languages = [language] if language else None
    original = text
    # French ordinals of the first day ("1er novembre 2026") are no date to dateparser: searched as "1 novembre",
    # offsets mapped back past each cut
    cuts = [m.start(1) + 1 for m in _ORDINAL_FIRST.finditer(text)]
    text = _ORDINAL_FIRST.sub(r"\1", text)

    def back(offset: int) -> int:
        return offset + sum(2 for n, cut in enumerate(cuts) if cut - 2 * n <= offset)
    try:
        hits = search_dates(text, languages=languages,
                            settings={"REQUIRE_PARTS": ["day", "month", "year"], "PREFER_DAY_OF_MONTH": "first"}) or []
    except Exception:  # dateparser raises on some inputs (unknown language, odd tokens): no dates then
        hits = []
    out: list[Candidate] = []
    position = 0
    for written, when in hits:
        year = _YEAR.search(written)
        # Relative phrases ("two months", "today") come back as dates too: keep day-month-year mentions only.
        if year is None or (not _FULL_DATE_HINT.search(written[: year.start()] + written[year.end():]) and \
                not re.search(r"[A-Za-zÀ-ÿ]{3,}", written[: year.start()])):
            continue
        start = text.find(written, position)
        if start < 0:
            start = text.find(written)
        if start < 0:
            continue
        position = start + len(written)
        first, last = back(start), back(start + len(written) - 1) + 1
        out.append(Candidate(original[first:last].strip(), first, last,
                             _numeric_order(written.strip(), when.date(), language)))
    return out


_ORDINAL_FIRST = re.compile(r"\b(1)(?:er|re)(?=\s)", re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2((?:19|20)\d{2})")


def _numeric_order(written: str, parsed: dt.date, language: str | None) -> dt.date:
    """A date written in digits, in the order its writer meant: dotted or dashed ("11.09.2026") is day first in
    every locale that writes it so; slashed is month first in English ("10/31/2026") and day first elsewhere
    ("11/09/2026" in French), unless only the other order is a date. dateparser read "11.09.2026" as 9 November
    even with languages=["de"] (measured: 7 of the 30 sample invoices' dates)."""
    match = _NUMERIC_DATE.fullmatch(written)
    if match is None:
        return parsed
    first, mark, second, year = int(match.group(1)), match.group(2), int(match.group(3)), int(match.group(4))
    day_first = mark in ".-" or (language or "en") != "en"
    orders = [(first, second), (second, first)] if day_first else [(second, first), (first, second)]
    for day, month in orders:
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    return parsed


# -- durations ("three months", "6 weeks", "quatre années et demie") -----------------------------------------

_NUMBER_WORDS = {
    # en
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    # de
    "ein": 1, "eine": 1, "einen": 1, "einem": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6,
    "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "zwanzig": 20,
    # fr
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "neuf": 9,
    "dix": 10, "onze": 11, "douze": 12, "vingt": 20,
    # es / pt / it
    "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8,
    "nueve": 9, "diez": 10, "doce": 12, "um": 1, "uma": 1, "dois": 2, "duas": 2, "três": 3, "quatro": 4,
    "oito": 8, "nove": 9, "dez": 10, "due": 2, "tre": 3, "sei": 6, "sette": 7, "otto": 8, "dieci": 10,
}
_HALF = r"(?:\s+(?:and\s+a\s+half|et\s+demie?|y\s+medio|e\s+mezzo|e\s+meio|und\s+ein\s+halb)|\s*½)?"
_UNITS = {
    "day": r"days?|tagen?|jours?|d[ií]as?|giorni|dni",
    "week": r"weeks?|wochen?|semaines?|semanas?|settimane|tygodni[ea]?",
    "month": r"months?|monate?n?|mois|mes(?:es)?|mesi|miesi[aą]c[ey]?|miesi[eę]cy",
    "year": r"years?|yrs?|jahre?n?|ans|ann[ée]es?|a[ñn]os|anni|lat[a]?",
}
_IN_DAYS = {"day": 1.0, "week": 7.0, "month": 30.0, "year": 365.0}


@functools.cache
def _duration_pattern() -> re.Pattern[str]:
    words = "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS), key=len, reverse=True))
    units = "|".join(f"(?P<{name}>{pattern})" for name, pattern in _UNITS.items())
    halves = r"and\s+a\s+half|et\s+demie?|y\s+medio|e\s+mezzo|e\s+meio|und\s+ein\s+halb"
    return re.compile(rf"(?<![\w.,])(?P<n>\d+(?:[.,]\d+)?|{words})(?:\s+(?:{halves}))?[\s-]+(?:full[\s-]+)?"
                      rf"(?:{units})\b{_HALF}", re.IGNORECASE)


def durations(text: str, unit: str) -> list[Candidate]:
    """Spans of time ("three months", "6 weeks", "4.5 years"), converted to `unit` (day/week/month/year)."""
    out: list[Candidate] = []
    for match in _duration_pattern().finditer(text):
        raw = match.group("n").lower()
        number = float(raw.replace(",", ".")) if raw[0].isdigit() else float(_NUMBER_WORDS[raw])
        written = match.group(0)
        if re.search(r"half|demi|medio|mezzo|meio|halb|½", written, re.IGNORECASE):
            number += 0.5
        found = next(name for name in _UNITS if match.group(name))
        value = number * _IN_DAYS[found] / _IN_DAYS[unit]
        if unit == "year" and found == "month":
            value = round(value * 2) / 2  # 54 months: 4.5 years
        elif unit == "day":
            value = round(value)
        out.append(Candidate(written.strip(), match.start(), match.end(), round(value, 2)))
    return out


# -- money -----------------------------------------------------------------------------------------------------

_SYMBOLS = {"US$": "USD", "$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "R$": "BRL", "C$": "CAD",
            "CA$": "CAD", "A$": "AUD", "AU$": "AUD", "S$": "SGD", "NZ$": "NZD", "HK$": "HKD", "zł": "PLN",
            "Fr.": "CHF", "kr": "SEK", "Kč": "CZK", "₺": "TRY", "₩": "KRW", "₦": "NGN", "R": "ZAR"}
_WORDS = {"euro": "EUR", "euros": "EUR", "eur": "EUR", "dollars": "USD", "pounds": "GBP", "rupees": "INR",
          "yen": "JPY", "francs": "CHF", "złotych": "PLN", "zloty": "PLN", "reais": "BRL", "rand": "ZAR",
          "dirhams": "AED", "dirham": "AED", "lakh": "INR", "lakhs": "INR", "korun": "CZK", "kronor": "SEK",
          "lei": "RON"}
_PERIOD_WORDS = {
    "year": r"years?|yearly|annual(?:ly)?|annum|p\.?\s?a\.?|jahr|j[äa]hrlich|brutto\s*jahr\w*|an(?:nuels?)?|annuel\w*"
            r"|a[ñn]o|anual(?:es)?|anno|annu[io]|rok|rocznie|ano",
    "month": r"months?|monthly|mo|monat\w*|mois|mensuel\w*|mes|mensual\w*|mese|mensil\w*|miesi\w+|m[êe]s|mensal",
    "day": r"days?|daily|diem|tag\w*|jour\w*|d[ií]a|giorn\w+|dzie\w+|dia",
    "hour": r"hours?|hourly|hr|h|stunde\w*|heure\w*|hora|ora|godzin\w*",
}


@functools.cache
def _iso_codes() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def money_codes() -> frozenset[str]:
    """The ISO 4217 codes babel knows."""
    return _iso_codes()


@functools.cache
def _money_pattern() -> re.Pattern[str]:
    symbols = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
    words = "|".join(sorted(_WORDS, key=len, reverse=True))
    cur = rf"(?:(?-i:\b[A-Z]{{3}}\b)|{symbols}|\b(?:{words})\b)"
    num = r"\d{1,3}(?:[,.\u00a0\u202f' ]\d{2,3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
    mult = r"(?:\s?(?:k|K|m|M|mn|million|lakhs?|LPA)\b)?"
    amount = rf"(?:{cur}\s?)?(?:{num}){mult}(?:\s?{cur})?"
    sep = r"\s?(?:-|–|—|to|and|bis|à|et|a|y|e|do|und)\s?"
    return re.compile(rf"(?<![\w.,])(?P<a>{amount})(?:{sep}(?P<b>{amount}))?", re.IGNORECASE)


def _number(text: str) -> float | None:
    text = text.strip()
    if re.fullmatch(r"\d+(?:[.,]\d{1,2})?", text):
        return float(text.replace(",", "."))
    digits = re.sub(r"[^\d]", "", text)
    return float(digits) if digits else None


def _amount(text: str) -> tuple[float | None, str | None]:
    """(number, currency code) of one amount such as "€85k", "85,000 EUR", "32 lakh"."""
    currency = None
    codes = _iso_codes()
    for token in re.findall(r"[A-Z]{3}\b", text):
        if token in codes:
            currency = token
    if currency is None:
        for symbol in sorted(_SYMBOLS, key=len, reverse=True):
            if symbol in text and (symbol != "R" or re.search(r"(?<![A-Za-z])R\s?\d", text)) and \
                    (symbol != "kr" or re.search(r"\bkr\b", text)):
                currency = _SYMBOLS[symbol]
                break
    if currency is None:
        for word, code in _WORDS.items():
            if re.search(rf"\b{word}\b", text, re.IGNORECASE):
                currency = code
                break
    match = re.search(r"\d[\d,.\u00a0\u202f' ]*", text)
    if match is None:
        return None, currency
    value = _number(match.group(0).strip(" ,.'"))
    tail = text[match.end():].strip().lower()
    multiplier = re.match(r"(k|mn|m|million|lakhs?)\b", tail)
    if value is not None and multiplier is not None:
        value *= {"k": 1_000, "lakh": 100_000, "lakhs": 100_000}.get(multiplier.group(1), 1_000_000)
    return value, currency


_WRITTEN_NUMBER = re.compile(r"[-−–(]?\s?\d[\d,.\u00a0\u202f'’ ]*")


def written_number(text: str) -> float | None:
    """The number a person wrote, in the notations of the locales the evidence search knows: "1,234.56" (en),
    "1.234,56" (de), "1 234,56" (fr, with no-break or narrow spaces), "1'234.56" (CH), "-12.50", "(12.50)",
    with a currency sign or code around it ("€ 1.234,56", "CHF 18.40"). A lone separator followed by exactly
    three digits is a thousands group ("1.234" is 1234, "1,234" is 1234); by one, two or four or more digits it
    is the decimal mark ("18,4", "0,25", "1.2345"). None where no digit is written."""
    match = _WRITTEN_NUMBER.search(text)
    if match is None:
        return None
    written = match.group(0).strip(" \u00a0\u202f,.'’")
    negative = written[:1] in "-−–("
    body = re.sub(r"^[-−–(]\s?", "", written)
    marks = [(i, c) for i, c in enumerate(body) if c in ",."]
    decimal_at = None
    if marks:
        last_at = marks[-1][0]
        tail = len(body) - last_at - 1
        if len({c for _, c in marks}) > 1 or (len(marks) == 1 and tail != 3):
            decimal_at = last_at  # "1.234,56", "1,234.56", "18,4": the last mark of two kinds, or a lone one
        elif len(marks) == 1 and re.search(r"[\u00a0\u202f'’ ]", body):
            decimal_at = last_at  # "1 234,567" with spaces as groups: the comma is the decimal mark
    whole = body[:decimal_at] if decimal_at is not None else body
    fraction = body[decimal_at + 1:] if decimal_at is not None else ""
    digits = re.sub(r"\D", "", whole)
    if not digits:
        return None
    value = float(digits + "." + (re.sub(r"\D", "", fraction) or "0"))
    return -value if negative else value


def money(text: str) -> list[Candidate]:
    """Amounts of money with a currency (a symbol, an ISO code or a currency word), single or ranges;
    value = {"min", "max", "currency", "period"} with period one of year/month/day/hour or None."""
    out: list[Candidate] = []
    codes = _iso_codes()
    for match in _money_pattern().finditer(text):
        written = match.group(0)
        a_value, a_cur = _amount(match.group("a"))
        b_value, b_cur = _amount(match.group("b")) if match.group("b") else (None, None)
        currency = a_cur or b_cur
        if currency is None or a_value is None:
            continue
        iso = re.findall(r"\b[A-Z]{3}\b", written)
        if iso and not any(code in codes for code in iso) and not any(s in written for s in _SYMBOLS):
            continue
        if b_value is not None and re.search(r"(?i)[km]\s*$|lakh", match.group("b")) and a_value < 1000 and \
                not re.search(r"(?i)[km]\b|lakh", match.group("a")):  # "85-95k": both in thousands
            a_value *= b_value / max(_number(re.sub(r"[^\d.,]", "", match.group("b"))) or 1, 1)
        if a_value < 10 and b_value is None and not re.search(r"(?i)[km]\b|lakh|million", written):
            continue  # "3 EUR" mentions are rarely pay
        window = text[match.end(): match.end() + 60]
        before = text[max(0, match.start() - 30): match.start()]
        period = None
        clause = re.split(r"[,;.\n]", window, maxsplit=1)[0]
        for part in (clause[:20], before, window[:30]):
            period = next((name for name, pattern in _PERIOD_WORDS.items()
                           if re.search(rf"(?i)(?<!\w)(?:{pattern})(?!\w)", part)), None)
            if period is not None:
                break
        if period is None and re.search(r"(?i)\bLPA\b|per annum|p\.a\.", written + window[:15]):
            period = "year"
        low, high = (a_value, b_value) if b_value is not None else (a_value, a_value)
        out.append(Candidate(written.strip(), match.start(), match.end(),
                             {"min": low, "max": high, "currency": currency, "period": period}))
    return out


# -- language ---------------------------------------------------------------------------------------------------


def language(text: str) -> str | None:
    """ISO 639-1 code of the text's main language (py3langid), None for an empty text."""
    if not text.strip():
        return None
    import py3langid

    code, _ = py3langid.classify(text)
    return str(code)


def near(text: str, candidates: list[Candidate], keywords: list[str], window: int = 100) -> list[Candidate]:
    """The candidates within `window` characters of a keyword (a word prefix, case- and accent-blind)."""
    from extractor.values.evidence import fold

    if not keywords:
        return []
    folded = fold(text)
    if len(folded) != len(text):
        folded = text.lower()
    hits = [m.start() for m in re.finditer(r"\b(?:" + "|".join(re.escape(k) for k in keywords) + r")", folded)]
    if not hits:
        return []
    return [c for c in candidates if any(c.start - window <= h <= c.end + window // 2 for h in hits)]
