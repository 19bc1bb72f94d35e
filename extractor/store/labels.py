"""The labels store: gold values per (document, field), people's corrections and labels files in one
append-only table, and the rule that a person's correction wins."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from extractor.layout import Layout
from extractor.schemas import Schema
from extractor.store.files import _writes, _writing, frame_from_json_rows
from extractor.store.migrations import (
    _KIND_FROM_SOURCE,
    LABELS_FILE,
    PERSON,
    SCHEMA_VERSION,
    _missing,
    _open_for_writing,
    _open_readonly,
)
from extractor.store.outputs import OutputSet, read_set
from extractor.table import LIST_SEPARATOR, row_schema


class Label(NamedTuple):
    """One stored gold value: what, whose (PERSON or LABELS_FILE), from where and when."""

    value: Any
    kind: str
    source: str
    created_at: str


class Labels:
    """Gold values per (document, field): people's corrections and imported label files, one store.

    Kept in the journal's database (same file, same migrations) so results and their labels travel
    together. Append-only, and every label keeps whose it is (`kind`: PERSON for a spreadsheet correction,
    LABELS_FILE for a labels file), where it came from and when. The value of a (doc_id, field) is a
    person's newest correction if there is one, else the newest labels-file value: a labels file never
    overrides what a person corrected, whichever came first.
    """

    readonly = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = _open_for_writing(path)
        self._has_table = True
        self._kind = "kind"

    @classmethod
    def open_readonly(cls, path: Path) -> Labels:
        """Open without any write (see Journal.open_readonly); raises JournalError when there is no
        journal. An older journal that never had a label reads as no labels; one whose labels have no
        kind yet reads them as the migration would."""
        db, version = _open_readonly(path)
        labels = cls.__new__(cls)
        labels.path = path
        labels.readonly = True
        labels._db = db
        labels._has_table = version >= SCHEMA_VERSION or not _missing(db, {"labels": set()})
        labels._kind = "kind" if not _missing(db, {"labels": {"kind"}}) else _KIND_FROM_SOURCE
        return labels

    def __enter__(self) -> Labels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_writes
    def add(self, doc_id: str, field: str, value: Any, *, source: str, content_sha256: str | None,
            kind: str) -> None:
        """Store one gold value; `kind` is PERSON (a correction) or LABELS_FILE (a labels file's value)."""
        if kind not in (PERSON, LABELS_FILE):
            raise ValueError(f"a label's kind is {PERSON!r} or {LABELS_FILE!r}, not {kind!r}")
        self._db.execute(
            "INSERT INTO labels (doc_id, field, value_json, content_sha256, source, created_at, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc_id, field, json.dumps(value, default=str, ensure_ascii=False), content_sha256, source,
             dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), kind))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT; ROLLBACK on any error): what is read inside
        it is what the adds inside it are checked against, and they are stored all or none. Another writer
        (a run) waits for it, as it waits for theirs, up to the connection's busy timeout."""
        with _writing(self.path):
            self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        with _writing(self.path):
            self._db.execute("COMMIT")

    def newest(self, kind: str | None = None, doc_id: str | None = None) -> dict[str, dict[str, Label]]:
        """{doc_id: {field: Label}}: the label that counts for each field (a person's newest correction,
        else the newest labels-file value), or with `kind` the newest label of that kind only; with `doc_id`
        that document's only."""
        out: dict[str, dict[str, Label]] = {}
        if not self._has_table:
            return out
        where, args = ("WHERE doc_id = ? ", (doc_id,)) if doc_id is not None else ("", ())
        for doc, field, value_json, label_kind, source, created_at in self._db.execute(
                f"SELECT doc_id, field, value_json, {self._kind}, source, created_at FROM labels WHERE id IN"
                f" (SELECT MAX(id) FROM labels {where}GROUP BY doc_id, field, {self._kind})"
                " ORDER BY doc_id, field, id", args):
            if kind is not None and label_kind != kind:
                continue
            fields = out.setdefault(doc, {})
            if field in fields and fields[field].kind == PERSON and label_kind != PERSON:
                continue  # a person's correction wins over a labels file, whichever is newer
            fields[field] = Label(json.loads(value_json), label_kind, source, created_at)
        return out

    def latest_with_file(self, from_file: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """`latest()` as it would be once a labels file's values were stored, storing nothing (a dry run): each
        file value counts unless a person corrected that field, as `newest()` decides."""
        out: dict[str, dict[str, Any]] = {}
        people: dict[str, set[str]] = {}
        for doc_id, fields in self.newest().items():
            out[doc_id] = {name: label.value for name, label in fields.items()}
            people[doc_id] = {name for name, label in fields.items() if label.kind == PERSON}
        for doc_id, values in from_file.items():
            for name, value in values.items():
                if name not in people.get(doc_id, set()):
                    out.setdefault(doc_id, {})[name] = value
        return out

    def latest(self, kind: str | None = None) -> dict[str, dict[str, Any]]:
        """{doc_id: {field: value}} of `newest(kind)`."""
        return {doc_id: {name: label.value for name, label in fields.items()}
                for doc_id, fields in self.newest(kind).items()}

    @_writes
    def mirror(self, other: Labels) -> int:
        """Add the labels `other` counts (each kind's newest) that this store lacks or holds otherwise, keeping
        their kind and source: an experiment's own journal sees the team's labels. Returns how many."""
        added = 0
        for kind in (LABELS_FILE, PERSON):
            mine = self.newest(kind)
            for doc_id, fields in other.newest(kind).items():
                for name, label in fields.items():
                    held = mine.get(doc_id, {}).get(name)
                    if held is None or held.value != label.value:
                        self.add(doc_id, name, label.value, source=label.source, content_sha256=None, kind=kind)
                        added += 1
        return added

    def close(self) -> None:
        self._db.close()


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def corrected_results(schema: Schema, layout: Layout, *, labels_files: bool = False,
                      outputs: OutputSet | None = None) -> pl.DataFrame:
    """Latest results with people's corrections applied; `corrected` names the fields a person corrected.

    A labels file is a measuring stick, not a correction: the sheet keeps showing what the model said, and
    `eval` measures it against the file. Only with `labels_files` (the gold values a fine-tune trains on) are
    labels-file values applied too, a person's correction still winning whichever is newer; `from_labels`
    then names the fields whose value came from a labels file. `outputs`: the set the results are read from when
    the caller also reads its evidence (`outputs.read_set`), else read here."""
    frame = (outputs or read_set(layout, children=False)).results
    journal = layout.journal
    labels: dict[str, dict[str, Label]] = {}
    if journal.is_file():  # looking must not create a journal
        with Labels.open_readonly(journal) as store:
            labels = store.newest() if labels_files else store.newest(PERSON)
    rows = []
    for row in frame.to_dicts():
        fixes = {k: v for k, v in labels.get(row["doc_id"], {}).items() if k in schema.model.model_fields}
        for name, label in fixes.items():
            # A label may give only part of a nested object (`salary.min`): the rest stays as extracted.
            current, value = row.get(name), label.value
            row[name] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
        row["corrected"] = LIST_SEPARATOR.join(sorted(k for k, v in fixes.items() if v.kind == PERSON)) or None
        row["from_labels"] = LIST_SEPARATOR.join(
            sorted(k for k, v in fixes.items() if v.kind == LABELS_FILE)) or None
        rows.append(json.dumps(row, default=_json_default, ensure_ascii=False))
    return frame_from_json_rows(rows, {**row_schema(schema.model), "corrected": pl.String(),
                                       "from_labels": pl.String()})
