"""Where each value came from, as cell notes: a value not found filled red, a found one with its quote."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from extractor.table import LIST_SEPARATOR
from extractor.values.evidence import EVIDENCE_COLUMNS
from extractor.views.spreadsheets.cells import _HEAD, _TAIL

NOT_FOUND = "not found in the document"
FLAG_STYLE = {"bg_color": "#FFC7CE", "font_color": "#9C0006"}  # the spreadsheet's own "Bad" look
QUOTE_CAP = 160  # characters of a quote shown in a comment
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class CellNote:
    """The comment of one field cell, and whether the cell is filled (a value not found in the document)."""

    text: str
    missing: bool

    def box(self) -> dict[str, Any]:
        """The comment box's size, for xlsxwriter: wide enough for its lines (up to a cap), tall enough for
        them wrapped, so a reviewer reads it without resizing."""
        lines = self.text.splitlines() or [""]
        chars = min(max(max(len(line) for line in lines), 24), 64)
        rows = sum(max(1, math.ceil(len(line) / chars)) for line in lines)
        return {"width": chars * 6 + 16, "height": rows * 14 + 12}


@dataclass(frozen=True)
class NotFoundTally:
    values: int  # values shown as not found (a value a label replaced is not shown)
    documents: int
    doc_ids: frozenset[str] = frozenset()  # the documents counted (to add up the tallies of several sheets)

    def __add__(self, other: NotFoundTally) -> NotFoundTally:
        doc_ids = self.doc_ids | other.doc_ids
        return NotFoundTally(self.values + other.values, len(doc_ids), doc_ids)


def _quoted(text: str) -> str:
    flat = " ".join(str(text).split())
    return f'"{flat[:QUOTE_CAP]}…"' if len(flat) > QUOTE_CAP else f'"{flat}"'


def _column_of(path: str, columns: set[str]) -> tuple[str, int | None] | None:
    """The sheet column of an evidence path and the list item it is (0-based), if any: `salary.min` ->
    (`salary.min`, None), `skills[2]` -> (`skills`, 2); a path deeper than the sheet's columns goes to the
    column that holds it."""
    found = _INDEX.search(path)
    name = _INDEX.sub("", path)
    while name:
        if name in columns:
            return name, int(found.group(1)) if found else None
        name = name.rpartition(".")[0]
    return None


def _note(items: list[tuple[int | None, dict[str, Any]]]) -> CellNote | None:
    """A cell's comment from its values' evidence: the values not found first (naming list items), then
    one quote per value found, with how it matched when not verbatim and its page."""
    missing = [(i, e) for i, e in items if e["status"] == "not_found"]
    lines = []
    if missing:
        named = [_quoted(e["value"]) + (f" (item {i + 1})" if i is not None else "") for i, e in missing]
        lines.append(f"{NOT_FOUND}: " + ", ".join(named))
    for _, e in items:
        if e["status"] in ("not_found", "derived") or e["quote"] is None:
            continue  # derived: computed or classified, a quote would only clutter the sheet
        how = [e["status"]] if e["status"] in ("normalized", "fuzzy") else []
        if e.get("bbox") is not None:  # a scan: the reviewer checks it against the page image, not a text
            read = e.get("ocr_confidence")
            how += [f"read by OCR, page {e['page'] or 1}" + (f", OCR confidence {read:.2f}" if read is not None
                                                              else "")]
        else:
            how += [f"page {e['page']}"] if e["page"] is not None else []
        line = _quoted(e["quote"]) + (f" ({', '.join(how)})" if how else "")
        if line not in lines:
            lines.append(line)
    return CellNote("\n".join(lines), bool(missing)) if lines else None


def _same_time(evidence_at: str | None, result_at: dt.datetime | None) -> bool:
    if not evidence_at or result_at is None:
        return True  # nothing to tell them apart by
    try:
        return dt.datetime.fromisoformat(evidence_at) == result_at
    except ValueError:
        return True


def _shown_evidence(frame: pl.DataFrame, evidence: pl.DataFrame | None) -> list[tuple[str, str, dict[str, Any]]] | None:
    """(doc_id, the evidence's field path, its row) of the evidence of the exported rows (`corrected_results`)
    that the sheets show: a field a label replaced shows the label's value, so the model's evidence says
    nothing about it, and evidence of another result than the one shown says nothing either. `evidence`: the
    evidence.parquet of the results' own set (`store.read_set`); None: none (results from before evidence)."""
    if evidence is None:
        return None
    # An evidence.parquet written before a column existed (bbox, ocr_confidence) is read without it.
    evidence = evidence.select([c for c in EVIDENCE_COLUMNS if c != "schema_version" and c in evidence.columns])
    results: dict[str, tuple[dt.datetime | None, set[str]]] = {}
    for row in frame.select("doc_id", "extracted_at", "corrected", "from_labels").iter_rows(named=True):
        replaced = {name for key in ("corrected", "from_labels") for name in (row[key] or "").split(LIST_SEPARATOR)}
        results[row["doc_id"]] = (row["extracted_at"], replaced)
    shown = []
    for item in evidence.iter_rows(named=True):
        known = results.get(item["doc_id"])
        if known is None or not _same_time(item["extracted_at"], known[0]):
            continue
        if re.split(r"[.\[]", item["field"], maxsplit=1)[0] in known[1]:
            continue
        shown.append((item["doc_id"], item["field"], item))
    return shown


def cell_notes(frame: pl.DataFrame, columns: list[str], evidence: pl.DataFrame | None,
               ) -> tuple[dict[tuple[str, str], CellNote], NotFoundTally | None]:
    """(doc_id, column) -> the comment of each field cell with evidence, and the values not found, for the
    exported rows (`corrected_results`) of the results sheet (see `_shown_evidence`)."""
    shown = _shown_evidence(frame, evidence)
    if shown is None:
        return {}, None
    fields = {c for c in columns if c not in _HEAD and c not in _TAIL}
    cells: dict[tuple[str, str], list[tuple[int | None, dict[str, Any]]]] = {}
    for doc_id, path, item in shown:
        where = _column_of(path, fields)
        if where is None:
            continue
        column, index = where
        cells.setdefault((doc_id, column), []).append((index, item))
    return _notes_of(cells)


def child_notes(frame: pl.DataFrame, field: str, columns: list[str], evidence: pl.DataFrame | None,
                ) -> tuple[dict[tuple[str, int, str], CellNote], NotFoundTally | None]:
    """(doc_id, index, column) -> the comment of each cell of the `field` sheet (one row per item), from the
    evidence of `field[index].<column>`, and that sheet's values not found."""
    shown = _shown_evidence(frame, evidence)
    if shown is None:
        return {}, None
    prefix = re.compile(rf"{re.escape(field)}\[(\d+)\]\.(.+)")
    item_columns = set(columns)
    cells: dict[tuple[str, int, str], list[tuple[int | None, dict[str, Any]]]] = {}
    for doc_id, path, item in shown:
        found = prefix.fullmatch(path)
        where = _column_of(found.group(2), item_columns) if found else None
        if found is None or where is None:
            continue
        column, index = where
        cells.setdefault((doc_id, int(found.group(1)), column), []).append((index, item))
    return _notes_of(cells)


def _notes_of(cells: dict[Any, list[tuple[int | None, dict[str, Any]]]]) -> tuple[dict[Any, CellNote], NotFoundTally]:
    notes = {key: note for key, items in cells.items() if (note := _note(items)) is not None}
    missing = [(key[0], sum(e["status"] == "not_found" for _, e in items)) for key, items in cells.items()]
    return notes, NotFoundTally(sum(n for _, n in missing), len({doc_id for doc_id, n in missing if n}),
                                frozenset(doc_id for doc_id, n in missing if n))
