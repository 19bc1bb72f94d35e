"""Spreadsheets both ways: safe XLSX/CSV exports of the latest results, and people's edits back in.

Export flattens the typed rows for people (lists joined with "; ", nested objects as `salary.min`
columns, dates as dates, numbers as numbers) and applies stored corrections (flagged in `corrected`).
Document text is untrusted, so no exported cell can become a formula: XLSX cells are written as
strings (xlsxwriter never turns them into formulas), CSV text starting with = + - @ tab or CR gets a
leading apostrophe. Import diffs an edited file against what was exported, validates each edit with
the schema (its validators included) and stores the good ones as gold labels.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ValidationError

from extractor.config import RunConfig
from extractor.errors import ConfigError
from extractor.layout import Layout
from extractor.schemas import Schema, load_schema, validate_field
from extractor.store import Labels, frame_from_json_rows, write_atomic_bytes
from extractor.table import PolarsDataType, dtype_for, row_schema

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
LIST_SEPARATOR = "; "
# Columns people see besides the schema's fields, in this order; only field columns are importable.
_HEAD = ["doc_id", "status", "corrected"]
_TAIL = ["error_type", "error_message", "cost_usd", "prompt_tokens", "completion_tokens", "cached_tokens",
         "attempts", "latency_s", "model", "schema_version", "run_id", "extracted_at"]


@dataclass(frozen=True)
class ExportConfig:
    """`extractor export`: the invocation's settings (schema, folders) and what only exporting needs."""

    settings: RunConfig
    fmt: str = "xlsx"
    out: Path | None = None  # None: the layout's results.<fmt>

    def __post_init__(self) -> None:
        if self.fmt not in ("xlsx", "csv"):
            raise ConfigError(f"--format must be xlsx or csv, not {self.fmt!r}")


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


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def corrected_results(schema: Schema, layout: Layout) -> pl.DataFrame:
    """Latest results with stored labels applied; `corrected` names the fields a person changed."""
    path = layout.results
    if not path.exists():
        raise ConfigError(f"no results yet: {path} does not exist (run `extractor run` first)")
    frame = pl.read_parquet(path)
    journal = layout.journal
    latest: dict[str, dict[str, Any]] = {}
    if journal.is_file():  # looking must not create a journal
        with Labels.open_readonly(journal) as labels:
            latest = labels.latest()
    rows = []
    for row in frame.to_dicts():
        fixes = {k: v for k, v in latest.get(row["doc_id"], {}).items() if k in schema.model.model_fields}
        for name, value in fixes.items():
            # A label may give only part of a nested object (`salary.min`): the rest stays as extracted.
            current = row.get(name)
            row[name] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
        row["corrected"] = LIST_SEPARATOR.join(sorted(fixes)) or None
        rows.append(json.dumps(row, default=_json_default, ensure_ascii=False))
    return frame_from_json_rows(rows, {**row_schema(schema.model), "corrected": pl.String()})


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


def neutralize_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix an apostrophe to text a spreadsheet would otherwise read as a formula."""
    pattern = "^[" + "".join("\\" + c if c in "-^]\\" else c for c in FORMULA_TRIGGERS) + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(pattern)).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items() if dtype == pl.String)


def export(config: ExportConfig) -> Path:
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    corrected = corrected_results(schema, layout)
    flat = flatten(corrected, schema)
    out = config.out or layout.export(config.fmt)
    if config.fmt == "csv":
        buffer = io.BytesIO()
        neutralize_csv(flat).write_csv(buffer, date_format="%Y-%m-%d", datetime_format="%Y-%m-%d %H:%M:%S")
        write_atomic_bytes(out, buffer.getvalue())
    else:
        write_atomic_bytes(out, _xlsx_bytes(flat, _summary(corrected, layout)))
    return out


def _summary(frame: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    counts = {s: frame.filter(pl.col("status") == s).height for s in ("ok", "failed", "skipped")}
    numbers = [
        ("documents", float(frame.height)), ("ok", float(counts["ok"])), ("failed", float(counts["failed"])),
        ("skipped", float(counts["skipped"])), ("prompt tokens", float(frame["prompt_tokens"].sum())),
        ("completion tokens", float(frame["completion_tokens"].sum())),
        ("cached prompt tokens", float(frame["cached_tokens"].sum())),
        ("cost USD", float(frame["cost_usd"].sum())),
        ("corrected documents", float(frame["corrected"].is_not_null().sum())),
    ]
    metrics_path = layout.metrics
    if metrics_path.exists():  # self-consistency was measured: mean agreement per field
        metrics = pl.read_parquet(metrics_path)
        numbers.append(("sampled documents", float(metrics.height)))
        numbers.extend((f"agreement {name.removeprefix('agree_')}", float(metrics[name].cast(pl.Float64).mean() or 0.0))  # type: ignore[arg-type]
                       for name in metrics.columns if name.startswith("agree_"))
    return pl.DataFrame({"metric": [n for n, _ in numbers], "value": [v for _, v in numbers]})


def _xlsx_bytes(flat: pl.DataFrame, summary: pl.DataFrame) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    # Never let a text cell become a formula, a link or a number: what the document said stays text.
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False})
    flat.write_excel(workbook, worksheet="results", autofit=True, freeze_panes=(1, 0), autofilter=True,
                     table_style=None, dtype_formats={pl.Date: "yyyy-mm-dd", pl.Datetime: "yyyy-mm-dd hh:mm:ss"},
                     float_precision=6)
    summary.write_excel(workbook, worksheet="summary", autofit=True, table_style=None, float_precision=6)
    workbook.close()
    return buffer.getvalue()


# -- corrections back in ---------------------------------------------------------------------------------

def _read_cells(path: Path) -> tuple[list[str], list[dict[str, Any]], dict[tuple[int, str], bool]]:
    """(header, rows, formula cells) of the results sheet of an XLSX or of a CSV file."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            csv_rows = [{k: _unquote(v) for k, v in r.items()} for r in reader]
            return list(reader.fieldnames or []), csv_rows, {}
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(f"corrections must be an .xlsx or .csv file, not {path.name}")
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, data_only=False, read_only=True)
    except Exception as exc:
        raise ConfigError(f"cannot read {path.name} as a spreadsheet: {exc}") from None
    sheet = workbook["results"] if "results" in workbook.sheetnames else workbook.worksheets[0]
    rows_iter = sheet.iter_rows()
    header = [str(c.value) if c.value is not None else "" for c in next(rows_iter, [])]
    rows: list[dict[str, Any]] = []
    formulas: dict[tuple[int, str], bool] = {}
    for i, cells in enumerate(rows_iter):
        row = {}
        for name, cell in zip(header, cells, strict=False):
            row[name] = cell.value
            if cell.data_type == "f":
                formulas[(i, name)] = True
        rows.append(row)
    workbook.close()
    return header, rows, formulas


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
    """Store every valid edited field cell as a label; report each bad cell and unknown document."""
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    if not config.file.exists():
        raise ConfigError(f"{config.file} does not exist")
    current = flatten(corrected_results(schema, layout), schema)
    by_doc = {r["doc_id"]: r for r in current.to_dicts()}
    raw = {r["doc_id"]: r for r in pl.read_parquet(layout.results).to_dicts()}
    header, rows, formulas = _read_cells(config.file)
    if "doc_id" not in header:
        raise ConfigError(f"{config.file.name} has no doc_id column: is it an extractor export?")
    groups: dict[str, list[str]] = {}
    for column in header:
        top = column.split(".", 1)[0]
        if top in schema.model.model_fields:
            groups.setdefault(top, []).append(column)
    report = ImportReport()
    labels = Labels(layout.journal)  # writes: the corrections become labels
    try:
        for index, row in enumerate(rows):
            doc_id = _cell_value(row.get("doc_id"))
            if doc_id is None:
                continue
            report.rows_read += 1
            if doc_id not in by_doc:
                report.unknown_docs.append(str(doc_id))
                continue
            exported = by_doc[doc_id]
            for name, columns in groups.items():
                if all(_canon(row.get(c)) == _canon(exported.get(c)) for c in columns):
                    continue
                where = f"{doc_id} / {', '.join(columns)}"
                if any(formulas.get((index, c)) for c in columns):
                    report.rejected.append(f"{where}: formulas are not accepted, type the value itself")
                    continue
                value = _field_value(schema.model, name, columns, row)
                try:
                    checked = validate_field(schema.model, name, value, raw[doc_id])
                except ValidationError as exc:
                    problem = "; ".join(e["msg"] for e in exc.errors())
                    report.rejected.append(f"{where}: {problem} (got {value!r})")
                    continue
                labels.add(doc_id, name, checked, source=f"{config.file.name} (corrections)",
                           content_sha256=raw[doc_id].get("content_sha256"))
                report.applied.append((doc_id, name))
    finally:
        labels.close()
    return report


def _field_value(model: type[BaseModel], name: str, columns: list[str], row: dict[str, Any]) -> Any:
    if columns == [name]:
        cell = _cell_value(row.get(name))
        if isinstance(dtype_for(model.model_fields[name].annotation), pl.List):
            return [] if cell is None else [p.strip() for p in str(cell).split(";") if p.strip()]
        return cell
    parts = {c.split(".", 1)[1]: _cell_value(row.get(c)) for c in columns}
    return None if all(v is None for v in parts.values()) else parts
