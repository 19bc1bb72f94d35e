"""Spreadsheets both ways: safe XLSX/CSV exports of the latest results, and people's edits back in.

Export flattens the typed rows for people (lists joined with "; ", nested objects as `salary.min`
columns, dates as dates, numbers as numbers, each column with a number format that shows its values)
and applies stored labels: a person's correction (named in `corrected`) over a labels file's value
(named in `from_labels`). Document text is untrusted, so no exported cell can become a formula: XLSX
text cells are written as strings, CSV text starting with = + - @ tab or CR gets a leading apostrophe.

Each field cell says where its value came from (evidence.parquet, extractor.values.evidence): a value not found in the
document is filled red and its comment says so (for a list, which items); a value found carries the document's
quote as a comment (with its page for PDFs, and how it matched when not verbatim); derived values carry none.
`needs_review` and `grounded` stand next to `status`.

Every export leaves a snapshot of the field cells it wrote next to the file (`.results.xlsx.exported.json`),
and an XLSX carries the export's id as a document property. Import diffs an edited file against that snapshot (what
the person saw), validates each edit with the schema (its validators included) and stores the good ones
as a person's labels. An export refuses to replace a file whose cells hold edits that were not imported.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ValidationError

from extractor.config import RunConfig
from extractor.errors import ConfigError, ExportRefused
from extractor.layout import Layout
from extractor.schemas import Schema, load_schema, validate_field
from extractor.store import (
    PERSON,
    Labels,
    write_atomic_bytes,
    write_json_atomic,
)
from extractor.store.labels import corrected_results
from extractor.table import LIST_SEPARATOR, PolarsDataType, dtype_for
from extractor.values.evidence import EVIDENCE_COLUMNS

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
DEFAULT_CSV_ENCODING = "utf-8-sig"  # the BOM tells Excel the file is UTF-8 ("Dvořák", not "DvoÅ™Ã¡k")
EXPORT_PROPERTY = "extractor export"  # XLSX document property: the id of the export's snapshot
# Columns people see besides the schema's fields, in this order; only field columns are importable.
_HEAD = ["doc_id", "status", "needs_review", "grounded", "corrected"]
_TAIL = ["from_labels", "error_type", "error_message", "cost_usd", "prompt_tokens", "completion_tokens",
         "cached_tokens", "attempts", "latency_s", "model", "schema_version", "run_id", "extracted_at"]


@dataclass(frozen=True)
class ExportConfig:
    """`extractor export`: the invocation's settings (schema, folders) and what only exporting needs."""

    settings: RunConfig
    fmt: str = "xlsx"
    out: Path | None = None  # None: the layout's results.<fmt>
    overwrite: bool = False  # replace the file even if it holds edits that were not imported
    encoding: str = DEFAULT_CSV_ENCODING  # CSV only

    def __post_init__(self) -> None:
        if self.fmt not in ("xlsx", "csv"):
            raise ConfigError(f"--format must be xlsx or csv, not {self.fmt!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"--encoding {self.encoding!r} is not an encoding Python knows (try utf-8-sig, "
                              "utf-8 or cp1252)") from None


@dataclass(frozen=True)
class ImportConfig:
    """`extractor import-corrections`: the invocation's settings and the edited file."""

    settings: RunConfig
    file: Path


@dataclass
class ImportReport:
    applied: list[tuple[str, str]] = field(default_factory=list)  # (doc_id, field)
    rejected: list[str] = field(default_factory=list)  # one message per bad cell
    unknown_docs: list[str] = field(default_factory=list)
    rows_read: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected or self.unknown_docs else 0


def flatten(frame: pl.DataFrame, schema: Schema) -> pl.DataFrame:
    """One plain column per cell a person edits: lists joined, structs spread, enums as text."""
    columns: list[pl.Expr] = []
    for name in _HEAD + list(schema.model.model_fields) + _TAIL:
        dtype = frame.schema[name]
        col = pl.col(name)
        if isinstance(dtype, pl.Struct):
            for sub in dtype.fields:
                columns.append(_plain(col.struct.field(sub.name), sub.dtype).alias(f"{name}.{sub.name}"))
        else:
            columns.append(_plain(col, dtype).alias(name))
    return frame.select(columns)


def _plain(col: pl.Expr, dtype: PolarsDataType) -> pl.Expr:
    if isinstance(dtype, pl.List):
        return col.cast(pl.List(pl.String)).list.join(LIST_SEPARATOR)
    if isinstance(dtype, (pl.Enum, pl.Categorical)):
        return col.cast(pl.String)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)  # spreadsheets have no zones
    if isinstance(dtype, pl.Struct):
        return col.struct.json_encode()
    return col


def _field_columns(schema: Schema, header: list[str]) -> dict[str, list[str]]:
    """Schema field -> the columns of `header` that hold it (`salary` -> salary.min, salary.max, ...)."""
    groups: dict[str, list[str]] = {}
    for column in header:
        top = column.split(".", 1)[0]
        if top in schema.model.model_fields:
            groups.setdefault(top, []).append(column)
    return groups


def neutralize_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix an apostrophe to text a spreadsheet would otherwise read as a formula."""
    pattern = "^[" + "".join("\\" + c if c in "-^]\\" else c for c in FORMULA_TRIGGERS) + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(pattern)).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items() if dtype == pl.String)


# -- snapshots: what an export wrote, to tell a person's edits from what extractor put there ---------------

def snapshot_path(path: Path) -> Path:
    """The snapshot of an export, next to it: `results.xlsx` -> `.results.xlsx.exported.json`."""
    return path.with_name(f".{path.name}.exported.json")


def _canon_cells(flat: pl.DataFrame, columns: list[str]) -> dict[str, dict[str, str]]:
    """doc_id -> {column: the cell's canonical text} for these columns."""
    return {str(row["doc_id"]): {c: _canon(row.get(c)) for c in columns}
            for row in flat.select(["doc_id", *columns]).to_dicts()}


def _load_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(snapshot_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none, or unreadable: compare with the current values instead
    return data if isinstance(data, dict) else None


def _snapshot_of(path: Path, export_id: str | None) -> tuple[dict[str, dict[str, str]] | None,
                                                              dict[str, dict[str, str]]]:
    """(cells, imported) of an exported file: the field cells the export wrote (None when unknown: no
    snapshot, or the XLSX carries another export's id, e.g. an older copy put back in place) and the cells
    imported from the file since."""
    snapshot = _load_snapshot(path) or {}
    same = not export_id or snapshot.get("export_id") == export_id
    return (snapshot.get("cells") if same else None), snapshot.get("imported") or {}


def _note_imports(path: Path, imported: dict[str, dict[str, str]]) -> None:
    """Add cells imported from a file to its snapshot (made if there is none)."""
    record = _load_snapshot(path) or {"export_id": None, "format": path.suffix.lower().lstrip("."),
                                      "exported_at": None, "cells": None}
    merged: dict[str, dict[str, str]] = record.get("imported") or {}
    for doc_id, cells in imported.items():
        merged.setdefault(doc_id, {}).update(cells)
    write_json_atomic({**record, "imported": merged}, snapshot_path(path))


def _base(doc_id: str, column: str, exported: dict[str, dict[str, str]], imported: dict[str, dict[str, str]],
          current: dict[str, dict[str, str]]) -> str:
    """What a cell held when extractor last knew the file: the value imported from it, else the value the
    export wrote, else (no snapshot) the value an export would write now."""
    for known in (imported, exported):
        if column in known.get(doc_id, {}):
            return known[doc_id][column]
    return current.get(doc_id, {}).get(column, "")


@dataclass
class _Sheet:
    header: list[str]
    rows: list[dict[str, Any]]
    formulas: set[tuple[int, str]]  # (row index, column) of formula cells
    export_id: str | None = None


def unimported_edits(path: Path, schema: Schema, flat: pl.DataFrame) -> list[str]:
    """`doc_id / column` of every field cell of this exported file that a person changed and that was not
    imported: it differs from what the file held when extractor last knew it (`_base`) and from the value
    an export would write now (`flat`: an edit the labels already hold is no loss)."""
    sheet = _read_cells(path)
    if "doc_id" not in sheet.header:
        raise ConfigError(f"{path.name} has no doc_id column: is it an extractor export?")
    columns = [c for group in _field_columns(schema, sheet.header).values() for c in group]
    written, imported = _snapshot_of(path, sheet.export_id)
    exported = written or {}
    current = _canon_cells(flat, [c for c in columns if c in flat.columns])
    pending = []
    for row in sheet.rows:
        doc_id = _cell_value(row.get("doc_id"))
        if doc_id is None:
            continue
        doc_id = str(doc_id)
        for column in columns:
            value = _canon(row.get(column))
            if value not in (_base(doc_id, column, exported, imported, current),
                             current.get(doc_id, {}).get(column)):
                pending.append(f"{doc_id} / {column}")
    return pending


def _refuse_to_replace(out: Path, schema: Schema, flat: pl.DataFrame) -> None:
    try:
        pending = unimported_edits(out, schema, flat)
    except ConfigError as exc:
        raise ExportRefused(f"{out} exists and is not an extractor export this command can check ({exc}): "
                            "move it away, or pass --overwrite to replace it") from None
    if pending:
        shown = ", ".join(pending[:5]) + (f", ... ({len(pending) - 5} more)" if len(pending) > 5 else "")
        raise ExportRefused(
            f"{out} holds {len(pending)} edited cell(s) that were not imported ({shown}): run "
            f"`extractor import-corrections {out}` first (cells it rejects stay edits: fix or undo them), or pass "
            "--overwrite to replace the file and lose them")


def export(config: ExportConfig) -> Path:
    """Write the latest results (labels applied) as XLSX or CSV; refuses (ExportRefused) to replace a file
    that holds edits not imported yet, unless `config.overwrite`."""
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    corrected = corrected_results(schema, layout)
    flat = flatten(corrected, schema)
    out = config.out or layout.export(config.fmt)
    if out.exists() and not config.overwrite:
        _refuse_to_replace(out, schema, flat)
    exported_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    export_id = f"{exported_at.isoformat()} {secrets.token_hex(4)}"
    if config.fmt == "csv":
        buffer = io.BytesIO()
        neutralize_csv(flat).write_csv(buffer, date_format="%Y-%m-%d", datetime_format="%Y-%m-%d %H:%M:%S")
        text = buffer.getvalue().decode("utf-8")
        try:
            data = text.encode(config.encoding)
        except UnicodeEncodeError as exc:
            raise ConfigError(f"cannot write {out} in {config.encoding}: it has no code for "
                              f"{text[exc.start:exc.end]!r}; use utf-8-sig (the default)") from None
        write_atomic_bytes(out, data)
    else:
        notes, tally = cell_notes(corrected, flat.columns, layout)
        summary = _summary(corrected, schema, layout, exported_at, tally)
        write_atomic_bytes(out, _xlsx_bytes(flat, summary, set(schema.model.model_fields), export_id, notes))
    columns = [c for group in _field_columns(schema, flat.columns).values() for c in group]
    write_json_atomic({"export_id": export_id, "format": config.fmt, "exported_at": exported_at.isoformat(),
                       "cells": _canon_cells(flat, columns), "imported": {}}, snapshot_path(out))
    return out


# -- where each value came from: cells not found filled, quotes as comments --------------------------------

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


def cell_notes(frame: pl.DataFrame, columns: list[str], layout: Layout,
               ) -> tuple[dict[tuple[str, str], CellNote], NotFoundTally | None]:
    """(doc_id, column) -> the comment of each field cell with evidence, and the values not found, for the
    exported rows (`corrected_results`). A field a label replaced shows the label's value, so the model's
    evidence says nothing about it; results from before evidence have none (None: no evidence.parquet)."""
    path = layout.evidence
    if not path.is_file():
        return {}, None
    evidence = pl.read_parquet(path, columns=[c for c in EVIDENCE_COLUMNS if c != "schema_version"])
    results: dict[str, tuple[dt.datetime | None, set[str]]] = {}
    for row in frame.select("doc_id", "extracted_at", "corrected", "from_labels").iter_rows(named=True):
        replaced = {name for key in ("corrected", "from_labels") for name in (row[key] or "").split(LIST_SEPARATOR)}
        results[row["doc_id"]] = (row["extracted_at"], replaced)
    fields = {c for c in columns if c not in _HEAD and c not in _TAIL}
    cells: dict[tuple[str, str], list[tuple[int | None, dict[str, Any]]]] = {}
    for item in evidence.iter_rows(named=True):
        known = results.get(item["doc_id"])
        where = _column_of(item["field"], fields)
        if known is None or where is None or not _same_time(item["extracted_at"], known[0]):
            continue  # a document not exported, or evidence of another result than the one shown
        column, index = where
        if column.split(".", 1)[0] in known[1]:
            continue
        cells.setdefault((item["doc_id"], column), []).append((index, item))
    notes = {key: note for key, items in cells.items() if (note := _note(items)) is not None}
    missing = [(doc_id, sum(e["status"] == "not_found" for _, e in items)) for (doc_id, _), items in cells.items()]
    return notes, NotFoundTally(sum(n for _, n in missing), len({doc_id for doc_id, n in missing if n}))


# -- how cells look: a number format per column type, widths that fit --------------------------------------

@dataclass(frozen=True)
class _Format:
    """An Excel number format and the text a spreadsheet shows for a value in it (for column widths)."""

    code: str
    render: Callable[[Any], str]


_WHOLE = _Format("0", lambda v: f"{v:.0f}")  # schema integers: years, days, ids (no thousands separator)
_COUNT = _Format("#,##0", lambda v: f"{v:,.0f}")  # tokens, documents
_MONEY = _Format("$#,##0.000000", lambda v: f"${v:,.6f}")  # per-document costs are fractions of a cent
_SECONDS = _Format("0.00", lambda v: f"{v:.2f}")
_SHARE = _Format("0.0%", lambda v: f"{v:.1%}")
_DATE = _Format("yyyy-mm-dd", lambda v: "2000-01-01")
_DATETIME = _Format("yyyy-mm-dd hh:mm:ss", lambda v: "2000-01-01 00:00:00")
_META_FORMATS = {"cost_usd": _MONEY, "latency_s": _SECONDS, "compute_s": _SECONDS, "grounded": _SHARE}
TEXT_WIDTH_CAP = 60  # characters; longer text is cut at the column's edge (text never shows ###)
# Numbers and dates show ### when the column is too narrow: their widths get room for fonts wider than
# Calibri (LibreOffice without Carlito substitutes DejaVu Sans, about a quarter wider).
NUMBER_WIDTH_FACTOR = 1.3


def _decimals(value: float, most: int = 4) -> int:
    for places in range(most):
        if abs(round(value, places) - value) <= 1e-9 * max(1.0, abs(value)):
            return places
    return most


def _float_format(values: list[float]) -> _Format:
    """Amounts from 1,000 up with thousands separators and only the decimals they have (85,000; 12,500.50);
    smaller numbers with at least one decimal (8.0, 7.5, 0.25)."""
    finite = [v for v in values if math.isfinite(v)]
    places = max((_decimals(v) for v in finite), default=1)
    if any(abs(v) >= 1000 for v in finite):
        code = "#,##0" + ("." + "0" * places if places else "")
        return _Format(code, lambda v: f"{v:,.{places}f}")
    shown = max(places, 1)
    return _Format("0." + "0" * shown, lambda v: f"{v:.{shown}f}")


def _column_format(name: str, dtype: PolarsDataType, values: list[Any], fields: set[str]) -> _Format | None:
    """The number format of a column, None for text and booleans."""
    if isinstance(dtype, pl.Datetime):
        return _DATETIME
    if isinstance(dtype, pl.Date):
        return _DATE
    if name in _META_FORMATS:
        return _META_FORMATS[name]
    if dtype.is_integer():
        return _WHOLE if name.split(".", 1)[0] in fields else _COUNT
    if dtype.is_float():
        return _float_format([v for v in values if v is not None])
    return None


def _width(texts: list[str], header: str, number: bool) -> float:
    longest = max((len(t) for t in texts), default=0)
    content = longest * NUMBER_WIDTH_FACTOR + 1 if number else min(longest, TEXT_WIDTH_CAP) + 1
    return max(len(header) + 3, content, 6)  # + 3: the autofilter's button sits on the header


def _write_cell(sheet: Any, row: int, col: int, value: Any, fmt: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value, fmt)
    elif isinstance(value, (int, float)):
        sheet.write_number(row, col, value, fmt)
    elif isinstance(value, dt.datetime):
        sheet.write_datetime(row, col, value, fmt)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), fmt)
    else:  # never a formula, a link or a number: what the document said stays text
        sheet.write_string(row, col, str(value), fmt)


def _prepare_sheet(sheet: Any, header_format: Any, header: list[str], rows: int, widths: list[float]) -> None:
    for col, (name, width) in enumerate(zip(header, widths, strict=True)):
        sheet.write_string(0, col, name, header_format)
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(rows, 1), len(header) - 1)
    sheet.set_landscape()
    sheet.repeat_rows(0)
    sheet.hide_gridlines(0)  # print the grid: a printed sheet reads like the screen


def _xlsx_bytes(flat: pl.DataFrame, summary: list[tuple[str, Any, _Format | None, float | None]],
                fields: set[str], export_id: str, notes: dict[tuple[str, str], CellNote] | None = None) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False,
                                            "nan_inf_to_errors": True})
    workbook.set_custom_property(EXPORT_PROPERTY, export_id)
    header_format = workbook.add_format({"bold": True, "bottom": 1})

    sheet = workbook.add_worksheet("results")
    sheet.set_comments_author("extractor")
    widths: list[float] = []
    cell_formats: list[Any] = []
    numbers: list[_Format | None] = []
    for name, dtype in flat.schema.items():
        values = flat[name].to_list()
        number = _column_format(name, dtype, values, fields)
        numbers.append(number)
        cell_formats.append(workbook.add_format({"num_format": number.code}) if number else None)
        if number is not None:
            texts = [number.render(v) for v in values if v is not None and not (isinstance(v, float) and
                                                                                 not math.isfinite(v))]
        else:
            texts = [max(str(v).splitlines() or [""], key=len) for v in values if v is not None]
        widths.append(_width(texts, name, number is not None))
    _prepare_sheet(sheet, header_format, flat.columns, flat.height, widths)
    flagged: dict[int, Any] = {}  # column -> its number format, filled: a value to look at

    def flag(c: int) -> Any:
        if c not in flagged:
            number = numbers[c]
            flagged[c] = workbook.add_format({**({"num_format": number.code} if number else {}), **FLAG_STYLE})
        return flagged[c]

    notes = notes or {}
    review = flat.columns.index("needs_review") if "needs_review" in flat.columns else None
    for r, row in enumerate(flat.iter_rows(), start=1):
        doc_id = str(row[0])
        for c, value in enumerate(row):
            note = notes.get((doc_id, flat.columns[c])) if value is not None else None
            flagged_cell = (note is not None and note.missing) or (c == review and value is True)
            _write_cell(sheet, r, c, value, flag(c) if flagged_cell else cell_formats[c])
            if note is not None:
                sheet.write_comment(r, c, note.text, note.box())

    sheet = workbook.add_worksheet("summary")
    columns: list[list[str]] = [[], [], []]  # the summary's texts, column by column
    share_format = workbook.add_format({"num_format": _SHARE.code})
    for r, (metric, value, number, share) in enumerate(summary, start=1):
        sheet.write_string(r, 0, metric)
        _write_cell(sheet, r, 1, value, workbook.add_format({"num_format": number.code}) if number else None)
        _write_cell(sheet, r, 2, share, share_format)
        columns[0].append(metric)
        if value is not None:
            columns[1].append(number.render(value) if number else str(value))
        if share is not None:
            columns[2].append(_SHARE.render(share))
    _prepare_sheet(sheet, header_format, ["metric", "value", "share"], len(summary),
                   [_width(columns[0], "metric", False), _width(columns[1], "value", True),
                    _width(columns[2], "share", True)])
    workbook.close()
    return buffer.getvalue()


def _summary(frame: pl.DataFrame, schema: Schema, layout: Layout, exported_at: dt.datetime,
             tally: NotFoundTally | None = None) -> list[tuple[str, Any, _Format | None, float | None]]:
    """(metric, value, number format, share of the documents) rows of the summary sheet."""
    run: dict[str, Any] = {}
    if layout.summary.is_file():
        try:
            run = json.loads(layout.summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            run = {}
    run_ids = sorted(r for r in frame["run_id"].to_list() if r)
    started = None
    if run.get("started_at"):
        started = dt.datetime.fromisoformat(run["started_at"]).astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
    documents = frame.height

    def share(count: int) -> float | None:
        return count / documents if documents else None

    def joined(column: str) -> str:
        return ", ".join(sorted({v for v in frame[column].to_list() if v})) or "-"

    counts = {s: frame.filter(pl.col("status") == s).height for s in ("ok", "failed", "skipped")}
    prompt = int(frame["prompt_tokens"].sum() or 0)
    cached = int(frame["cached_tokens"].sum() or 0)
    cost = frame["cost_usd"].sum()
    corrected = int(frame["corrected"].is_not_null().sum())
    from_labels = int(frame["from_labels"].is_not_null().sum())
    review = int(frame["needs_review"].sum() or 0)
    rows: list[tuple[str, Any, _Format | None, float | None]] = [
        ("run id", run.get("run_id") or (run_ids[-1] if run_ids else "-"), None, None),
        ("run started (UTC)", started, _DATETIME, None),
        ("exported at (UTC)", exported_at.replace(tzinfo=None), _DATETIME, None),
        ("schema", schema.name, None, None),
        ("schema version", joined("schema_version"), None, None),
        ("model", joined("model"), None, None),
        ("documents", documents, _COUNT, None),
        ("ok", counts["ok"], _COUNT, share(counts["ok"])),
        ("failed", counts["failed"], _COUNT, share(counts["failed"])),
        ("skipped", counts["skipped"], _COUNT, share(counts["skipped"])),
        ("documents that need review", review, _COUNT, share(review)),
        ("values not found in the document", tally.values if tally else "-", _COUNT if tally else None, None),
        ("documents with values not found", tally.documents if tally else "-", _COUNT if tally else None,
         share(tally.documents) if tally else None),
        ("prompt tokens", prompt, _COUNT, None),
        ("completion tokens", int(frame["completion_tokens"].sum() or 0), _COUNT, None),
        ("cached prompt tokens", cached, _COUNT, cached / prompt if prompt else None),
        ("cost USD", float(cost or 0.0), _MONEY, None),
        ("cost USD per ok document", float(cost or 0.0) / counts["ok"] if counts["ok"] else None, _MONEY, None),
        ("corrected documents", corrected, _COUNT, share(corrected)),
        ("documents with labels-file values", from_labels, _COUNT, share(from_labels)),
    ]
    metrics_path = layout.metrics
    if metrics_path.exists():  # self-consistency was measured: mean agreement per field
        metrics = pl.read_parquet(metrics_path)
        rows.append(("sampled documents", metrics.height, _COUNT, None))
        rows.extend((f"agreement {name.removeprefix('agree_')}",
                     float(metrics[name].cast(pl.Float64).mean() or 0.0), _SHARE, None)  # type: ignore[arg-type]
                    for name in metrics.columns if name.startswith("agree_"))
    return rows


# -- corrections back in ---------------------------------------------------------------------------------

def _read_cells(path: Path) -> _Sheet:
    """Header, rows, formula cells and export id of the results sheet of an XLSX, or of a CSV file."""
    if path.suffix.lower() == ".csv":
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:  # Excel saves "CSV (Comma delimited)" in the Windows code page
            text = path.read_bytes().decode("cp1252", errors="replace")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            csv_rows = [{k: _unquote(v) for k, v in r.items() if isinstance(k, str)} for r in reader]
        except csv.Error as exc:
            raise ConfigError(f"cannot read {path.name} as CSV: {exc}") from None
        return _Sheet(list(reader.fieldnames or []), csv_rows, set())
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(f"corrections must be an .xlsx or .csv file, not {path.name}")
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, data_only=False, read_only=True)
    except Exception as exc:
        raise ConfigError(f"cannot read {path.name} as a spreadsheet: {exc}") from None
    export_id = next((str(p.value) for p in workbook.custom_doc_props.props if p.name == EXPORT_PROPERTY), None)
    sheet = workbook["results"] if "results" in workbook.sheetnames else workbook.worksheets[0]
    rows_iter = sheet.iter_rows()
    header = [str(c.value) if c.value is not None else "" for c in next(rows_iter, [])]
    rows: list[dict[str, Any]] = []
    formulas: set[tuple[int, str]] = set()
    for i, cells in enumerate(rows_iter):
        row = {}
        for name, cell in zip(header, cells, strict=False):
            row[name] = cell.value
            if cell.data_type == "f":
                formulas.add((i, name))
        rows.append(row)
    workbook.close()
    return _Sheet(header, rows, formulas, export_id)


def _unquote(value: str | None) -> str | None:
    if value and len(value) > 1 and value[0] == "'" and value[1] in FORMULA_TRIGGERS:
        return value[1:]
    return value


def _canon(value: Any) -> str:
    """One text form for a cell, whichever way the spreadsheet typed it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return format(float(value), ".10g")
    text = str(value).strip()
    try:
        return format(float(text), ".10g")
    except ValueError:
        return text


def _cell_value(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date()
    return value


def import_corrections(config: ImportConfig) -> ImportReport:
    """Store every valid edited field cell as a person's label; report each bad cell and unknown document.

    An edit is a field cell that differs from what the file held when extractor last knew it (`_base`: the
    value imported from it before, else what the export wrote, else for a file without a snapshot what an
    export would write now), so a label that changed after the export is not taken for an edit, and an edit
    undone after an import is one. What was imported is noted in the snapshot, so a later export knows the
    file holds no edits that were not imported."""
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    if not config.file.exists():
        raise ConfigError(f"{config.file} does not exist")
    current = flatten(corrected_results(schema, layout), schema)
    raw = {r["doc_id"]: r for r in pl.read_parquet(layout.results).to_dicts()}
    sheet = _read_cells(config.file)
    if "doc_id" not in sheet.header:
        raise ConfigError(f"{config.file.name} has no doc_id column: is it an extractor export?")
    groups = _field_columns(schema, sheet.header)
    written, before = _snapshot_of(config.file, sheet.export_id)
    exported = written or {}
    now = _canon_cells(current, [c for group in groups.values() for c in group if c in current.columns])
    imported: dict[str, dict[str, str]] = {}  # what this import takes from the file
    report = ImportReport()
    labels = Labels(layout.journal)  # writes: the corrections become labels
    try:
        people = labels.latest(PERSON)
        for index, row in enumerate(sheet.rows):
            doc_id = _cell_value(row.get("doc_id"))
            if doc_id is None:
                continue
            doc_id = str(doc_id)
            report.rows_read += 1
            if doc_id not in now:
                report.unknown_docs.append(doc_id)
                continue
            for name, columns in groups.items():
                if all(_canon(row.get(c)) == _base(doc_id, c, exported, before, now) for c in columns):
                    continue
                where = f"{doc_id} / {', '.join(columns)}"
                if any((index, c) in sheet.formulas for c in columns):
                    report.rejected.append(f"{where}: formulas are not accepted, type the value itself")
                    continue
                value = _field_value(schema.model, name, columns, row)
                try:
                    checked = validate_field(schema.model, name, value, raw[doc_id])
                except ValidationError as exc:
                    problem = "; ".join(e["msg"] for e in exc.errors())
                    report.rejected.append(f"{where}: {problem} (got {value!r})")
                    continue
                if people.get(doc_id, {}).get(name, object()) != checked:  # not stored again on a re-import
                    labels.add(doc_id, name, checked, source=f"{config.file.name} (corrections)",
                               content_sha256=raw[doc_id].get("content_sha256"), kind=PERSON)
                    people.setdefault(doc_id, {})[name] = checked
                    report.applied.append((doc_id, name))
                imported.setdefault(doc_id, {}).update({c: _canon(row.get(c)) for c in columns})
    finally:
        labels.close()
    if imported:
        _note_imports(config.file, imported)
    return report


def _field_value(model: type[BaseModel], name: str, columns: list[str], row: dict[str, Any]) -> Any:
    if columns == [name]:
        cell = _cell_value(row.get(name))
        if isinstance(dtype_for(model.model_fields[name].annotation), pl.List):
            return [] if cell is None else [p.strip() for p in str(cell).split(";") if p.strip()]
        return cell
    parts = {c.split(".", 1)[1]: _cell_value(row.get(c)) for c in columns}
    return None if all(v is None for v in parts.values()) else parts
