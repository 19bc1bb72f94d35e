"""Table rows found in a document's text without a model: the line items of an invoice, the jobs of a list.

The parsers render every table as lines (`extractor.documents.parsers`): DOCX cells joined by " | ", Markdown
pipes, HTML tables and text reports as columns aligned by runs of spaces, PDF text lines with single spaces. A
line is split into cells by its pipes, else by its runs of two or more spaces (or tabs), else, for a PDF's
single-spaced line, by peeling the numbers off its end ("1 Printer paper A4, 500 sheets 20 $10.08 $201.60" is
1 | Printer paper A4, 500 sheets | 20 | $10.08 | $201.60). A row has at least three cells, at least one of them
a number and one text; the table is the largest group of rows with the same number of cells, in document order
(rows split over pages by repeated headers and page footers are one table), with the header line above its
first row when there is one. Numbers are read by `detect.written_number` in every locale's notation.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from dataclasses import dataclass

from extractor.values.detect import written_number

MIN_CELLS = 3
# A cell that is one amount: a number with its sign, grouping and decimals, a currency sign or code around it.
_CURRENCY = r"(?:[$€£¥₹]|US\$|[A-Z]{3}|Fr\.)"
# digits grouped by thousands (with a plain space too: "1 095,00 €" as HTML renders a no-break space), or not
_DIGITS = r"(?:\d{1,3}(?:[ \u00a0\u202f.,'’]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
_NUMBER_CELL = re.compile(rf"^[-−(]?\s?(?:{_CURRENCY}\s?)?[-−]?{_DIGITS}\)?(?:\s?(?:{_CURRENCY}|%))?$")
_RULE = re.compile(r"^[\s\-=_|:+*]*$")  # a line of dashes or a Markdown separator row


@dataclass(frozen=True)
class Cell:
    text: str
    start: int  # offsets in the document's text
    end: int
    number: float | None  # the amount the cell is, None for a text cell


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    start: int  # the line's span
    end: int


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...] | None  # the header line's cells, when the line above the first row is one
    rows: tuple[Row, ...]

    @property
    def width(self) -> int:
        return len(self.rows[0].cells)

    def numeric(self, column: int) -> bool:
        """Most of the column's cells are numbers."""
        return sum(row.cells[column].number is not None for row in self.rows) * 2 > len(self.rows)

    def position(self, column: int) -> bool:
        """The column numbers the rows 1, 2, 3, ... (a "Pos." or "#" column): no value of a row."""
        return [row.cells[column].number for row in self.rows] == [float(i) for i in range(1, len(self.rows) + 1)]


def _number(text: str) -> float | None:
    text = text.strip()
    if text.endswith(")") != text.startswith("("):  # "(set of 4)" ends a description; "(12.50)" is negative
        return None
    if not _NUMBER_CELL.match(text) or any(not _currency(code) for code in re.findall(r"[A-Z]{3}", text)):
        return None
    return written_number(text)


_LEADING_NUMBER = re.compile(rf"[-−(]?\s?(?:{_CURRENCY}\s?)?[-−]?{_DIGITS}\)?(?:\s?(?:{_CURRENCY}))?(?=\s|$|[;,)])")


def leading_amount(text: str) -> tuple[float, int] | None:
    """(the amount, where it ends) of the one amount `text` starts with, as a table's number cell is read ("$4,485.65
    (paid)", "285,34 € zzgl."); None where it starts with anything else."""
    text = text.rstrip()
    match = _LEADING_NUMBER.match(text)
    while match is not None:
        number = _number(match.group(0))
        if number is not None:
            return number, match.end()
        # a trailing code that is no currency ("19.00 USt") or a grouping read too far: one character less
        match = _LEADING_NUMBER.match(text[: match.end() - 1]) if match.end() > 1 else None
    return None


@functools.cache
def _codes() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def _currency(word: str) -> bool:
    """A currency's sign or ISO 4217 code ("LED" in "Desk lamp, LED" is none)."""
    return re.fullmatch(_CURRENCY, word) is not None and (not re.fullmatch(r"[A-Z]{3}", word) or word in _codes())


def _cell(text: str, start: int, end: int) -> Cell | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return None
    return Cell(text[start:end], start, end, _number(text[start:end]))


def split(text: str, start: int, end: int, numbers: int | None = None) -> list[Cell]:
    """The cells of the line text[start:end] (see the module docstring); a single-spaced line with at most
    `numbers` numbers peeled off its end."""
    line = text[start:end]
    if "|" in line:
        bounds = [start - 1] + [start + m.start() for m in re.finditer(r"\|", line)] + [end]
        piped = [_cell(text, a + 1, b) for a, b in itertools.pairwise(bounds)]
        return [c for c in piped if c is not None]
    aligned = [_cell(text, start + m.start(), start + m.end()) for m in re.finditer(r"[^ \t]+(?: [^ \t]+)*", line)]
    cells = [c for c in aligned if c is not None]
    if len(cells) >= MIN_CELLS:
        return cells
    return _peeled(text, start, end, numbers)


def _peeled(text: str, start: int, end: int, numbers: int | None = None) -> list[Cell]:
    """A single-spaced line: its position number, its text, and the numbers at its end, each a cell."""
    # Tokens split at plain spaces only: a no-break space groups thousands ("4\u00a0380,00 EUR")
    tokens = [(start + m.start(), start + m.end()) for m in re.finditer(r"[^ \t]+", text[start:end])]
    if not tokens:
        return []
    # "9.60 CHF 19.20 CHF" or "CHF 9.60 CHF 19.20": the line's last token says on which side a code stands
    suffixed = _currency(text[tokens[-1][0]:tokens[-1][1]])
    tail: list[tuple[int, int]] = []
    while len(tokens) > 1 and (numbers is None or len(tail) < numbers):
        a, b = tokens[-1]
        word = text[a:b]
        if _number(word) is not None:
            tail.insert(0, tokens.pop())
        elif _currency(word) and suffixed and _number(text[tokens[-2][0]:tokens[-2][1]]) is not None:
            tokens.pop()
            tail.insert(0, (tokens.pop()[0], b))
        elif _currency(word) and not suffixed and tail:
            tail[0] = (a, tail[0][1])
            tokens.pop()
        else:
            break
    if len(tail) < 2 or not tokens:
        return []
    head: list[Cell] = []
    first = tokens[0]
    if len(tokens) > 1 and re.fullmatch(r"\d{1,3}\.?", text[first[0]:first[1]]):
        head.append(Cell(text[first[0]:first[1]], first[0], first[1], _number(text[first[0]:first[1]])))
        tokens = tokens[1:]
    middle = Cell(text[tokens[0][0]:tokens[-1][1]], tokens[0][0], tokens[-1][1], None)
    return [*head, middle, *(Cell(text[a:b], a, b, _number(text[a:b])) for a, b in tail)]


def line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line of `text`, without its newline."""
    out, start = [], 0
    for match in re.finditer(r"\n", text):
        out.append((start, match.start()))
        start = match.end()
    out.append((start, len(text)))
    return out


# Rows further apart than this many lines are two tables (a page's footer and the next page's header between
# two rows of one table take 2-4 lines).
ROW_GAP = 6


def _is_row(cells: list[Cell]) -> bool:
    return len(cells) >= MIN_CELLS and any(c.number is not None for c in cells) and \
        any(c.number is None and re.search(r"[^\W\d_]", c.text) for c in cells)


def _single_spaced(line: str) -> bool:
    return "|" not in line and "\t" not in line and "  " not in line.strip()


def _trailing_numbers(cells: list[Cell]) -> int:
    count = 0
    for cell in reversed(cells):
        if cell.number is None:
            break
        count += 1
    return count


def table(text: str) -> Table | None:
    """The document's table of rows (see the module docstring), or None when it has none."""
    lines = line_spans(text)
    split_lines = [split(text, a, b) if not _RULE.match(text[a:b]) else [] for a, b in lines]
    rows = [n for n, cells in enumerate(split_lines) if _is_row(cells)]
    if not rows:
        return None
    # Single-spaced lines: every row ends in the table's numbers, some descriptions in one more ("... pack of
    # 50 1 $5.81 $5.81"): the count most rows end in is the table's (the smaller of a tie).
    peeled = [n for n in rows if _single_spaced(text[lines[n][0]:lines[n][1]])]
    if peeled:
        counts = Counter(_trailing_numbers(split_lines[n]) for n in peeled)
        usual = min(counts, key=lambda k: (-counts[k], k))
        for n in peeled:
            if _trailing_numbers(split_lines[n]) > usual:
                split_lines[n] = split(text, *lines[n], numbers=usual)
    width = Counter(len(split_lines[n]) for n in rows).most_common(1)[0][0]
    kept = [n for n in rows if len(split_lines[n]) == width and _is_row(split_lines[n])]
    clusters: list[list[int]] = []
    for n in kept:
        if clusters and n - clusters[-1][-1] <= ROW_GAP:
            clusters[-1].append(n)
        else:
            clusters.append([n])
    best = max(clusters, key=len)  # the first of the largest
    header = None
    first = best[0]
    for above in range(first - 1, max(-1, first - 3), -1):
        line = text[lines[above][0]:lines[above][1]]
        if line.strip() and _RULE.match(line):
            continue  # a rule under the header
        cells = split_lines[above]
        if len(cells) == width and all(c.number is None for c in cells):
            header = tuple(c.text for c in cells)
        break
    return Table(header, tuple(Row(tuple(split_lines[n]), *lines[n]) for n in best))
