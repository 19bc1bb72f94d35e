"""Where each extracted value stands in the document, or that it is not there at all.

After a value is validated, every leaf (a string, a number, a date, each list item, each nested field
such as `salary.min`) is looked up in the text the model saw, cheapest test first:

- `exact`: the value verbatim (`text[start:end] == value`);
- `normalized`: found after normalizing case, accents, whitespace and punctuation between words, number
  formats (`85000` <- "85,000", "85k", "85.000"), date formats (`2026-02-01` <- "1 February 2026", "1er
  février 2026", "01.02.2026"), currency symbols (`EUR` <- "€"), phone digits;
- `fuzzy`: the closest span scores at least FUZZY_THRESHOLD (rapidfuzz's partial ratio, 0-100);
- `derived`: computed or classified rather than copied (enum fields, booleans, and fields a schema
  marks with `json_schema_extra={"x-evidence": "derived"}`); a supporting quote is still attached when
  the value occurs;

How a value is looked up follows its field's kind (`schemas.FieldKind`, decided once per schema): numbers,
dates, currencies and phones by their own patterns, everything else as text.
- `not_found`: nothing in the document supports it.

Every search is a C-speed scan (str.find, one compiled regex per value, rapidfuzz on a few windows
around the value's words), never a quadratic loop, so a 20 MB text is grounded in seconds.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
import itertools
import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from extractor.schemas import FieldKind, field_kinds

FUZZY_THRESHOLD = 85.0  # rapidfuzz partial_ratio (0-100) a span needs to count as `fuzzy` support
# A fuzzy span widened to whole words is scored as a whole (rapidfuzz ratio): "Milan, Italy" in "Milano, Italia"
# scores 85, "Excel" in "Excellent" 71, "Java" in "JavaScript" 57, "React" in "Reactive" 77.
WIDENED_THRESHOLD = 80.0
REVIEW_THRESHOLD = 0.5  # a document needs review when any value's confidence is below this
STATUSES = ("exact", "normalized", "fuzzy", "derived", "not_found")
# Confidence of a value from its evidence alone (see `confidence`).
STATUS_CONFIDENCE = {"exact": 0.95, "normalized": 0.9, "fuzzy": 0.6, "derived": 0.7, "not_found": 0.05}
EVIDENCE_KEY = "_evidence"  # where a journal row keeps its evidence (not a column of results.parquet)
EVIDENCE_COLUMNS = {"doc_id": "String", "field": "String", "value": "String", "quote": "String",
                    "start": "Int64", "end": "Int64", "page": "Int64", "status": "String",
                    "confidence": "Float64", "score": "Float64", "schema_version": "String", "model": "String",
                    "extracted_at": "String", "bbox": "List(Float64)", "ocr_confidence": "Float64",
                    "probability": "Float64"}


class OcrBox(Protocol):
    """A line of OCR'd text (extractor.documents.Box): `text[start:end]` stands at `bbox` on `page`, read with
    `confidence`; bbox is (x0, y0, x1, y1) as fractions of the page, origin top-left."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def page(self) -> int: ...
    @property
    def bbox(self) -> tuple[float, float, float, float]: ...
    @property
    def confidence(self) -> float: ...


@dataclass(frozen=True)
class Leaf:
    """One value to ground: its dotted path (`skills[2]`, `salary.min`), value and kind."""

    field: str
    value: Any
    kind: str  # text | email | phone | number | date | currency | derived (`grounded_as`)


@dataclass(frozen=True)
class Evidence:
    field: str
    value: str
    quote: str | None
    start: int | None
    end: int | None
    page: int | None
    status: str
    confidence: float
    score: float | None = None  # the fuzzy match's score, when fuzzy
    # Read by OCR: the quote's box on its page (x0, y0, x1, y1, fractions of the page, origin top-left) and the
    # lowest OCR confidence of the lines it spans (folded into `confidence`); None for text-layer documents.
    bbox: tuple[float, float, float, float] | None = None
    ocr_confidence: float | None = None
    # The model's own probability of the value (its tokens' geometric mean, `answer_probabilities`), where the
    # server gave token log probabilities (`--logprobs`); folded into `confidence`.
    probability: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)  # flat fields only: dataclasses.asdict's deep copy costs ~10x more
        if self.bbox is not None:
            out["bbox"] = list(self.bbox)
        return out

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Evidence:
        """One row of evidence.parquet (extra columns such as doc_id are ignored)."""
        return cls(field=row["field"], value=row["value"] if row.get("value") is not None else "",
                   quote=row.get("quote"), start=row.get("start"), end=row.get("end"), page=row.get("page"),
                   status=row.get("status") or "not_found", confidence=float(row.get("confidence") or 0.0),
                   score=row.get("score"), bbox=_bbox(row.get("bbox")),
                   ocr_confidence=row.get("ocr_confidence"), probability=row.get("probability"))

    @property
    def group(self) -> str:
        """The field without list indexes (`skills[2]` -> `skills`)."""
        return re.sub(r"\[\d+\]", "", self.field)

    def fits(self, text: str) -> bool:
        """Its offsets still point at its quote in `text`."""
        return (self.start is not None and self.end is not None and self.quote is not None
                and 0 <= self.start < self.end <= len(text) and text[self.start:self.end] == self.quote)


# -- what a schema's fields are ---------------------------------------------------------------------------


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    """A stored bbox (a list of four numbers) as a tuple; None where there is none."""
    if value is None or len(value) != 4:
        return None
    x0, y0, x1, y1 = (float(v) for v in value)
    return x0, y0, x1, y1


def grounded_as(kind: FieldKind) -> str:
    """How a field's values are looked up (a Leaf's kind), from its kind (`schemas.FieldKind`): derived ones
    (choices, booleans, fields marked x-evidence) are not expected verbatim; a name is text."""
    if kind.nested is not None:
        return "nested"
    if kind.derived:
        return "derived"
    return "text" if kind.kind == "name" else kind.kind


def derived_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of the fields whose values are derived, not copied."""
    out: set[str] = set()
    for name, kind in field_kinds(model).items():
        if kind.nested is not None:
            out |= derived_fields(kind.nested, f"{prefix}{name}.")
        elif kind.derived:
            out.add(prefix + name)
    return out


def leaves(model: type[BaseModel], value: Mapping[str, Any], prefix: str = "") -> Iterator[Leaf]:
    """Every non-empty leaf value of a validated result (as `model_dump(mode="json")` gives it)."""
    for name, kind in field_kinds(model).items():
        item = value.get(name)
        if item is None or item == "" or item == []:
            continue
        path = prefix + name
        if kind.nested is not None:
            if kind.is_list:
                for i, sub in enumerate(item):
                    if isinstance(sub, Mapping):
                        yield from leaves(kind.nested, sub, f"{path}[{i}].")
            elif isinstance(item, Mapping):
                yield from leaves(kind.nested, item, path + ".")
        elif kind.is_list:
            for i, sub in enumerate(item):
                if sub is not None and sub != "":
                    yield Leaf(f"{path}[{i}]", sub, grounded_as(kind))
        else:
            yield Leaf(path, item, grounded_as(kind))


# -- searching one document ---------------------------------------------------------------------------------


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@functools.cache
def _fold_table() -> dict[int, str]:
    """str.translate table folding accented Latin letters (lower case) to their base letter, one char to
    one char, so offsets in the folded text are offsets in the original."""
    table: dict[int, str] = {}
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = _strip_accents(char).lower()
        if len(base) == 1 and base.isascii() and base.isalpha() and char.lower() == char:
            table[code] = base
    return table


def fold(text: str) -> str:
    """Lower case without accents; the same length as `text` where lower-casing keeps it (checked by callers)."""
    return text.lower().translate(_fold_table())


@functools.cache
def _accent_classes() -> dict[str, str]:
    """Base letter -> regex class of it and its accented forms: the fold table read backwards."""
    variants: dict[str, set[str]] = {}
    for code, base in _fold_table().items():
        variants.setdefault(base, {base}).add(chr(code))
    return {base: "[" + "".join(sorted(chars)) + "]" for base, chars in variants.items()}


def _word_pattern(word: str) -> str:
    """An accent-blind pattern of a word (used with re.IGNORECASE)."""
    classes = _accent_classes()
    return "".join(classes.get(c, re.escape(c)) for c in _strip_accents(word).lower())


_WORD = re.compile(r"\w+")
_SEPARATOR = r"[\W_]+"
# In text read by OCR the gap between two words may be lost ("AnnaSchmidt", "um18 Prozent": 6 merges on a sample
# letter's image-only PDF at 200 dpi), so words may also touch there.
_OCR_SEPARATOR = r"[\W_]*"


def normalized_pattern(value: str, ocr: bool = False) -> re.Pattern[str] | None:
    """Case-, accent-, whitespace- and punctuation-blind pattern of a text value; None without words. `ocr`: the
    words may touch (a gap OCR lost)."""
    words = _WORD.findall(value)
    if not words:
        return None
    body = (_OCR_SEPARATOR if ocr else _SEPARATOR).join(_word_pattern(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
                 "twenty"]
# Thousands separators of the locales the parsers know: "," (en), "." (de), "'" and "’" (CH), spaces, no-break
# and narrow no-break spaces (fr); the decimal mark is "." or ",", never the group separator it is written with.
_GROUPS = ",.'’ \u00a0\u202f"
_NOTATIONS = ((r"[,'’ \u00a0\u202f]", r"\."), (r"[.'’ \u00a0\u202f]", ","))
_CURRENCY_SIGN = r"(?:[$€£¥₹]|US\$|(?-i:[A-Z]{3})\s)"
_MULTIPLIERS = ((1_000, r"[kK]"), (1_000_000, r"(?:M|[mM]illion|[mM]io\.?|[mM]n)"),
                (100_000, r"(?:lakhs?|[lL]acs?|LPA|L)"))
_RANGE_DASH = r"\s?(?:-|–|—|to|bis|à)\s?"


def _grouped(digits: str, sizes: Sequence[int], sep: str) -> str:
    """`digits` with an optional `sep` between groups of `sizes` (from the right; the last size repeats)."""
    groups: list[str] = []
    rest, i = digits, 0
    while len(rest) > sizes[min(i, len(sizes) - 1)]:
        size = sizes[min(i, len(sizes) - 1)]
        groups.insert(0, rest[-size:])
        rest = rest[:-size]
        i += 1
    groups.insert(0, rest)
    return f"{sep}?".join(groups)


def _decimal(value: float) -> str:
    return re.escape(f"{value:g}").replace(r"\.", "[.,]")


def _digits(value: float) -> tuple[str, str]:
    """Integer and fraction digits of |value| as it would be written (no exponent, no trailing zeros)."""
    whole, _, fraction = f"{abs(value):.10f}".rstrip("0").partition(".")
    return whole, fraction


def number_pattern(value: float) -> re.Pattern[str]:
    """The ways a number is written: 85000, 85,000, 85.000, 85'000, 85 000, 85k, 3,088.34, 3.088,34, 18.40, 8.5,
    8,5, 9.5M, 32 lakh, eight; the lower bound of a range that shares its multiplier ("$80-95k" for 80000); a
    negative number only with its sign or in parentheses. Never inside a longer number or a word: 20 is not in
    "$11.20", 8 is not in "M8", 80 is not in "80k"."""
    whole, fraction = _digits(value)
    forms: list[str] = []
    for group, mark in _NOTATIONS:
        for sizes in ([3], [3, 2]):  # thousands; Indian lakh grouping (12,34,567)
            body = _grouped(whole, sizes, group)
            # Trailing zeros as money is written (18.40, 85,00); "85,000" is never 85.
            forms.append(body + (f"{mark}{fraction}0{{0,2}}" if fraction else rf"(?:{mark}0{{1,2}})?"))
    bare = f"(?:{'|'.join(dict.fromkeys(forms))})"
    scaled: list[str] = []
    n = abs(value)
    for factor, word in _MULTIPLIERS:
        if n and n >= factor / 10 and (n * 100 / factor).is_integer():
            short = _decimal(n / factor)
            scaled.append(rf"{short}\s?{word}(?![^\W\d_])")
            # "$80-95k": the lower bound written without the multiplier it shares with the upper one
            scaled.append(rf"{short}(?={_RANGE_DASH}{_CURRENCY_SIGN}?\s?\d+(?:[.,]\d+)?\s?{word}(?![^\W\d_]))")
    words = [_NUMBER_WORDS[int(n)]] if float(n).is_integer() and n < len(_NUMBER_WORDS) and value >= 0 else []
    # Bare digits followed by a multiplier are another number (80 in "80k" is 80,000).
    multiplied = "|".join(word for _, word in _MULTIPLIERS)
    digits = rf"{bare}(?!\s?(?:{multiplied})(?![^\W\d_]))"
    body = "|".join([*scaled, digits, *(rf"(?<![^\W\d_]){w}(?![^\W\d_])" for w in words)])
    # Not the fraction or a later group of a longer number, and not glued to a word ("M8", "Ref550142").
    before = r"(?<![\d])(?<!\d[.,'’])(?<![^\W\d_])"
    after = r"(?![\d]|[.,'’]\d)"
    if value < 0:
        sign = rf"(?:{_CURRENCY_SIGN}\s?)?[-−–]\s?(?:{_CURRENCY_SIGN}\s?)?"
        return re.compile(rf"(?:{sign}|\(\s?(?:{_CURRENCY_SIGN}\s?)?){before}(?:{body}){after}", re.IGNORECASE)
    return re.compile(rf"{before}(?:{body}){after}", re.IGNORECASE)


_MONTH_LOCALES = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "da", "nb", "ro", "cs")


@functools.cache
def _month_names(month: int) -> str:
    """Regex alternation of the month's wide and abbreviated names in several languages (babel/CLDR)."""
    from babel.dates import get_month_names

    names: set[str] = set()
    for locale in _MONTH_LOCALES:
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                name = get_month_names(width, context, locale=locale)[month]
                names.add(name.lower().rstrip("."))
    return "|".join(sorted((_word_pattern(n) + r"\.?" for n in names), key=len, reverse=True))


def date_pattern(value: dt.date) -> re.Pattern[str]:
    """The ways a date is written: 2026-02-01, 01.02.2026, 1/2/2026, 2/1/2026, 1 February 2026, February 1st,
    2026, 1er février 2026, 1. Februar 2026, 1 de febrero de 2026, 2026年2月1日; "February 2026" for a 1st."""
    y, m, d = value.year, value.month, value.day
    day = rf"0?{d}(?:st|nd|rd|th|er|º|\.)?"
    month = rf"(?:{_month_names(m)})"
    forms = [
        rf"{y}[-/.]0?{m}[-/.]0?{d}",
        rf"0?{d}[./-]0?{m}[./-](?:{y}|{y % 100:02d})",
        rf"0?{m}/0?{d}/(?:{y}|{y % 100:02d})",
        rf"0?{d}\.\s0?{m}\.\s{y}",
        rf"{day}\s*(?:de\s+)?{month}\s*,?\s*(?:de\s+)?{y}",
        rf"{month}\s+{day},?\s+{y}",
        rf"{y}年0?{m}月0?{d}日",
    ]
    if d == 1:  # "from March 2027" is the first of the month in a date field
        forms.append(rf"(?:(?:early|beginning of|start of|anfang|début|principios de)\s+)?{month}\s+(?:de\s+)?{y}")
        forms.append(rf"{y}年0?{m}月")
    return re.compile(rf"(?<![\w]){'|'.join(forms)}(?![\d])", re.IGNORECASE)


_CURRENCY_WORDS = {"EUR": ["€", "euro", "euros", "eur"], "USD": ["$", "US$", "dollar", "dollars"],
                   "GBP": ["£", "pound", "pounds", "sterling"], "JPY": ["¥", "円", "yen"],
                   "INR": ["₹", "rupee", "rupees", "rs.", "lakh", "lpa"], "CHF": ["fr.", "franc", "francs"],
                   "SEK": ["kr", "kronor"], "NOK": ["kr", "kroner"], "DKK": ["kr", "kroner"],
                   "PLN": ["zł", "zloty", "złotych"], "CZK": ["kč", "czk", "koruna"], "BRL": ["r$", "reais", "real"],
                   "ZAR": ["rand"], "AED": ["dirham", "dirhams"], "MAD": ["dirham", "dirhams", "dh"],
                   "RON": ["lei", "leu"], "SGD": ["s$"], "AUD": ["a$"], "CAD": ["c$"]}


def currency_pattern(code: str) -> re.Pattern[str]:
    """An ISO 4217 code, its symbols (babel/CLDR) and common names."""
    from babel.numbers import get_currency_symbol

    words = {code.lower(), *(w.lower() for w in _CURRENCY_WORDS.get(code.upper(), []))}
    for locale in ("en", "en_US", "de", "fr"):
        try:
            words.add(get_currency_symbol(code.upper(), locale=locale).lower())
        except Exception:  # an unknown code has no symbol: the code itself still counts
            continue
    forms = [re.escape(w) if not w[-1].isalnum() else rf"(?<![\w]){re.escape(w)}(?![\w])"
             for w in sorted(words, key=len, reverse=True) if w]
    return re.compile("|".join(forms), re.IGNORECASE)


_PHONE = re.compile(r"\+?\(?\d[\d\s().\-/\u00a0]{4,}\d")


def _phone_digits(text: str) -> str:
    """The digits that dial a number: without the trunk prefix written "(0)" after a country code
    ("+49 (0)30 1234-5678" is +49 30 12345678) and without leading zeros."""
    return re.sub(r"\D", "", re.sub(r"\(\s*0\s*\)", "", text)).lstrip("0")


class Grounder:
    """Finds the values of one document in its text; `pages` are the 1-based pages' start offsets, `boxes` the
    OCR'd lines (in text order) where some pages were read by OCR."""

    def __init__(self, text: str, pages: Sequence[int] | None = None, boxes: Sequence[OcrBox] = ()) -> None:
        self.text = text
        self.pages = list(pages) if pages else None
        self.boxes = list(boxes)
        self._box_starts = [box.start for box in self.boxes]
        self._folded: str | None = None
        self._cues: tuple[str, ...] = ()  # the words of the field being grounded (see `_likeliest`)

    @property
    def folded(self) -> str | None:
        """The text lower-cased and accent-folded, offset for offset; None where folding changes lengths."""
        if self._folded is None:
            folded = fold(self.text)
            self._folded = folded if len(folded) == len(self.text) else ""
        return self._folded or None

    def page(self, start: int) -> int | None:
        return bisect.bisect_right(self.pages, start) if self.pages else None

    def located(self, start: int, end: int) -> tuple[tuple[float, float, float, float] | None, float | None]:
        """(bbox, OCR confidence) of a span read by OCR: the union of the boxes of its lines on the page it starts
        on, and the lowest confidence among them; (None, None) where the span was not OCR'd."""
        if not self.boxes:
            return None, None
        first = max(0, bisect.bisect_right(self._box_starts, start) - 1)
        hit = []
        for box in self.boxes[first:]:
            if box.start >= end:
                break
            if box.end > start:
                hit.append(box)
        if not hit:
            return None, None
        same = [box for box in hit if box.page == hit[0].page]
        bbox = (min(b.bbox[0] for b in same), min(b.bbox[1] for b in same), max(b.bbox[2] for b in same),
                max(b.bbox[3] for b in same))
        return bbox, min(box.confidence for box in hit)

    def ground(self, leaf: Leaf, agreement: float | None = None) -> Evidence:
        value = leaf.value
        shown = value if isinstance(value, str) else _text(value)
        self._cues = _cue_words(leaf.field)
        found = self._find(leaf)
        if leaf.kind == "derived":
            status = "derived"
        elif found is None:
            status = "not_found"
        else:
            status = found[2]
        score = found[3] if found is not None else None
        start, end = (found[0], found[1]) if found is not None else (None, None)
        bbox, read = self.located(start, end) if start is not None and end is not None else (None, None)
        return Evidence(
            field=leaf.field, value=shown, quote=self.text[start:end] if start is not None else None,
            start=start, end=end, page=self.page(start) if start is not None else None, status=status,
            confidence=confidence(status, score, agreement, read), score=score, bbox=bbox, ocr_confidence=read)

    def ground_within(self, leaf: Leaf, lo: int, hi: int, agreement: float | None = None) -> Evidence:
        """`ground` in text[lo:hi] only (offsets and pages still the whole text's)."""
        part = Grounder(self.text[lo:hi])
        evidence = part.ground(leaf, agreement)
        if evidence.start is None or evidence.end is None:
            return evidence
        start, end = evidence.start + lo, evidence.end + lo
        return Evidence(**{**evidence.as_dict(), "start": start, "end": end, "page": self.page(start)})

    def _find(self, leaf: Leaf) -> tuple[int, int, str, float | None] | None:
        value, kind = leaf.value, leaf.kind
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float) or (kind == "number" and _as_number(value) is not None):
            return self._regex(number_pattern(float(value)), _text(value))
        if kind == "date" or (kind == "derived" and _as_date(value) is not None):
            day = _as_date(value)
            return self._date(day, str(value)) if day is not None else self._text(str(value))
        if kind == "currency":
            return self._exact(str(value)) or self._regex(currency_pattern(str(value)), str(value))
        if kind == "phone":
            return self._exact(str(value)) or self._phone(str(value))
        return self._text(str(value), fuzzy=kind != "derived")

    def _exact(self, value: str) -> tuple[int, int, str, float | None] | None:
        start = self.text.find(value)
        while start >= 0:
            end = start + len(value)
            if _bounded(self.text, start, end):
                return start, end, "exact", None
            start = self.text.find(value, start + 1)
        return None

    def _date(self, day: dt.date, plain: str) -> tuple[int, int, str, float | None] | None:
        """A date mention contains its year's last two digits: the full pattern runs only around them."""
        pattern = date_pattern(day)
        if len(self.text) <= 100_000:
            return self._regex(pattern, plain)
        year = f"{day.year % 100:02d}"
        position = self.text.find(year)
        seen = 0
        while position >= 0 and seen < 10_000:
            match = pattern.search(self.text, max(0, position - 60), position + 20)
            if match is not None:
                return match.start(), match.end(), "exact" if match.group(0) == plain else "normalized", None
            position = self.text.find(year, position + 1)
            seen += 1
        return self._regex(pattern, plain) if seen >= 10_000 else None

    def _regex(self, pattern: re.Pattern[str], plain: str) -> tuple[int, int, str, float | None] | None:
        match = self._likeliest(pattern.finditer(self.text))
        if match is None:
            return None
        return match.start(), match.end(), "exact" if match.group(0).strip("( ") == plain else "normalized", None

    def _likeliest(self, matches: Iterator[re.Match[str]], most: int = 200) -> re.Match[str] | None:
        """Of several places a value occurs, the one its field's own words lead up to on the same line
        ("Total: 120.00" for total_amount, though "120.00" came first as the net); else the first."""
        first = next(matches, None)
        if first is None or not self._cues:
            return first
        best, best_score = first, self._cue_score(first.start())
        for i, match in enumerate(matches):
            if i >= most:
                break
            score = self._cue_score(match.start())
            if score > best_score:
                best, best_score = match, score
        return best

    def _cue_score(self, start: int) -> int:
        line_start = self.text.rfind("\n", 0, start) + 1
        before = fold(self.text[max(line_start, start - 60):start])
        return sum(1 for cue in self._cues if re.search(rf"(?<![^\W\d_]){re.escape(cue)}", before))

    def _text(self, value: str, fuzzy: bool = True) -> tuple[int, int, str, float | None] | None:
        value = value.strip()
        if not value:
            return None
        if found := self._exact(value):
            return found
        if found := self._normalized(value):
            return found
        if "," in value and (found := self._place(value)):
            return found
        if found := self._identifier(value):
            return found
        if found := self._reversed_name(value):
            return found
        return self._fuzzy(value) if fuzzy else None

    def _identifier(self, value: str) -> tuple[int, int, str, float | None] | None:
        """A code with digits (a VAT id, an IBAN, an order number) compared without its spaces and punctuation:
        DE287654321 is "DE 287 654 321", "DE-287.654.321"."""
        chars = re.findall(r"[^\W_]", value)
        if len(chars) < 5 or not any(c.isdigit() for c in chars) or len(value.split()) > 6:
            return None
        body = r"[\s.\-/]?".join(re.escape(c) for c in chars)
        match = re.compile(rf"(?<![^\W_]){body}(?![^\W_])", re.IGNORECASE).search(self.text)
        return (match.start(), match.end(), "normalized", None) if match is not None else None

    def _reversed_name(self, value: str) -> tuple[int, int, str, float | None] | None:
        """A person's name written family name first, as lists and forms do: "MÜLLER, Jürgen" for Jürgen Müller."""
        words = value.split()
        if not 2 <= len(words) <= 4 or any(any(c.isdigit() for c in w) for w in words):
            return None
        pattern = normalized_pattern(f"{words[-1]} {' '.join(words[:-1])}")
        match = pattern.search(self.text) if pattern is not None else None
        return (match.start(), match.end(), "normalized", None) if match is not None else None

    def _normalized(self, value: str, start: int = 0) -> tuple[int, int, str, float | None] | None:
        folded = self.folded
        if folded is not None:  # one plain regex over the folded text: fast on huge documents
            words = _WORD.findall(fold(value))
            if not words:
                return None
            body = (_OCR_SEPARATOR if self.boxes else _SEPARATOR).join(re.escape(w) for w in words)
            match = re.compile(rf"(?<!\w){body}(?!\w)").search(folded, start)
            return (match.start(), match.end(), "normalized", None) if match is not None else None
        pattern = normalized_pattern(value, ocr=bool(self.boxes))
        if pattern is not None and (match := pattern.search(self.text, start)):
            return match.start(), match.end(), "normalized", None
        return None

    def _place(self, value: str) -> tuple[int, int, str, float | None] | None:
        """"City, Country" where the text names the city and the country follows it or is a country's name
        (the schema asks for the country, which a letter often leaves out); the city may be written by another of
        its names in the gazetteer ("Munich, Germany" where the text says "München")."""
        first, *rest = [part.strip() for part in value.split(",") if part.strip()]
        found = self._exact(first) or self._normalized(first)
        if found is None and rest and rest[-1].casefold() in _country_names():
            from extractor.values.places import alternate_names

            found = next((hit for name in alternate_names(first) if (hit := self._normalized(name))), None)
        if found is None or not rest:
            return None
        start, end = found[0], found[1]
        for part in rest:
            near = self._normalized(part, end)
            if near is not None and near[0] - end <= 60:
                end = near[1]
            elif part.casefold() not in _country_names():
                return None
        return start, end, "normalized", None

    def _phone(self, value: str) -> tuple[int, int, str, float | None] | None:
        digits = _phone_digits(value)
        if len(digits) < 6:
            return None
        for match in _PHONE.finditer(self.text):
            # The same number with or without its country code (1-3 digits) or trunk 0: one ends with the
            # other and they differ by no more than a country code, so "Ref 550142" is not +1 416 555 0142.
            found = _phone_digits(match.group(0))
            if len(found) >= 6 and abs(len(found) - len(digits)) <= 3 and (
                    found.endswith(digits) or digits.endswith(found)):
                return match.start(), match.end(), "normalized", None
        return None

    def _fuzzy(self, value: str) -> tuple[int, int, str, float | None] | None:
        """The closest whole-word span: rapidfuzz's partial ratio locates it, then it is widened to whole words,
        an edge word the value does not share is dropped where that scores better, and the span is scored as a
        whole (ratio), so a span shorter than the value or a piece of a longer word does not score 100."""
        from rapidfuzz import fuzz

        needle = fold(value)
        if len(needle) < 4:
            return None  # a short value matches something almost anywhere
        haystack = self.folded or self.text
        best: tuple[float, int, int] | None = None
        for lo, hi in self._windows(value, len(needle)):
            found = fuzz.partial_ratio_alignment(needle, haystack[lo:hi], score_cutoff=FUZZY_THRESHOLD)
            if found is not None and (best is None or found.score > best[0]):
                best = (found.score, lo + found.dest_start, lo + found.dest_end)
        if best is None:
            return self._word_match(value)
        _, start, end = best
        while start < end and not self.text[start].isalnum():
            start += 1
        while end > start and not self.text[end - 1].isalnum():
            end -= 1
        # Evidence is whole words: "Excel" is not found in "Excellent" nor "Java" in "JavaScript".
        while start > 0 and self.text[start - 1].isalnum() and self.text[start].isalnum():
            start -= 1
        while end < len(self.text) and self.text[end].isalnum() and self.text[end - 1].isalnum():
            end += 1
        words = [(m.start(), m.end()) for m in _WORD.finditer(self.text, start, end)]
        spans = {(start, end)}
        if len(words) > 1:  # the span without its first or last word, or both
            spans |= {(words[1][0], end), (start, words[-2][1])}
            if len(words) > 2:
                spans.add((words[1][0], words[-2][1]))
        scored = [(fuzz.ratio(needle, haystack[lo:hi]), -(hi - lo), lo, hi) for lo, hi in spans]
        score, _, start, end = max(scored)
        if score < WIDENED_THRESHOLD:
            return self._word_match(value)
        return start, end, "fuzzy", round(score, 1)

    def _word_match(self, value: str) -> tuple[int, int, str, float | None] | None:
        """The value said in other words around its own: at least three quarters of its words (three or more),
        in order, within a stretch at most twice its length ("The iliopsoas tendon is intact" in "The iliopsoas
        and proximal hamstring tendons are intact"); words compare by stem (a plural's "s" aside) or closely."""
        wanted = [_stem(w) for w in _WORD.findall(fold(value))]
        need = max(3, -(-3 * len(wanted) // 4))
        if len(wanted) < 3 or len(wanted) > 40:
            return None
        haystack = self.folded or self.text
        best: tuple[int, int, int, int] | None = None  # matched, -length, start, end
        for lo, hi in self._windows(value, len(value)):
            tokens = [(m.start() + lo, m.end() + lo, _stem(m.group(0))) for m in _WORD.finditer(haystack[lo:hi])]
            for i, (_, _, first) in enumerate(tokens):
                if not _same_word(first, wanted[0]) and not _same_word(first, wanted[1]):
                    continue
                at, matched, last = 0 if _same_word(first, wanted[0]) else 1, 0, i
                for j in range(i, min(len(tokens), i + 2 * len(wanted))):
                    if at < len(wanted) and _same_word(tokens[j][2], wanted[at]):
                        matched, at, last = matched + 1, at + 1, j
                    elif at + 1 < len(wanted) and _same_word(tokens[j][2], wanted[at + 1]):
                        matched, at, last = matched + 1, at + 2, j
                if matched >= need:
                    candidate = (matched, -(tokens[last][1] - tokens[i][0]), tokens[i][0], tokens[last][1])
                    if best is None or candidate > best:
                        best = candidate
        if best is None:
            return None
        matched, _, start, end = best
        return start, end, "fuzzy", round(100.0 * matched / len(wanted), 1)

    def _windows(self, value: str, width: int, limit: int = 40) -> Iterator[tuple[int, int]]:
        """Stretches of text around the value's words (or the whole of a short text)."""
        if len(self.text) <= 20_000:
            yield 0, len(self.text)
            return
        seen = 0
        haystack = self.folded or self.text
        for word in sorted(set(_WORD.findall(fold(value))), key=len, reverse=True):
            if len(word) < 3:
                continue
            for match in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", haystack):
                yield max(0, match.start() - 2 * width), min(len(self.text), match.end() + 2 * width)
                seen += 1
                if seen >= limit:
                    return


@functools.cache
def _country_names() -> frozenset[str]:
    """Country and territory names in several languages (babel/CLDR), casefolded."""
    from babel import Locale

    names: set[str] = set()
    for locale in ("en", "de", "fr", "es", "it", "pt"):
        names.update(name.casefold() for code, name in Locale.parse(locale).territories.items() if code.isalpha())
    return frozenset(names | {"usa", "us", "uk", "u.s.", "u.k."})


def _stem(word: str) -> str:
    """A folded word without a plural or third-person "s" ("tendons" -> "tendon")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) < 5:
        return False
    from rapidfuzz import fuzz

    return fuzz.ratio(a, b) >= 85.0


@functools.cache
def _cue_words(field: str) -> tuple[str, ...]:
    """The words of a field's own name (`line_items[2].unit_price` -> unit, price), folded."""
    name = re.sub(r"\[\d+\]", "", field).rsplit(".", 1)[-1]
    return tuple(fold(w) for w in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name) if len(w) >= 3)


def _bounded(text: str, start: int, end: int) -> bool:
    """Not a piece of a longer word: 'Go' is not found inside 'Google'."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    first, last = text[start], text[end - 1]
    return not ((first.isalnum() and before.isalnum() and not _cjk(first))
                or (last.isalnum() and after.isalnum() and not _cjk(last)))


def _cjk(char: str) -> bool:
    return "\u3000" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af"


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _as_number(value: Any) -> float | None:
    """A number written as text ("85000" in a text field declared x-kind number); None where it is not one."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- confidence and the document's verdict ---------------------------------------------------------------


# Signals for values whose span is always found (the field strategy snaps the model's answer to a span, so its
# evidence is exact or normalized whatever the answer): measured with tests/test_snapped_confidence.py, a server
# answering a wrong span of the letter for 30% of the field questions (see its numbers there).
UNCUED = 0.75  # a snapped answer with none of its field's cue words before it: 0.95 -> 0.71
SHARED = 0.5  # one value given to two different fields (the applicant's name as the company): -> below 0.5
CUE_WINDOW = 60  # characters before a span (and half as many after) where the field's cue words count
CUE_STOP = frozenset({
    "the", "of", "a", "an", "to", "in", "for", "and", "or", "as", "is", "at", "by", "on", "from", "with", "when",
    "only", "are", "e.g", "eg", "null", "if", "its", "it", "this", "that", "be", "what", "which", "date", "dates",
    "days", "weeks", "months", "years", "number", "given", "compute", "total", "name"})


def cue_words(name: str, description: str = "") -> tuple[str, ...]:
    """Word prefixes (five letters, folded) of a field's name and the first clause of its description: the words
    a document uses where it gives the value ("notice period" for notice_period_days)."""
    words = name.lower().split("_") + re.split(r"\W+", re.split(r"[;(]", description.lower())[0])
    return tuple(sorted({fold(w)[:5] for w in words if len(w) >= 3 and w not in CUE_STOP}))


def cued(text: str, start: int, end: int, cues: Sequence[str]) -> bool:
    """Whether one of `cues` begins a word within CUE_WINDOW characters before the span (or half that after)."""
    around = fold(text[max(0, start - CUE_WINDOW):start] + " " + text[end:end + CUE_WINDOW // 2])
    return any(re.search(rf"(?<!\w){re.escape(cue)}", around) for cue in cues)


def confidence(status: str, score: float | None = None, agreement: float | None = None,
               ocr: float | None = None, *, cue: bool | None = None, shared: bool = False,
               probability: float | None = None) -> float:
    """How far a value can be trusted without labels, 0..1.

    From the evidence: exact 0.95, normalized 0.9, derived 0.7, not_found 0.05; fuzzy from 0.6 at the
    threshold up to 0.85 at a perfect score. For a snapped answer (the span is found whatever the model said)
    `cue` says whether its field's cue words lead up to the span (False: x UNCUED); `shared`: the same value was
    given to another field too (x SHARED). Where the quote was read by OCR, times the OCR confidence o of its
    lines (an exact match in a line read at 0.6 is 0.57, not 0.95: the text itself may be misread). Where the
    document was sampled (self-consistency), the field's agreement a over the K answers is blended in: 0.6 x
    evidence + 0.4 x a. The model's own probability p of the value (its answer's token log probabilities,
    `--logprobs`) is blended in the same way, for it is what the agreement of K samples estimates: 0.6 x evidence
    + 0.4 x p (both known: their mean). Multiplying by p instead flagged 11 of 12 clean letters in
    bench/snapped_confidence.py, a right answer's p being often near 0.6 on a small model.
    """
    base = STATUS_CONFIDENCE[status]
    if status == "fuzzy" and score is not None:
        base += 0.25 * (score - FUZZY_THRESHOLD) / (100.0 - FUZZY_THRESHOLD)
    if ocr is not None:
        base *= max(0.0, min(1.0, ocr))
    if status != "not_found":  # a derived value is judged by cue words only where its extraction doubted it
        base *= UNCUED if cue is False else 1.0
    if status not in ("not_found", "derived"):
        base *= SHARED if shared else 1.0
    model = [max(0.0, min(1.0, x)) for x in (agreement, probability if status != "not_found" else None)
             if x is not None]
    if model:
        base = 0.6 * base + 0.4 * sum(model) / len(model)
    return round(min(1.0, max(0.0, base)), 4)


# A JSON answer's literals: a string (keys among them) or a number. Matched left to right, so digits inside a
# string are part of that string, never a number of their own.
_JSON_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')


def answer_probabilities(reply: str, tokens: Sequence[tuple[str, float]]) -> list[tuple[Any, float]]:
    """Each value a JSON answer gives (a string or number, each item of a list; not the keys), in order, with the
    model's probability of it: the geometric mean of the probabilities of the tokens that wrote its characters
    (exp of their mean log probability, so that a long name is not less likely for its length alone). [] where the
    tokens do not spell the reply (then they cannot be placed)."""
    if not tokens or "".join(token for token, _ in tokens) != reply:
        return []
    ends = list(itertools.accumulate(len(token) for token, _ in tokens))
    out: list[tuple[Any, float]] = []
    for match in _JSON_LITERAL.finditer(reply):
        literal = match.group(0)
        if literal.startswith('"'):
            if reply[match.end():].lstrip().startswith(":"):
                continue  # a key: the grammar wrote it, not the model's reading
            try:
                value: Any = json.loads(literal)
            except ValueError:
                continue
            lo, hi = match.start() + 1, match.end() - 1
        else:
            value, lo, hi = float(literal), match.start(), match.end()
        if hi <= lo:
            continue
        first, last = bisect.bisect_right(ends, lo), bisect.bisect_left(ends, hi)
        logprobs = [tokens[k][1] for k in range(first, min(last, len(tokens) - 1) + 1)]
        out.append((value, round(math.exp(sum(logprobs) / len(logprobs)), 4)))
    return out


def probability_key(value: Any) -> str:
    """How a value is looked up among the probabilities of the answers that gave it: numbers by value (30 and
    30.0 are one), text folded and whitespace-collapsed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return " ".join(fold(str(value)).split())


@dataclass
class Signals:
    """What an extraction knows of its values beyond the text, for their confidence: per field (dotted, no list
    indexes) and value (`probability_key`), the model's probability of a value it gave (`--logprobs`), and the
    values a finder or a letter's convention gave with no sign that they play the field's part (a skill that is a
    capitalized word of prose, `letters.Listed.share`; a duration no cue word of its field stands near): those are
    judged as a snapped span without its cue words (x UNCUED)."""

    probabilities: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    uncued: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def probability(self, field: str, value: Any) -> float | None:
        return self.probabilities.get(field, {}).get(probability_key(value))

    def doubted(self, field: str, value: Any) -> bool:
        return probability_key(value) in self.uncued.get(field, ())

    def merge(self, other: Signals) -> None:
        """Another chunk's signals: the higher probability where two gave one value, every doubt."""
        for path, values in other.probabilities.items():
            mine = self.probabilities.setdefault(path, {})
            for key, p in values.items():
                mine[key] = max(p, mine.get(key, 0.0))
        for path, keys in other.uncued.items():
            self.uncued.setdefault(path, set()).update(keys)

    def __bool__(self) -> bool:
        return bool(self.probabilities or self.uncued)


def ground(model: type[BaseModel], value: Mapping[str, Any], text: str, pages: Sequence[int] | None = None,
           agreement: Mapping[str, float] | None = None, judged: Collection[str] | None = None,
           boxes: Sequence[OcrBox] = (), signals: Signals | None = None) -> list[Evidence]:
    """Evidence for every leaf of a validated result (`ground_with_flags` without its review flags)."""
    return ground_with_flags(model, value, text, pages, agreement, judged, boxes, signals)[0]


# An item of a list of objects (a line item, a job) stands in one place: the line where its anchor (its first
# text value, the description) is found, and the lines after it up to the next item's anchor, at most this many
# lines in all (a description wrapped over two lines, a cell's second line).
ITEM_LINES = 3
# A value of an item found only outside the item's place may be another row's (the 4 of row 4 for a quantity of
# 40): below the default review threshold (0.5), so its row needs review and its cell is marked.
OUT_OF_PLACE_CONFIDENCE = 0.4
# The next item's anchor is looked for this far after the previous one (a page of text and more), then anywhere:
# a window, not the rest of the text, so a long document with many items is still grounded in linear time.
ANCHOR_WINDOW = 5_000
_ITEM = re.compile(r"^([^\[\].]+\[\d+\])\.")


def ground_with_flags(model: type[BaseModel], value: Mapping[str, Any], text: str,
                      pages: Sequence[int] | None = None,
                      agreement: Mapping[str, float] | None = None,
                      judged: Collection[str] | None = None,
                      boxes: Sequence[OcrBox] = (),
                      signals: Signals | None = None) -> tuple[list[Evidence], list[str]]:
    """Evidence for every leaf of a validated result, and a review flag ("line_items[3]: ...") for each item of a
    list of objects whose values are found only apart from each other.

    An item's values are looked for first in the item's own place: its anchor (its first text value) is searched
    after the previous item's, then each of its other values on the anchor's line (after the anchor first, then
    before it, where a row's own position number is no value of it), then on the item's following lines; only
    then anywhere, and a value found only there is trusted OUT_OF_PLACE_CONFIDENCE and flagged.

    `agreement` (field -> 0..1) where it was sampled; `judged`: the fields (dotted, without list indexes) whose
    span is found whatever the answer, so that only their cue words say whether the span plays the field's part:
    the model's own answers snapped to a span, and dates or numbers a finder took from several in the text (the
    field strategy, `fields.FieldExtractor.judged`); None where that is not known (the whole-schema strategy:
    there a value the model made up is not found); `boxes`: the OCR'd lines, for the page boxes and OCR
    confidence of what was read by OCR; `signals`: the model's probability of each value it gave, where the
    server answered token log probabilities (`answer_probabilities`, recorded and folded into confidence), and the
    values the extraction itself doubts (`Signals`)."""
    grounder = Grounder(text, pages, boxes)
    found: dict[int, Evidence] = {}
    items: dict[str, list[tuple[int, Leaf]]] = {}
    all_leaves = list(leaves(model, value))
    for n, leaf in enumerate(all_leaves):
        match = _ITEM.match(leaf.field)
        if match is not None and leaf.kind != "derived":
            items.setdefault(match.group(1), []).append((n, leaf))
        else:
            found[n] = grounder.ground(leaf, (agreement or {}).get(re.sub(r"\[\d+\]", "", leaf.field)))
    flags = _ground_items(grounder, items, found, agreement or {})
    return _judge(model, text, all_leaves, [found[n] for n in range(len(all_leaves))], agreement, judged,
                  signals or Signals()), flags


def _ground_items(grounder: Grounder, items: dict[str, list[tuple[int, Leaf]]], found: dict[int, Evidence],
                  agreement: Mapping[str, float]) -> list[str]:
    text = grounder.text
    anchors: dict[str, Evidence] = {}
    cursor = 0
    for item, item_leaves in items.items():  # anchors first, in order: each after the one before
        n, leaf = next(((n, lf) for n, lf in item_leaves if lf.kind == "text"), (None, item_leaves[0][1]))
        if n is None:
            continue
        evidence = grounder.ground_within(leaf, cursor, cursor + ANCHOR_WINDOW, _agreement(agreement, leaf))
        if evidence.status == "not_found":
            evidence = grounder.ground(leaf, _agreement(agreement, leaf))
        elif evidence.end is not None:
            cursor = evidence.end
        found[n] = evidence
        if evidence.start is not None:
            anchors[item] = evidence
    starts = sorted(e.start for e in anchors.values() if e.start is not None)
    flags: list[str] = []
    for item, item_leaves in items.items():
        anchor = anchors.get(item)
        apart: list[str] = []
        for n, leaf in item_leaves:
            if n in found:
                continue
            if anchor is None or anchor.start is None or anchor.end is None:
                found[n] = grounder.ground(leaf, _agreement(agreement, leaf))
                continue
            placed = _in_place(grounder, leaf, anchor.start, anchor.end, starts, _agreement(agreement, leaf))
            if placed is None:
                placed = grounder.ground(leaf, _agreement(agreement, leaf))
                if placed.start is not None:
                    placed = dataclasses.replace(placed,
                                                 confidence=min(placed.confidence, OUT_OF_PLACE_CONFIDENCE))
                    apart.append(f"{leaf.field.rsplit('.', 1)[-1]} {placed.quote!r} on line "
                                 f"{text.count(chr(10), 0, placed.start) + 1}")
            found[n] = placed
        if apart and anchor is not None and anchor.start is not None:
            flags.append(f"{item}: its values stand apart: {anchor.quote!r} on line "
                         f"{text.count(chr(10), 0, anchor.start) + 1}, {', '.join(apart)}")
    return flags


def _agreement(agreement: Mapping[str, float], leaf: Leaf) -> float | None:
    return agreement.get(re.sub(r"\[\d+\]", "", leaf.field))


def _in_place(grounder: Grounder, leaf: Leaf, start: int, end: int, anchors: Sequence[int],
              agreement: float | None) -> Evidence | None:
    """`leaf` in the place of the item whose anchor spans start:end; None where it is not there."""
    text = grounder.text
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    after = bisect.bisect_right(anchors, start)
    limit = anchors[after] if after < len(anchors) else len(text)
    block_end = line_end
    for _ in range(ITEM_LINES - 1):
        if block_end >= min(limit, len(text)):
            break
        following = text.find("\n", block_end + 1)
        block_end = len(text) if following < 0 else following
    block_end = min(block_end, text.rfind("\n", 0, limit) if limit < len(text) else len(text))
    ordinal = re.match(r"\s*(?:\|\s*)?(\d+)\.?(?=\s|\|)", text[line_start:start])
    for lo, hi in ((end, line_end), (line_start, start), (line_end, block_end)):
        if hi <= lo:
            continue
        evidence = grounder.ground_within(leaf, lo, hi, agreement)
        if evidence.status == "not_found" or evidence.start is None:
            continue
        if lo == line_start and ordinal is not None and evidence.start == line_start + ordinal.start(1) and \
                leaf.kind == "number":
            continue  # the row's position number ("4" in "4  Monitor arm ... 40") is not its quantity
        return evidence
    return None


def _judge(model: type[BaseModel], text: str, leaves_: Sequence[Leaf], out: list[Evidence],
           agreement: Mapping[str, float] | None, judged: Collection[str] | None,
           signals: Signals) -> list[Evidence]:
    """Each value's confidence lowered where its span lacks the field's cue words (a snapped answer, `judged`),
    the value is given to two fields too (`_shared`), or the model gave it with a probability below 1 (recorded
    with it); never raised above what its place allowed."""
    cues = _model_cues(model)
    shared = _shared(leaves_, out, judged)
    for i, found in enumerate(out):
        group = found.group
        snapped = judged is not None and group in judged and found.start is not None and found.end is not None
        cue = cued(text, found.start, found.end, cues.get(group, ())) if snapped else None  # type: ignore[arg-type]
        if signals.doubted(group, leaves_[i].value):
            cue = False
        p = signals.probability(group, leaves_[i].value)
        if cue is False or i in shared or p is not None:
            out[i] = dataclasses.replace(found, probability=p, confidence=min(found.confidence, confidence(
                found.status, found.score, (agreement or {}).get(group), found.ocr_confidence, cue=cue,
                shared=i in shared, probability=p)))
    return out


@functools.cache
def _model_cues(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Dotted field path -> its cue words (`cue_words`), nested models included; once per model (shared: not to be
    changed), as it was ~4% of a run's client CPU per document at 0 ms (cProfile, bench/throughput.py)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, kind in field_kinds(model).items():
        out[prefix + name] = cue_words(name, model.model_fields[name].description or "")
        if kind.nested is not None:
            out |= _model_cues(kind.nested, f"{prefix}{name}.")
    return out


# Kinds whose values a document's own arithmetic or calendar often makes equal (a one-line invoice's amount is its
# net, a total without tax is the net, a start date is the letter's date): twins of these are no warning.
_RELATED = frozenset({"number", "date", "currency"})


def _shared(leaves_: Sequence[Leaf], found: Sequence[Evidence], judged: Collection[str] | None) -> set[int]:
    """Indexes of judged values (see `ground`) also given to another field: the same text (folded, three
    characters or more), or mostly the same span of the document (the phone number's span as the desired role).
    Scalars only; fields of one nested model (a salary's min and max quoting one figure) are not twins, nor two
    numbers or dates (`_RELATED`). A twin found otherwise (a finder's e-mail, a convention's company) stays
    trusted: only the judged one is suspect."""
    def parent(i: int) -> str:
        return found[i].group.rsplit(".", 1)[0] if "." in found[i].group else found[i].group

    if judged is None:  # the whole-schema strategy: a value found is signal enough (and twins can be right)
        return set()
    # Scalars only: list items legitimately repeat other fields (a university among employers and colleges).
    located = [i for i, e in enumerate(found) if e.status not in ("not_found", "derived") and "[" not in e.field]
    pairs: list[tuple[int, int]] = []
    for n, i in enumerate(located):
        for j in located[n + 1:]:
            if parent(i) == parent(j) or (leaves_[i].kind in _RELATED and leaves_[j].kind in _RELATED):
                continue
            a, b = found[i], found[j]
            same = (leaves_[i].kind == "text" and leaves_[j].kind == "text" and isinstance(leaves_[i].value, str)
                    and isinstance(leaves_[j].value, str) and len(leaves_[i].value.strip()) >= 3
                    and " ".join(fold(leaves_[i].value).split()) == " ".join(fold(leaves_[j].value).split()))
            if not same and None not in (a.start, a.end, b.start, b.end):
                overlap = min(a.end, b.end) - max(a.start, b.start)  # type: ignore[type-var, operator]
                longer = max(a.end - a.start, b.end - b.start)  # type: ignore[operator]
                same = overlap > 0 and overlap >= 0.5 * longer
            if same:
                pairs.append((i, j))
    out: set[int] = set()
    for i, j in pairs:  # only the judged twins: a finder's e-mail or a convention's company stays trusted
        out |= {k for k in (i, j) if found[k].group in judged}
    return out


def verdict(evidence: Sequence[Evidence], threshold: float = REVIEW_THRESHOLD) -> tuple[float | None, bool]:
    """(grounded, needs_review) of a document: the share of its copied (non-derived) values with evidence,
    and whether any value was not found or is less trusted than `threshold`."""
    copied = [e for e in evidence if e.status != "derived"]
    grounded = (sum(e.status != "not_found" for e in copied) / len(copied)) if copied else None
    needs_review = any(e.status == "not_found" or e.confidence < threshold for e in evidence)
    return (round(grounded, 4) if grounded is not None else None), needs_review


_ROW_COLUMNS = ("doc_id", "schema_version", "model", "extracted_at")  # evidence.parquet's columns from the row itself


def _polars_dtype(name: str) -> Any:
    import polars as pl

    return pl.List(pl.Float64) if name == "List(Float64)" else getattr(pl, name)()


def read_with_evidence(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema to read journal rows (JSON) in one pass for results.parquet's `schema` (`table.row_schema`, which
    holds the row's doc_id, schema_version, model and extracted_at) and evidence.parquet
    (`split_evidence`): the columns evidence copies from its row are read as the row's text, and EVIDENCE_KEY is
    read too, a list of one struct per value."""
    import polars as pl

    item = pl.Struct({name: _polars_dtype(dtype) for name, dtype in EVIDENCE_COLUMNS.items()
                      if name not in _ROW_COLUMNS})
    return {**schema, **dict.fromkeys(_ROW_COLUMNS, pl.String()), EVIDENCE_KEY: pl.List(item)}


def split_evidence(read: Any, schema: Mapping[str, Any]) -> tuple[Any, Any]:
    """(results in `schema`, evidence.parquet's frame: one row per value of each row) from journal rows read with
    `read_with_evidence(schema)`. Rows without evidence (failed ones, results from before evidence) give none."""
    import polars as pl

    # One read of the journal rows for both: a json.loads per row and a frame built from dicts were a third of
    # Recorder.materialize's time on 3,000 letters (cProfile).
    columns = {name: _polars_dtype(dtype) for name, dtype in EVIDENCE_COLUMNS.items()}
    evidence = (read.select(*_ROW_COLUMNS, EVIDENCE_KEY).explode(EVIDENCE_KEY)
                .filter(pl.col(EVIDENCE_KEY).is_not_null())
                .select(pl.col(c) if c in _ROW_COLUMNS else pl.col(EVIDENCE_KEY).struct.field(c) for c in columns)
                .cast(columns))
    restored = [(pl.col(c).str.to_datetime(time_unit=schema[c].time_unit, time_zone=schema[c].time_zone)
                 if isinstance(schema[c], pl.Datetime) else pl.col(c).cast(schema[c]))
                for c in _ROW_COLUMNS if schema[c] != pl.String()]
    return read.drop(EVIDENCE_KEY).with_columns(restored), evidence
