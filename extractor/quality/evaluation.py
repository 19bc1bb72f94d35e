"""`extractor eval`: score the latest results against gold labels, per field.

Labels come from a file (JSONL, CSV or Parquet keyed by `doc_id`) and from people's corrections;
both live in one store (the journal's `labels` table), each label marked as a person's or a file's. A
person's correction of a field wins over a labels file's value whatever the order; within one kind the
newest wins. Where both give a value, the report says how often they agree. In JSONL,
a key with null means "the document has no such value" and a missing key means "not labeled", in a nested
object too (`{"salary": {"min": 85000}}` labels only `salary.min`). In CSV and Parquet an empty cell means
"not labeled"; list cells in CSV are separated by ";" and nested objects use `salary.min`-style columns.
Every label, null included, is validated with the schema before it is stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from extractor.config import RunConfig
from extractor.errors import ConfigError
from extractor.quality.calibration import Calibration, calibrate, write_verdict
from extractor.schemas import Schema, load_schema, validate_field
from extractor.store import LABELS_FILE, PERSON, Journal, Label, Labels, read_set, require_results
from extractor.values.metrics import FieldScore, RecordScore, compared_kinds, leaves, score, similarity


@dataclass(frozen=True)
class EvalConfig:
    """`extractor eval`: the invocation's settings and, optionally, a labels file to store first."""

    settings: RunConfig
    labels_file: Path | None = None


@dataclass(frozen=True)
class LabelConflict:
    """A value a labels file gives that a person corrected differently (the person's value counts)."""

    doc_id: str
    field: str  # a leaf: `salary.min`
    person: Any
    person_source: str
    file: Any
    file_source: str


@dataclass
class EvalReport:
    scores: list[FieldScore]
    labeled_documents: int
    scored_documents: int
    schema_version: str
    models: list[str]
    imported: int = 0
    rejected: list[str] = field(default_factory=list)
    shared_labels: int = 0  # (document, field) values both a person and a labels file gave
    conflicts: list[LabelConflict] = field(default_factory=list)  # of those, the ones that disagree
    calibration: Calibration | None = None  # label-free confidence against correctness (needs evidence)

    def as_dict(self) -> dict[str, Any]:
        """`extractor eval --json`: per-field scores, the overall figure and the calibration, for scripts."""
        right, total = self.fields_right
        fields: dict[str, dict[str, Any]] = {s.field: {"kind": s.kind, "documents": s.documents, "accuracy": s.accuracy,
                            "precision": s.precision, "recall": s.recall, "f1": s.f1,
                            "tp": s.tp, "fp": s.fp, "fn": s.fn, "tn": s.tn, "values": s.values,
                            "right": round(s.right, 4)} for s in self.scores}
        for s in self.scores:
            if isinstance(s, RecordScore):  # items matched, invented, missed; each item field over the matched
                fields[s.field]["items"] = {"matched": s.tp, "invented": s.fp, "missed": s.fn,
                                            "precision": s.precision, "recall": s.recall, "f1": s.f1}
                fields[s.field]["sub_fields"] = {name: {"values": sub.values, "right": sub.right,
                                                        "accuracy": sub.accuracy} for name, sub in s.sub_fields.items()}
        if self.calibration is not None:
            for name, numbers in self.calibration.per_field.items():
                fields.setdefault(name.split(".")[0], {}).setdefault("calibration", {})[name] = numbers
        return {"schema_version": self.schema_version, "models": self.models,
                "labeled_documents": self.labeled_documents, "scored_documents": self.scored_documents,
                "overall": {"fields_right": round(right, 4), "fields": total,
                            "accuracy": right / total if total else None},
                "fields": fields,
                "calibration": self.calibration.as_dict() if self.calibration is not None else None,
                "labels": {"imported": self.imported, "rejected": self.rejected,
                           "shared_with_people": self.shared_labels, "disagreeing": len(self.conflicts)}}

    @property
    def label_agreement(self) -> float | None:
        """Share of the values both a person and a labels file gave on which they agree."""
        return 1 - len(self.conflicts) / self.shared_labels if self.shared_labels else None

    @property
    def fields_right(self) -> tuple[float, int]:
        """(values right, labeled values): the headline "fields right / total". A field counts once per labeled
        document (a list its set F1); a list of objects counts each labeled item value (`RecordScore`)."""
        return sum(s.right for s in self.scores), sum(s.values for s in self.scores)


def read_labels_file(path: Path, schema: Schema) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """{doc_id: {field: validated value}} from a labels file, and one message per rejected value."""
    if not path.exists():
        raise ConfigError(f"labels file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        raw = _read_jsonl(path)
    elif suffix == ".csv":
        raw = [_from_flat(row, schema) for row in _read_csv(path)]
    elif suffix == ".parquet":
        raw = [_from_flat({k: v for k, v in r.items() if v is not None}, schema)
               for r in pl.read_parquet(path).to_dicts()]
    else:
        raise ConfigError(f"labels must be .jsonl, .csv or .parquet, not {path.name}")
    labels: dict[str, dict[str, Any]] = {}
    rejected: list[str] = []
    fields = schema.model.model_fields
    for row in raw:
        doc_id = row.get("doc_id")
        if not doc_id:
            rejected.append(f"a row without doc_id: {str(row)[:80]}")
            continue
        for name, value in row.items():
            if name not in fields:
                continue
            # null is validated too: it is a gold value ("no such value") only where the schema allows one
            try:
                checked = validate_field(schema.model, name, value)
            except ValidationError as exc:
                rejected.append(f"{doc_id} / {name}: {'; '.join(e['msg'] for e in exc.errors())} (got {value!r})")
                continue
            if isinstance(value, dict) and isinstance(checked, dict):
                # validation returns the whole nested object; the sub-keys the label left out are not labeled
                checked = {k: v for k, v in checked.items() if k in value}
            labels.setdefault(doc_id, {})[name] = checked
    return labels, rejected


def store_labels_file(store: Labels, path: Path, schema: Schema) -> tuple[int, list[str]]:
    """Put a labels file's values into the labels store (eval --labels, experiment --labels): (values stored,
    one message per rejected value). A value the store already has from a labels file is not stored again;
    a person's corrections stay whatever the file says (see Labels)."""
    from_file, rejected = read_labels_file(path, schema)
    current = store.latest(LABELS_FILE)
    imported = 0
    for doc_id, values in from_file.items():
        for name, value in values.items():
            if current.get(doc_id, {}).get(name, object()) != value:
                store.add(doc_id, name, value, source=path.name, content_sha256=None, kind=LABELS_FILE)
                imported += 1
    return imported, rejected


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; a malformed line is a ConfigError naming file and line."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"labels file {path}, line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ConfigError(f"labels file {path}, line {number}: expected a JSON object with doc_id, "
                              f"got {type(row).__name__}")
        rows.append(row)
    return rows


def _read_csv(path: Path) -> list[dict[str, str]]:
    """CSV rows keyed by header; a row with more (non-empty) cells than the header is a ConfigError."""
    rows: list[dict[str, str]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        try:
            for row in reader:
                extra = row.pop(None, None)  # DictReader files cells beyond the header under the key None
                if extra and any(cell.strip() for cell in extra):
                    raise ConfigError(f"labels file {path}, line {reader.line_num}: {len(extra)} more cell(s) "
                                      f"than the header's {len(reader.fieldnames or ())} columns")
                rows.append(row)
        except csv.Error as exc:
            raise ConfigError(f"labels file {path}, line {reader.line_num}: {exc}") from None
    return rows


def _from_flat(row: dict[str, Any], schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or value == "":
            continue  # empty cell: not labeled
        top, _, sub = key.partition(".")
        if sub:
            out.setdefault(top, {})[sub] = value
        elif top in schema.kinds and isinstance(value, str) and schema.kinds[top].is_list:
            out[top] = [p.strip() for p in value.split(";") if p.strip()]
        else:
            out[top] = value
    return out


def label_conflicts(people: dict[str, dict[str, Label]], files: dict[str, dict[str, Label]],
                    schema: Schema) -> tuple[int, list[LabelConflict]]:
    """(values both gave, the ones they disagree on), leaf by leaf (`salary.min`), compared the way eval
    scores (names case/space/punctuation-blind, numbers within 2%, ...; lists must agree as sets)."""
    kinds = compared_kinds(schema.model)
    shared, conflicts = 0, []
    for doc_id in sorted(set(people) & set(files)):
        person = {name: label.value for name, label in people[doc_id].items()}
        given = {name: label.value for name, label in files[doc_id].items()}
        person_leaves, file_leaves = leaves(person, kinds), leaves(given, kinds)
        for key in sorted(set(person_leaves) & set(file_leaves)):
            shared += 1
            if similarity(kinds[key], person_leaves[key], file_leaves[key]) < 1.0:
                top = key.split(".", 1)[0]
                conflicts.append(LabelConflict(doc_id, key, person_leaves[key], people[doc_id][top].source,
                                               file_leaves[key], files[doc_id][top].source))
    return shared, conflicts


def evaluate(config: EvalConfig) -> EvalReport:
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    require_results(layout)  # before the labels store: no journal is created where there are no results
    path = layout.journal
    store = Labels(path)  # writes: labels from --labels FILE, then the scores (eval history)
    imported = 0
    rejected: list[str] = []
    try:
        if config.labels_file is not None:
            imported, rejected = store_labels_file(store, config.labels_file, schema)
        labels = store.latest()
        shared, conflicts = label_conflicts(store.newest(PERSON), store.newest(LABELS_FILE), schema)
    finally:
        store.close()
    outputs = read_set(layout, children=False)  # results and their evidence of one checkpoint
    rows = outputs.results.to_dicts()
    scores = score(rows, labels, schema.model)
    scored = {r["doc_id"] for r in rows} & set(labels)
    calibration = None
    if outputs.evidence is not None:  # results from before evidence have no confidence to judge
        calibration = calibrate(outputs.evidence.to_dicts(), labels, schema.model, rows)
    report = EvalReport(scores=scores, labeled_documents=len(labels), scored_documents=len(scored),
                        schema_version=schema.version, models=sorted({r["model"] for r in rows if r["model"]}),
                        imported=imported, rejected=rejected, shared_labels=shared, conflicts=conflicts,
                        calibration=calibration)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if calibration is not None and calibration.auroc is not None:
        write_verdict(layout.calibration, calibration, ",".join(report.models), report.schema_version, now)
    journal = Journal(path)
    try:
        common = {"evaluated_at": now, "schema_version": report.schema_version, "model": ",".join(report.models)}
        rows_kept = [{**common, "field": s.field, "documents": s.documents, "accuracy": s.accuracy,
                      "precision": s.precision, "recall": s.recall, "f1": s.f1} for s in scores]
        # An item field of a list of objects is kept too (`line_items.amount`, over the matched items), so the
        # history shows which of them prompt work does not fix.
        rows_kept += [{**common, "field": f"{s.field}.{name}", "documents": s.documents, "accuracy": sub.accuracy,
                       "precision": None, "recall": None, "f1": None}
                      for s in scores if isinstance(s, RecordScore) for name, sub in s.sub_fields.items()]
        journal.record_eval(rows_kept)
    finally:
        journal.close()
    return report
