"""Snapshots: what an export wrote, kept next to the file, to tell a person's edits from what extractor put
there; an export refuses to replace a file whose edits were not imported."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from extractor.errors import ConfigError, ExportRefused
from extractor.schemas import Schema
from extractor.store import (
    write_json_atomic,
)
from extractor.table import CHILD_KEYS, ITEM_INDEX, child_fields
from extractor.views.spreadsheets.cells import (
    _canon,
    _cell_value,
    _field_columns,
    _read_cells,
    _read_child,
    _Sheet,
    flatten_child,
)


def snapshot_path(path: Path) -> Path:
    """The snapshot of an export, next to it: `results.xlsx` -> `.results.xlsx.exported.json`."""
    return path.with_name(f".{path.name}.exported.json")


def _canon_cells(flat: pl.DataFrame, columns: list[str]) -> dict[str, dict[str, str]]:
    """doc_id -> {column: the cell's canonical text} for these columns."""
    return {str(row["doc_id"]): {c: _canon(row.get(c)) for c in columns}
            for row in flat.select(["doc_id", *columns]).to_dicts()}


def _item_columns(header: list[str]) -> list[str]:
    """The value columns of a child sheet: everything but doc_id and index."""
    return [c for c in header if c not in CHILD_KEYS]


def _canon_items(flat: pl.DataFrame) -> dict[str, list[dict[str, str]]]:
    """doc_id -> its items' canonical cells, in index order, from an exported child sheet (`flatten_child`)."""
    columns = _item_columns(flat.columns)
    out: dict[str, list[dict[str, str]]] = {}
    for row in flat.sort("doc_id", ITEM_INDEX).to_dicts():
        out.setdefault(str(row["doc_id"]), []).append({c: _canon(row.get(c)) for c in columns})
    return out


@dataclass(frozen=True)
class _ItemRow:
    """A row of an edited child sheet: where it stands in the sheet (its formulas are keyed by it), its cells."""

    position: int
    cells: dict[str, Any]


def _sheet_items(sheet: _Sheet, columns: list[str]) -> tuple[dict[str, list[_ItemRow]], list[int]]:
    """doc_id -> its rows in an edited child sheet, in the order of their `index` cells (rows a person added
    without one after those, in sheet order), and the positions of rows that hold values but no doc_id. A row
    whose cells are all empty is no item."""
    groups: dict[str, list[tuple[float, int, _ItemRow]]] = {}
    orphans: list[int] = []
    for position, row in enumerate(sheet.rows):
        if all(_cell_value(row.get(c)) is None for c in columns):
            continue
        doc_id = _cell_value(row.get("doc_id"))
        if doc_id is None:
            orphans.append(position)
            continue
        try:
            order = float(_cell_value(row.get(ITEM_INDEX)))
        except (TypeError, ValueError):
            order = math.inf
        groups.setdefault(str(doc_id), []).append((order, position, _ItemRow(position, row)))
    ordered = {doc_id: [r for *_, r in sorted(rows, key=lambda x: (x[0], x[1]))] for doc_id, rows in groups.items()}
    return ordered, orphans


def _canon_rows(rows: list[_ItemRow], columns: list[str]) -> list[dict[str, str]]:
    return [{c: _canon(r.cells.get(c)) for c in columns} for r in rows]


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


def _children_of(path: Path, export_id: str | None) -> tuple[dict[str, dict[str, list[dict[str, str]]]] | None,
                                                              dict[str, dict[str, list[dict[str, str]]]]]:
    """(items, imported) of an exported file's child sheets, as `_snapshot_of` for the results sheet: field ->
    doc_id -> the items' canonical cells the export wrote (None when unknown) and those imported since."""
    snapshot = _load_snapshot(path) or {}
    same = not export_id or snapshot.get("export_id") == export_id
    return (snapshot.get("children") if same else None), snapshot.get("imported_children") or {}


def _note_imports(path: Path, imported: dict[str, dict[str, str]],
                  children: dict[str, dict[str, list[dict[str, str]]]] | None = None) -> None:
    """Add cells imported from a file to its snapshot (made if there is none): results cells, and the items of
    child sheets by field and document."""
    record = _load_snapshot(path) or {"export_id": None, "format": path.suffix.lower().lstrip("."),
                                      "exported_at": None, "cells": None}
    merged: dict[str, dict[str, str]] = record.get("imported") or {}
    for doc_id, cells in imported.items():
        merged.setdefault(doc_id, {}).update(cells)
    items: dict[str, dict[str, list[dict[str, str]]]] = record.get("imported_children") or {}
    for name, docs in (children or {}).items():
        items.setdefault(name, {}).update(docs)
    write_json_atomic({**record, "imported": merged, "imported_children": items}, snapshot_path(path))


def _items_base(name: str, doc_id: str, exported: dict[str, dict[str, list[dict[str, str]]]],
                imported: dict[str, dict[str, list[dict[str, str]]]],
                current: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    """What a child sheet held of a document's items when extractor last knew the file (as `_base`)."""
    for known in (imported, exported):
        if doc_id in known.get(name, {}):
            return known[name][doc_id]
    return current.get(doc_id, [])


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


@dataclass(frozen=True)
class _ItemEdit:
    """A document whose items in a child sheet differ from what the file held when extractor last knew it."""

    field: str
    doc_id: str
    rows: list[_ItemRow]  # the document's rows in the file, in item order
    columns: list[str]  # the sheet's value columns
    labeled: bool  # an export would write these very items now (the labels already hold the edit)


def _item_edits(path: Path, schema: Schema, corrected: pl.DataFrame, export_id: str | None,
                ) -> tuple[list[_ItemEdit], dict[str, list[int]]]:
    """Every document whose items a person edited, added or deleted in a child sheet of the file, and per
    sheet the positions of rows that hold values but no doc_id. Sheets the file lacks are not looked at."""
    exported_items, imported_items = _children_of(path, export_id)
    edits: list[_ItemEdit] = []
    orphans: dict[str, list[int]] = {}
    for name in child_fields(schema.model):
        sheet = _read_child(path, name)
        if sheet is None:
            continue
        columns = _item_columns(sheet.header)
        current = _canon_items(flatten_child(corrected, schema, name))
        rows, without_doc = _sheet_items(sheet, columns)
        if without_doc:
            orphans[name] = without_doc
        known = set((exported_items or {}).get(name, {})) | set(imported_items.get(name, {}))

        def shown(items: list[dict[str, str]], columns: list[str] = columns) -> list[dict[str, str]]:
            return [{c: cells.get(c, "") for c in columns} for cells in items]

        for doc_id in sorted(set(rows) | known):
            seen = _canon_rows(rows.get(doc_id, []), columns)
            if seen != shown(_items_base(name, doc_id, exported_items or {}, imported_items, current)):
                edits.append(_ItemEdit(name, doc_id, rows.get(doc_id, []), columns,
                                       seen == shown(current.get(doc_id, []))))
    return edits, orphans


def unimported_item_edits(path: Path, schema: Schema, corrected: pl.DataFrame) -> list[str]:
    """`doc_id / field` of every document whose items a person changed in a child sheet of this exported file
    (edited, added or deleted rows) and that were not imported (an edit the labels already hold is no loss),
    and `field: N row(s) without a doc_id`."""
    edits, orphans = _item_edits(path, schema, corrected, _read_cells(path).export_id)
    pending = [f"{e.doc_id} / {e.field}" for e in edits if not e.labeled]
    return pending + [f"{name}: {len(rows)} row(s) without a doc_id" for name, rows in orphans.items()]


def _refuse_to_replace(out: Path, schema: Schema, flat: pl.DataFrame, corrected: pl.DataFrame) -> None:
    try:
        pending = unimported_edits(out, schema, flat) + unimported_item_edits(out, schema, corrected)
    except ConfigError as exc:
        raise ExportRefused(f"{out} exists and is not an extractor export this command can check ({exc}): "
                            "move it away, or pass --overwrite to replace it") from None
    if pending:
        shown = ", ".join(pending[:5]) + (f", ... ({len(pending) - 5} more)" if len(pending) > 5 else "")
        raise ExportRefused(
            f"{out} holds {len(pending)} edited cell(s) that were not imported ({shown}): run "
            f"`extractor import-corrections {out}` first (cells it rejects stay edits: fix or undo them), or pass "
            "--overwrite to replace the file and lose them")


