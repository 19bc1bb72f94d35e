"""Snapshots: what an export wrote, kept next to the file, to tell a person's edits from what extractor put
there; an export refuses to replace a file whose edits were not imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from extractor.errors import ConfigError, ExportRefused
from extractor.schemas import Schema
from extractor.store import (
    write_json_atomic,
)
from extractor.views.spreadsheets.cells import _canon, _cell_value, _field_columns, _read_cells


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


