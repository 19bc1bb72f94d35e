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
from extractor.schemas import load_schema, validate_field
from extractor.store import (
    PERSON,
    Labels,
)
from extractor.store.labels import corrected_results
from extractor.table import dtype_for
from extractor.views.spreadsheets.cells import _canon, _cell_value, _field_columns, _read_cells, flatten
from extractor.views.spreadsheets.snapshot import _base, _canon_cells, _note_imports, _snapshot_of


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
