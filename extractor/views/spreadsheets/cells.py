"""The cells a person sees: flattening typed rows into plain columns, the canonical text of a cell (to
compare what an export wrote with what a person typed), reading an edited XLSX or CSV back, and CSV formula
neutralization (document text is untrusted)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from extractor.errors import ConfigError
from extractor.layout import Layout
from extractor.schemas import Schema
from extractor.table import LIST_SEPARATOR, PolarsDataType, child_fields, child_frame

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_PROPERTY = "extractor export"  # XLSX document property: the id of the export's snapshot
# Columns people see besides the schema's fields, in this order; only field columns are importable.
# review_flags: why a row needs review besides its values' evidence (a schema's CHECKS, an item's values apart)
_HEAD = ["doc_id", "status", "needs_review", "review_flags", "grounded", "corrected"]
_TAIL = ["error_type", "error_message", "cost_usd", "prompt_tokens", "completion_tokens",
         "cached_tokens", "attempts", "latency_s", "model", "schema_version", "run_id", "extracted_at"]


def flatten(frame: pl.DataFrame, schema: Schema) -> pl.DataFrame:
    """One plain column per cell a person edits: lists joined, structs spread, enums as text. A list of objects
    has a sheet of its own (`flatten_child`): its column here holds how many items the document has."""
    children = child_fields(schema.model)
    columns: list[pl.Expr] = []
    for name in _HEAD + list(schema.model.model_fields) + _TAIL:
        if name not in frame.schema and name in _HEAD + _TAIL:
            continue  # results from before the column existed (review_flags)
        if name in children:
            columns.append(pl.col(name).list.len().cast(pl.Int64).alias(name))
        else:
            columns.extend(_spread(name, frame.schema[name]))
    return frame.select(columns)


def flatten_child(frame: pl.DataFrame, schema: Schema, name: str) -> pl.DataFrame:
    """The sheet of a list-of-objects field: one row per item (`table.child_frame` of the exported rows), with
    doc_id and index first, then the item's fields flattened as `flatten` does the document's."""
    items = child_frame(frame, name, child_fields(schema.model)[name])
    return items.select([c for column, dtype in items.schema.items() for c in _spread(column, dtype)])


def _spread(name: str, dtype: PolarsDataType) -> list[pl.Expr]:
    col = pl.col(name)
    if isinstance(dtype, pl.Struct):
        return [_plain(col.struct.field(sub.name), sub.dtype).alias(f"{name}.{sub.name}") for sub in dtype.fields]
    return [_plain(col, dtype).alias(name)]


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


def _field_columns(schema: Schema, header: list[str], item: type[BaseModel] | None = None) -> dict[str, list[str]]:
    """Schema field -> the columns of `header` that hold it (`salary` -> salary.min, salary.max, ...); with
    `item`, the item fields of a child sheet. A list of objects is not a field of the results sheet (its count
    is shown there; its items are edited in their own sheet)."""
    fields = (item or schema.model).model_fields
    children = child_fields(schema.model) if item is None else {}
    groups: dict[str, list[str]] = {}
    for column in header:
        top = column.split(".", 1)[0]
        if top in fields and top not in children:
            groups.setdefault(top, []).append(column)
    return groups


def sheet_name(field: str) -> str:
    """The XLSX sheet of a child table: the field's name (Excel allows 31 characters)."""
    return field[:31]


def neutralize_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix an apostrophe to text a spreadsheet would otherwise read as a formula."""
    pattern = "^[" + "".join("\\" + c if c in "-^]\\" else c for c in FORMULA_TRIGGERS) + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(pattern)).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items() if dtype == pl.String)


@dataclass
class _Sheet:
    header: list[str]
    rows: list[dict[str, Any]]
    formulas: set[tuple[int, str]]  # (row index, column) of formula cells
    export_id: str | None = None


def _read_cells(path: Path, sheet_of: str | None = None) -> _Sheet:
    """Header, rows, formula cells and export id of the results sheet of an XLSX (with `sheet_of`, of the sheet
    of that child table), or of a CSV file."""
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
    if sheet_of is not None:
        sheet = workbook[sheet_name(sheet_of)]
    else:
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


def _read_child(path: Path, field: str) -> _Sheet | None:
    """The child sheet of `field` in an exported file: its sheet in an XLSX, its own CSV file next to a CSV
    (`Layout.child_export`); None when the file has none (then its items are not touched)."""
    if path.suffix.lower() == ".csv":
        child = Layout.child_export(path, field)
        return _read_cells(child) if child.is_file() else None
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True)
        present = sheet_name(field) in workbook.sheetnames
        workbook.close()
    except Exception as exc:
        raise ConfigError(f"cannot read {path.name} as a spreadsheet: {exc}") from None
    return _read_cells(path, field) if present else None


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


