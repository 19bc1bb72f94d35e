"""How cells look: number formats and widths by column, the XLSX writer and the summary sheet."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from extractor.layout import Layout
from extractor.quality.calibration import read_verdict
from extractor.schemas import Schema
from extractor.table import ITEM_INDEX, PolarsDataType
from extractor.views.spreadsheets.cells import EXPORT_PROPERTY
from extractor.views.spreadsheets.notes import FLAG_STYLE, CellNote, NotFoundTally


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


@dataclass(frozen=True)
class ChildSheet:
    """The sheet of one list-of-objects field: its flattened items (`flatten_child`), the item fields (whole
    numbers there are formatted as the schema's), and the comments of its cells by (doc_id, index, column)."""

    name: str
    flat: pl.DataFrame
    fields: set[str]
    notes: dict[tuple[str, int, str], CellNote]

    def note_of(self, row: tuple[Any, ...], column: str) -> CellNote | None:
        """The comment of one cell of a row of `flat` (doc_id first, then the item's index)."""
        index = row[self.flat.columns.index(ITEM_INDEX)]
        return None if index is None else self.notes.get((str(row[0]), int(index), column))


def _xlsx_bytes(flat: pl.DataFrame, summary: list[tuple[str, Any, _Format | None, float | None]],
                fields: set[str], export_id: str, notes: dict[tuple[str, str], CellNote] | None = None,
                children: list[ChildSheet] | None = None) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False,
                                            "nan_inf_to_errors": True})
    workbook.set_custom_property(EXPORT_PROPERTY, export_id)
    header_format = workbook.add_format({"bold": True, "bottom": 1})
    main_notes = notes or {}
    _write_table(workbook, header_format, "results", flat, fields,
                 lambda row, column: main_notes.get((str(row[0]), column)))
    for child in children or ():
        _write_table(workbook, header_format, child.name, child.flat, child.fields, child.note_of)
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


def _table_xlsx_bytes(name: str, flat: pl.DataFrame) -> bytes:
    """A workbook of one sheet of rows, no comments (the routes sheet)."""
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False,
                                            "nan_inf_to_errors": True})
    _write_table(workbook, workbook.add_format({"bold": True, "bottom": 1}), name, flat, set(),
                 lambda row, column: None)
    workbook.close()
    return buffer.getvalue()


def _write_table(workbook: Any, header_format: Any, name: str, flat: pl.DataFrame, fields: set[str],
                 note_of: Callable[[tuple[Any, ...], str], CellNote | None]) -> None:
    """One sheet of rows: number formats and widths by column, each cell's comment (`note_of(row, column)`)
    and the not-found fill, `needs_review` filled where true."""
    sheet = workbook.add_worksheet(name)
    sheet.set_comments_author("extractor")
    widths: list[float] = []
    cell_formats: list[Any] = []
    numbers: list[_Format | None] = []
    for column, dtype in flat.schema.items():
        values = flat[column].to_list()
        number = _column_format(column, dtype, values, fields)
        numbers.append(number)
        cell_formats.append(workbook.add_format({"num_format": number.code}) if number else None)
        if number is not None:
            texts = [number.render(v) for v in values if v is not None and not (isinstance(v, float) and
                                                                                 not math.isfinite(v))]
        else:
            texts = [max(str(v).splitlines() or [""], key=len) for v in values if v is not None]
        widths.append(_width(texts, column, number is not None))
    _prepare_sheet(sheet, header_format, flat.columns, flat.height, widths)
    flagged: dict[int, Any] = {}  # column -> its number format, filled: a value to look at

    def flag(c: int) -> Any:
        if c not in flagged:
            number = numbers[c]
            flagged[c] = workbook.add_format({**({"num_format": number.code} if number else {}), **FLAG_STYLE})
        return flagged[c]

    review = flat.columns.index("needs_review") if "needs_review" in flat.columns else None
    for r, row in enumerate(flat.iter_rows(), start=1):
        for c, value in enumerate(row):
            note = note_of(row, flat.columns[c]) if value is not None else None
            flagged_cell = (note is not None and note.missing) or (c == review and value is True)
            _write_cell(sheet, r, c, value, flag(c) if flagged_cell else cell_formats[c])
            if note is not None:
                sheet.write_comment(r, c, note.text, note.box())


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
    ]
    verdict = read_verdict(layout.calibration)
    if verdict is not None and verdict.auroc is not None:
        judged = (f"uninformative for {verdict.model}: needs_review and the red cells do not tell right values from "
                  "wrong ones" if verdict.uninformative else f"separates right from wrong for {verdict.model}")
        rows.append(("label-free confidence (extractor eval)",
                     f"AUROC {verdict.auroc:.2f} over {verdict.values} labeled values, {judged} "
                     f"({verdict.evaluated_at})", None, None))
    metrics_path = layout.metrics
    if metrics_path.exists():  # self-consistency was measured: mean agreement per field
        metrics = pl.read_parquet(metrics_path)
        rows.append(("sampled documents", metrics.height, _COUNT, None))
        rows.extend((f"agreement {name.removeprefix('agree_')}",
                     float(metrics[name].cast(pl.Float64).mean() or 0.0), _SHARE, None)  # type: ignore[arg-type]
                    for name in metrics.columns if name.startswith("agree_"))
    return rows


