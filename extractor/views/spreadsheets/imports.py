"""`extractor import-corrections`: a person's edits of an exported file, validated by the schema, stored as
their labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ValidationError

from extractor.config import RunConfig
from extractor.errors import ConfigError
from extractor.schemas import Schema, load_schema, validate_field
from extractor.store import (
    PERSON,
    Labels,
    read_set,
)
from extractor.store.labels import corrected_results
from extractor.table import child_fields, dtype_for
from extractor.views.spreadsheets.cells import _canon, _cell_value, _field_columns, _read_cells, _read_child, flatten
from extractor.views.spreadsheets.snapshot import (
    _base,
    _canon_cells,
    _canon_rows,
    _item_edits,
    _note_imports,
    _snapshot_of,
)


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
    for name in child_fields(schema.model):
        if config.file.suffix.lower() == ".csv" and config.file.stem.endswith(f".{name}"):
            main = config.file.with_name(config.file.name.replace(f".{name}.", ".", 1))
            raise ConfigError(f"{config.file.name} is the {name} table of a CSV export: pass {main.name}, the "
                              f"export's results file (its {name} file next to it is read with it)")
    outputs = read_set(layout, children=False)  # the corrected and the raw rows of one checkpoint
    corrected = corrected_results(schema, layout, outputs=outputs)
    current = flatten(corrected, schema)
    raw = {r["doc_id"]: r for r in outputs.results.to_dicts()}
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
        items_imported = _import_items(config.file, schema, corrected, sheet.export_id, raw, labels, people, report)
    finally:
        labels.close()
    if imported or items_imported:
        _note_imports(config.file, imported, items_imported)
    return report


def _import_items(path: Path, schema: Schema, corrected: pl.DataFrame, export_id: str | None,
                  raw: dict[str, dict[str, Any]], labels: Labels, people: dict[str, dict[str, Any]],
                  report: ImportReport) -> dict[str, dict[str, list[dict[str, str]]]]:
    """A child sheet's edited, added and deleted rows of a document, as a person's label of that document's
    whole list (validated with the schema, its validators included); returns what was imported, by field and
    document, for the snapshot."""
    edits, orphans = _item_edits(path, schema, corrected, export_id)
    for name, positions in orphans.items():
        report.rejected.extend(f"{name} / row {p + 2}: a row with values but no doc_id (type the document's "
                               "doc_id, or empty the row)" for p in positions)
    imported: dict[str, dict[str, list[dict[str, str]]]] = {}
    reported_unknown = set(report.unknown_docs)
    for edit in edits:
        if edit.doc_id not in raw:
            if edit.doc_id not in reported_unknown:
                report.unknown_docs.append(edit.doc_id)
                reported_unknown.add(edit.doc_id)
            continue
        where = f"{edit.doc_id} / {edit.field}"
        sheet = _read_child(path, edit.field)
        assert sheet is not None  # the edit was read from it
        if any((r.position, c) in sheet.formulas for r in edit.rows for c in edit.columns):
            report.rejected.append(f"{where}: formulas are not accepted, type the value itself")
            continue
        item = child_fields(schema.model)[edit.field]
        groups = _field_columns(schema, edit.columns, item)
        value = [{sub: _field_value(item, sub, columns, r.cells) for sub, columns in groups.items()}
                 for r in edit.rows]
        try:
            checked = validate_field(schema.model, edit.field, value, raw[edit.doc_id])
        except ValidationError as exc:
            problem = "; ".join(f"{_item_place(e['loc'], edit.field)}{e['msg']}" for e in exc.errors())
            report.rejected.append(f"{where}: {problem}")
            continue
        if people.get(edit.doc_id, {}).get(edit.field, object()) != checked:
            labels.add(edit.doc_id, edit.field, checked, source=f"{path.name} (corrections)",
                       content_sha256=raw[edit.doc_id].get("content_sha256"), kind=PERSON)
            people.setdefault(edit.doc_id, {})[edit.field] = checked
            report.applied.append((edit.doc_id, edit.field))
        imported.setdefault(edit.field, {})[edit.doc_id] = _canon_rows(edit.rows, edit.columns)
    return imported


def _field_value(model: type[BaseModel], name: str, columns: list[str], row: dict[str, Any]) -> Any:
    if columns == [name]:
        cell = _cell_value(row.get(name))
        if isinstance(dtype_for(model.model_fields[name].annotation), pl.List):
            return [] if cell is None else [p.strip() for p in str(cell).split(";") if p.strip()]
        return cell
    parts = {c.split(".", 1)[1]: _cell_value(row.get(c)) for c in columns}
    return None if all(v is None for v in parts.values()) else parts


def _item_place(loc: tuple[int | str, ...], name: str) -> str:
    """`("line_items", 1, "amount")` -> "item 2, amount: " (items counted from 1, as a person counts rows)."""
    parts = list(loc[1:] if loc and loc[0] == name else loc)
    if parts and isinstance(parts[0], int):
        rest = ".".join(map(str, parts[1:]))
        return f"item {parts[0] + 1}" + (f", {rest}" if rest else "") + ": "
    return ""
