"""What the review app shows and stores: the queue and each document from a schema's latest outputs, and a
person's labels, checked by the schema's own validators, in the labels store `import-corrections` uses.

Nothing is held open between requests: results.parquet and evidence.parquet are read again whenever a run
has rewritten them (they are replaced atomically), and the journal is opened for each request, read-only to
look and for one short write transaction to store, so a nightly run writing the same outputs is never
blocked for longer than one insert (SQLite WAL: readers never wait for it)."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import re
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from extractor.config import RunConfig
from extractor.documents import DocumentReader
from extractor.ladder.breakeven import Assumptions, labeled_documents
from extractor.schemas import load_schema, validate_field
from extractor.store import PERSON, Label, Labels, read_set, require_results
from extractor.values.evidence import STATUSES, Evidence
from extractor.views.review import DocReview, highlight, read_text_again
from extractor.views.reviewapp.forms import FieldInput, from_input, inputs_of, version

# Training examples fine-tuning needs, as `extractor breakeven` assumes it (`--training-examples`).
FINETUNE_EXAMPLES = Assumptions().training_examples
QUEUE_STATUSES = ("needs_review", "unreviewed", "reviewed", "ok", "failed", "skipped")
TEXTS_KEPT = 32  # documents whose text is kept read, most recently shown first


class BadRequest(Exception):
    """A request the API cannot take (malformed JSON, a field both edited and accepted): 400."""


@dataclasses.dataclass(frozen=True)
class Outputs:
    """One reading of results.parquet and evidence.parquet (as JSON values), with the files' identity."""

    signature: tuple[object, ...]
    rows: dict[str, dict[str, Any]]  # doc_id -> its result row, in the file's order
    evidence: dict[str, list[Evidence]]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What storing labels answered: the HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]


def reviewer_name(settings: RunConfig) -> str:
    """Who stores the labels: the `reviewer` setting, else the OS user."""
    if settings.reviewer:
        return settings.reviewer
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password database
        return "unknown reviewer"


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _top(path: str) -> str:
    """The schema field of an evidence path (`salary.min`, `skills[2]` -> `salary`, `skills`)."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _message(exc: ValidationError) -> str:
    """The schema's own messages, a nested field's named (`min: Input should be greater than or equal to 0`)."""
    parts = []
    for error in exc.errors():
        inner = ".".join(str(p) for p in error["loc"][1:])
        parts.append(f"{inner}: {error['msg']}" if inner else error["msg"])
    return "; ".join(parts)


def _shown(status: str, row: dict[str, Any], reviewed: bool) -> bool:
    """Whether the queue's `status` filter (QUEUE_STATUSES) shows a document."""
    if status == "needs_review":
        return bool(row.get("needs_review")) and not reviewed
    if status in ("unreviewed", "reviewed"):
        return reviewed == (status == "reviewed")
    return row.get("status") == status


def _min_confidence(values: list[Evidence]) -> float | None:
    scores = [v.confidence for v in values if v.confidence is not None]
    return min(scores) if scores else None


class ReviewDesk:
    """One schema's outputs as the review app sees them: the queue, a document, and storing labels."""

    def __init__(self, settings: RunConfig) -> None:
        self.settings = settings
        self.layout = settings.layout
        self.schema = load_schema(settings.schemas_dir, settings.schema)
        self.inputs: dict[str, FieldInput] = inputs_of(self.schema.model)
        require_results(self.layout)
        self.reviewer = reviewer_name(settings)
        self.source = f"review app: {self.reviewer} (corrections)"
        self._lock = threading.Lock()
        self._outputs: Outputs | None = None
        self._texts: OrderedDict[tuple[str, str | None, str | None], DocReview] = OrderedDict()
        self._read_lock = threading.Lock()
        # Unlimited length: the result was accepted under the max_chars of its run, whatever it is today.
        self._reader = DocumentReader(max_chars=sys.maxsize, timeout_s=settings.parse_timeout_s,
                                      ocr_max_pages=settings.ocr_max_pages,
                                      ocr_page_timeout_s=settings.ocr_page_timeout_s)

    def close(self) -> None:
        self._reader.close()

    # -- reading ----------------------------------------------------------------------------------------

    def outputs(self) -> Outputs:
        """The latest outputs, read again only when a run has replaced a file since."""
        signature = (_signature(self.layout.results), _signature(self.layout.evidence))
        with self._lock:
            if self._outputs is not None and self._outputs.signature == signature:
                return self._outputs
        read = read_set(self.layout, children=False)  # results and their evidence of one checkpoint
        rows = {row["doc_id"]: json.loads(json.dumps(row, default=_json_default, ensure_ascii=False))
                for row in read.results.to_dicts()}
        evidence: dict[str, list[Evidence]] = {}
        for item in read.evidence.to_dicts() if read.evidence is not None else []:
            evidence.setdefault(item["doc_id"], []).append(Evidence.from_row(item))
        outputs = Outputs(signature=signature, rows=rows, evidence=evidence)
        with self._lock:
            self._outputs = outputs
        return outputs

    def person_labels(self, doc_id: str | None = None) -> dict[str, dict[str, Label]]:
        """People's newest labels (of one document, or all), read from the journal opened read-only."""
        if not self.layout.journal.is_file():
            return {}
        with Labels.open_readonly(self.layout.journal) as store:
            return store.newest(PERSON, doc_id)

    def progress(self, outputs: Outputs, people: dict[str, dict[str, Label]]) -> dict[str, Any]:
        reviewed = sum(self._checked(people.get(d, {})) == len(self.inputs) for d in outputs.rows)
        return {"documents": len(outputs.rows), "reviewed": reviewed,
                "labeled": labeled_documents(self.layout.journal), "finetune_needs": FINETUNE_EXAMPLES}

    def _checked(self, labels: dict[str, Label]) -> int:
        return sum(name in labels for name in self.inputs)

    def queue(self, field: str | None = None, status: str | None = None,
              evidence: str | None = None) -> dict[str, Any]:
        """`GET /api/documents`: the documents to review, those that need review and are least sure first
        (by the lowest confidence of their values, or of `field`'s); reviewed ones last. `field` with
        `evidence`: only documents where that field has a value of that evidence status; `status`: one of
        QUEUE_STATUSES."""
        if field is not None and field not in self.inputs:
            raise BadRequest(f"no field {field!r} in schema {self.schema.name} (fields: {', '.join(self.inputs)})")
        if status is not None and status not in QUEUE_STATUSES:
            raise BadRequest(f"status is one of {', '.join(QUEUE_STATUSES)}, not {status!r}")
        if evidence is not None and evidence not in STATUSES:
            raise BadRequest(f"evidence is one of {', '.join(STATUSES)}, not {evidence!r}")
        outputs = self.outputs()
        people = self.person_labels()
        items = []
        for doc_id, row in outputs.rows.items():
            values = outputs.evidence.get(doc_id, [])
            checked = self._checked(people.get(doc_id, {}))
            reviewed = checked == len(self.inputs)
            if status is not None and not _shown(status, row, reviewed):
                continue
            considered = [v for v in values if field is None or _top(v.field) == field]
            if evidence is not None and not any(v.status == evidence for v in considered):
                continue
            items.append({
                "doc_id": doc_id, "status": row.get("status"), "needs_review": bool(row.get("needs_review")),
                "grounded": row.get("grounded"), "confidence": _min_confidence(considered),
                "not_found": sum(v.status == "not_found" for v in values), "checked": checked,
                "fields": len(self.inputs), "reviewed": reviewed, "error": row.get("error_type")})

        def order(item: dict[str, Any]) -> tuple[bool, int, float, str]:
            rank = 0 if item["needs_review"] else 1 if item["status"] == "ok" else 2
            confidence = item["confidence"] if item["confidence"] is not None else 1.0
            return item["reviewed"], rank, confidence, item["doc_id"]

        items.sort(key=order)
        return {"schema": self.schema.name, "documents": items, "progress": self.progress(outputs, people),
                "fields": list(self.inputs), "statuses": list(QUEUE_STATUSES), "evidence": list(STATUSES),
                "reviewer": self.reviewer}

    def _text(self, row: dict[str, Any], values: list[Evidence]) -> DocReview:
        doc = DocReview(doc_id=row["doc_id"], status=str(row.get("status")), grounded=row.get("grounded"),
                        needs_review=bool(row.get("needs_review")), values=values,
                        source_path=row.get("source_path"), content_sha256=row.get("content_sha256"))
        if doc.status != "ok":
            return doc
        key = (doc.doc_id, doc.content_sha256, doc.source_path)
        with self._read_lock:  # one document read at a time, each once while it is kept
            if key in self._texts:
                self._texts.move_to_end(key)
                return self._texts[key]
            asyncio.run(read_text_again(doc, self._reader, self.settings.archive_dir))
            self._texts[key] = doc
            while len(self._texts) > TEXTS_KEPT:
                self._texts.popitem(last=False)
        return doc

    def field_state(self, name: str, row: dict[str, Any], label: Label | None,
                    values: list[Evidence]) -> dict[str, Any]:
        """One field as the page shows it: the model's value, a person's label, its evidence, its input."""
        value = row.get(name)
        mine = [v for v in values if _top(v.field) == name]
        state = None
        if label is not None:
            state = ("not in the document" if label.value in (None, [], "") else
                     "accepted" if label.value == value else "corrected")
        return {
            "name": name, "input": self.inputs[name].as_dict(), "value": value,
            "current": label.value if label is not None else value, "version": version(value, label),
            "label": None if label is None else {"value": label.value, "source": label.source,
                                                  "created_at": label.created_at, "state": state},
            "confidence": _min_confidence(mine),
            "evidence": [{"field": v.field, "value": v.value, "status": v.status, "confidence": v.confidence,
                          "quote": v.quote, "page": v.page, "placed": v.start is not None} for v in mine]}

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """`GET /api/documents/{doc_id}`: its text as the model saw it (and, escaped, with every value marked),
        its values and their evidence, field by field; None when there is no such document."""
        outputs = self.outputs()
        row = outputs.rows.get(doc_id)
        if row is None:
            return None
        values = outputs.evidence.get(doc_id, [])
        doc = self._text(row, values)
        labels = self.person_labels(doc_id).get(doc_id, {})
        error = ": ".join(str(p) for p in (row.get("error_type"), row.get("error_message")) if p) or None
        no_text = doc.no_text if doc.status == "ok" else f"the document is {doc.status}: {error or 'no values'}"
        return {
            "doc_id": doc_id, "status": row.get("status"), "needs_review": bool(row.get("needs_review")),
            "grounded": row.get("grounded"), "error": error, "model": row.get("model"),
            "extracted_at": row.get("extracted_at"), "run_id": row.get("run_id"),
            "source_path": row.get("source_path"), "read_from": str(doc.read_from) if doc.read_from else None,
            "text": doc.text, "pages": list(doc.pages) if doc.pages else None,
            "html": highlight(doc.text, values, doc.pages) if doc.text is not None else None,
            "no_text": no_text if doc.text is None else None,
            "unplaced": [v.field for v in doc.unplaced],
            "scans": self._scans(doc),
            "fields": [self.field_state(name, row, labels.get(name), values) for name in self.inputs],
            "checked": self._checked(labels), "reviewed": self._checked(labels) == len(self.inputs)}

    @staticmethod
    def _scans(doc: DocReview) -> list[dict[str, Any]]:
        """The pages read by OCR that the page shows as images (`GET .../pages/N.jpg`), each with the box of every
        value read on it (bbox: fractions of the upright page, as `extractor text --json` gives them)."""
        return [{"page": page, "rotation": info.rotation, "width": info.width, "height": info.height,
                 "boxes": [{"field": v.field, "status": v.status, "bbox": list(v.bbox), "quote": v.quote,
                            "confidence": v.confidence} for v in doc.values if v.bbox is not None and v.page == page]}
                for page, (_, info) in sorted(doc.scans.items())]

    def page_image(self, doc_id: str, page: int) -> bytes | None:
        """`GET /api/documents/{doc_id}/pages/{page}.jpg`: one OCR'd page as the document view shows it (a JPEG of
        at most `review.SCAN_SIDE` pixels, made when the document was read again); None when there is none."""
        outputs = self.outputs()
        row = outputs.rows.get(doc_id)
        if row is None:
            return None
        scan = self._text(row, outputs.evidence.get(doc_id, [])).scans.get(page)
        if scan is None:
            return None
        import base64

        return base64.b64decode(scan[0].partition(",")[2])

    # -- writing ----------------------------------------------------------------------------------------

    def save(self, doc_id: str, body: Any) -> Outcome:
        """`POST /api/documents/{doc_id}/labels`: store `values` (edits; null: not in the document) and
        `accept` (the shown values, confirmed) as a person's labels, all or none.

        422 with each field's message when a value fails the schema's validators; 409 when a field in `seen`
        (its `version` when the page loaded it) has changed since, by a newer run or another person's
        label; 200 with the fields as they are now."""
        values, accept, seen = self._parse(body)
        outputs = self.outputs()
        row = outputs.rows.get(doc_id)
        if row is None:
            return Outcome(404, {"error": f"no document {doc_id!r} in the results"})
        errors: dict[str, str] = {}
        for name in [*values, *accept]:
            if name not in self.inputs:
                errors[name] = f"no field {name!r} in schema {self.schema.name}"
        checked: dict[str, Any] = {}
        for name, raw in values.items():
            if name in self.inputs:
                try:
                    checked[name] = validate_field(self.schema.model, name, from_input(self.inputs[name], raw), row)
                except ValidationError as exc:
                    errors[name] = _message(exc)
        if errors:
            return Outcome(422, {"errors": errors})
        labels = Labels(self.layout.journal)  # writes: one short transaction
        try:
            with labels.transaction():
                people = labels.newest(PERSON, doc_id).get(doc_id, {})
                conflicts = {name: self._conflict(name, row, people.get(name))
                             for name in [*values, *accept]
                             if name in seen and seen[name] != version(row.get(name), people.get(name))}
                if conflicts:
                    fields = {name: self.field_state(name, row, people.get(name), outputs.evidence.get(doc_id, []))
                              for name in conflicts}
                    return Outcome(409, {"conflicts": conflicts, "fields": fields})
                for name in accept:
                    shown = people[name].value if name in people else row.get(name)
                    try:
                        checked[name] = validate_field(self.schema.model, name, shown, row)
                    except ValidationError as exc:
                        errors[name] = _message(exc)
                if errors:
                    return Outcome(422, {"errors": errors})
                for name, value in checked.items():
                    labels.add(doc_id, name, value, source=self.source, content_sha256=row.get("content_sha256"),
                               kind=PERSON)
                people = labels.newest(PERSON, doc_id).get(doc_id, {})
        finally:
            labels.close()
        evidence = outputs.evidence.get(doc_id, [])
        all_people = self.person_labels()
        return Outcome(200, {
            "stored": list(checked),
            "fields": {name: self.field_state(name, row, people.get(name), evidence) for name in checked},
            "checked": self._checked(people), "reviewed": self._checked(people) == len(self.inputs),
            "progress": self.progress(outputs, all_people)})

    def _conflict(self, name: str, row: dict[str, Any], label: Label | None) -> dict[str, Any]:
        if label is not None:
            why = f"{label.source} stored {json.dumps(label.value, ensure_ascii=False)} at {label.created_at}"
        else:
            why = (f"a newer run ({row.get('run_id')}, extracted {row.get('extracted_at')}) gave "
                   f"{json.dumps(row.get(name), ensure_ascii=False)}")
        return {"value": row.get(name), "label": label.value if label is not None else None, "why": why}

    @staticmethod
    def _parse(body: Any) -> tuple[dict[str, Any], list[str], dict[str, str]]:
        if not isinstance(body, dict) or set(body) - {"values", "accept", "seen"}:
            raise BadRequest('the body is a JSON object {"values": {"field": value}, "accept": ["field"], '
                             '"seen": {"field": "version"}} (each part optional)')
        values, accept, seen = body.get("values") or {}, body.get("accept") or [], body.get("seen") or {}
        if not isinstance(values, dict) or not isinstance(seen, dict) or not isinstance(accept, list) \
                or not all(isinstance(a, str) for a in accept):
            raise BadRequest("values and seen are objects keyed by field, accept a list of field names")
        if both := sorted(set(values) & set(accept)):
            raise BadRequest(f"a field is either edited or accepted, not both: {', '.join(both)}")
        if not values and not accept:
            raise BadRequest("nothing to store: give values or accept")
        return values, list(dict.fromkeys(accept)), {str(k): str(v) for k, v in seen.items()}
