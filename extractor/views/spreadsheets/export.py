"""`extractor export`: the latest results, labels applied, as XLSX or CSV, with a snapshot beside it."""

from __future__ import annotations

import codecs
import datetime as dt
import io
import secrets
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from extractor.config import RunConfig
from extractor.errors import ConfigError, ExportRefused
from extractor.layout import Layout
from extractor.schemas import load_schema
from extractor.store import (
    read_set,
    write_atomic_bytes,
    write_json_atomic,
)
from extractor.store.labels import corrected_results
from extractor.table import child_fields
from extractor.views.spreadsheets.cells import _field_columns, flatten, flatten_child, neutralize_csv, sheet_name
from extractor.views.spreadsheets.notes import cell_notes, child_notes
from extractor.views.spreadsheets.snapshot import _canon_cells, _canon_items, _refuse_to_replace, snapshot_path
from extractor.views.spreadsheets.xlsx import ChildSheet, _summary, _table_xlsx_bytes, _xlsx_bytes

DEFAULT_CSV_ENCODING = "utf-8-sig"  # the BOM tells Excel the file is UTF-8 ("Dvořák", not "DvoÅ™Ã¡k")


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



def export(config: ExportConfig) -> Path:
    """Write the latest results (labels applied) as XLSX or CSV; refuses (ExportRefused) to replace a file
    that holds edits not imported yet, unless `config.overwrite`."""
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    outputs = read_set(layout, children=False)  # results and evidence of one checkpoint; items from the results
    corrected = corrected_results(schema, layout, outputs=outputs)
    flat = flatten(corrected, schema)
    children = {name: flatten_child(corrected, schema, name) for name in child_fields(schema.model)}
    out = config.out or layout.export(config.fmt)
    if out.exists() and not config.overwrite:
        _refuse_to_replace(out, schema, flat, corrected)
    exported_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    export_id = f"{exported_at.isoformat()} {secrets.token_hex(4)}"
    if config.fmt == "csv":
        # Every file is written before the snapshot that says what they hold: one CSV per table.
        for name, items in children.items():
            write_atomic_bytes(Layout.child_export(out, name), _csv_bytes(items, Layout.child_export(out, name),
                                                                         config.encoding))
        write_atomic_bytes(out, _csv_bytes(flat, out, config.encoding))
    else:
        notes, tally = cell_notes(corrected, [c for c in flat.columns if c not in children], outputs.evidence)
        sheets = []
        for name, items in children.items():
            item = child_fields(schema.model)[name]
            item_notes, item_tally = child_notes(corrected, name, items.columns, outputs.evidence)
            if tally is not None and item_tally is not None:
                tally = tally + item_tally
            sheets.append(ChildSheet(sheet_name(name), items, set(item.model_fields), item_notes))
        summary = _summary(corrected, schema, layout, exported_at, tally)
        write_atomic_bytes(out, _xlsx_bytes(flat, summary, set(schema.model.model_fields), export_id, notes, sheets))
    columns = [c for group in _field_columns(schema, flat.columns).values() for c in group]
    write_json_atomic({"export_id": export_id, "format": config.fmt, "exported_at": exported_at.isoformat(),
                       "cells": _canon_cells(flat, columns), "imported": {},
                       "children": {name: _canon_items(items) for name, items in children.items()},
                       "imported_children": {}}, snapshot_path(out))
    return out


# The routes sheet: document, kind, how decided, how sure, why, and what it cost (routes.parquet's columns).
ROUTE_COLUMNS = ("doc_id", "schema_name", "method", "confidence", "status", "error_message", "previous_schema",
                 "cached", "cost_usd")


def export_routes(config: ExportConfig) -> Path:
    """`--schema auto`'s routes as a sheet (`_routing/routes.xlsx` or `.csv`): one row per document, its kind
    (`schema_name`, empty: none), how it was decided and how sure; edit `schema_name` and `extractor route --import`
    stores the changed rows as re-routes. Refuses (ExportRefused) to replace a sheet whose changes were not
    imported yet, unless `config.overwrite`."""
    from extractor.extraction.routing import pending_reroutes

    settings = config.settings
    layout = settings.routing_layout
    if not layout.routes.is_file():
        raise ConfigError(f"no routes to export: {layout.routes} does not exist (run --schema auto first)")
    out = config.out or layout.export(config.fmt)
    if out.exists() and not config.overwrite and (pending := pending_reroutes(settings, out)):
        shown = ", ".join(pending[:5]) + (f", ... ({len(pending) - 5} more)" if len(pending) > 5 else "")
        raise ExportRefused(f"{out} re-routes {len(pending)} document(s) that were not imported ({shown}): run "
                            f"`extractor route --import {out}` first, or pass --overwrite to lose them")
    frame = pl.read_parquet(layout.routes).select(ROUTE_COLUMNS).sort("doc_id")
    frame = frame.with_columns(pl.col("status").cast(pl.String))
    if config.fmt == "csv":
        write_atomic_bytes(out, _csv_bytes(frame, out, config.encoding))
    else:
        write_atomic_bytes(out, _table_xlsx_bytes("routes", frame))
    return out


def _csv_bytes(flat: pl.DataFrame, out: Path, encoding: str) -> bytes:
    buffer = io.BytesIO()
    neutralize_csv(flat).write_csv(buffer, date_format="%Y-%m-%d", datetime_format="%Y-%m-%d %H:%M:%S")
    text = buffer.getvalue().decode("utf-8")
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise ConfigError(f"cannot write {out} in {encoding}: it has no code for "
                          f"{text[exc.start:exc.end]!r}; use utf-8-sig (the default)") from None
