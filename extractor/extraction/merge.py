"""One record from the answers of a document's chunks, field by field, by stated rules.

Each chunk's answer is grounded in that chunk's own text (`values.evidence.Grounder`: a chunk answers only
for what it shows), and per field:

- a **scalar** takes the answer with the best evidence: found over not found, exact over normalized over
  fuzzy (a derived value with a supporting quote counts as normalized, without one as answered but not
  found); among equally good answers the one most chunks gave, then the first. Two *grounded* answers
  (fuzzy or better) that disagree after normalization (`values.metrics.normalize`) are a **conflict**: the
  field is counted and the document needs review;
- a **list** is the union of the chunks' items, de-duplicated after normalization, in order of first
  occurrence; past the schema's bound, the items found in their chunk are kept first;
- a **nested object** is merged field by field, each part a scalar as above;
- a **list of objects** (line items) is the chunks' lists concatenated; an object from a later chunk whose
  evidence spans (offsets in the whole text) coincide with an earlier chunk's object is the same object seen
  twice in the overlap, and is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from extractor.documents import Chunk
from extractor.schemas import FieldKind, field_kinds
from extractor.values.evidence import Evidence, Grounder, Leaf, grounded_as, leaves
from extractor.values.metrics import compared_as, normalize

# How good a chunk's evidence for its answer is (see the module docstring); 2 and above is grounded.
_RANK = {"exact": 4.0, "normalized": 3.0, "fuzzy": 2.0, "not_found": 0.0}
GROUNDED = 2.0


@dataclass(frozen=True)
class ChunkAnswer:
    """One chunk's answer (`model_dump(mode="json")` of the schema's model) and the chunk it answers for."""

    value: Mapping[str, Any]
    chunk: Chunk


@dataclass
class Merged:
    value: dict[str, Any]
    conflicts: list[str] = field(default_factory=list)  # dotted fields with grounded answers that disagree


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


class _Merger:
    def __init__(self, answers: Sequence[ChunkAnswer]) -> None:
        self.answers = answers
        self.conflicts: list[str] = []
        self._grounders: dict[int, Grounder] = {}

    def grounder(self, index: int) -> Grounder:
        """The grounder of one chunk's text, made once."""
        if index not in self._grounders:
            self._grounders[index] = Grounder(self.answers[index].chunk.text)
        return self._grounders[index]

    def evidence(self, index: int, path: str, value: Any, kind: FieldKind) -> Evidence:
        return self.grounder(index).ground(Leaf(path, value, grounded_as(kind)))

    def rank(self, index: int, path: str, value: Any, kind: FieldKind) -> float:
        found = self.evidence(index, path, value, kind)
        if found.status == "derived":
            return 3.0 if found.start is not None else 1.0
        rank = _RANK[found.status]
        return rank + (found.score or 0.0) / 1000 if found.status == "fuzzy" else rank

    def scalar(self, path: str, kind: FieldKind, given: list[tuple[int, Any]]) -> Any:
        """The best-evidenced of the chunks' answers (index of the chunk, value); a conflict is counted."""
        given = [(i, v) for i, v in given if not _empty(v)]
        if not given:
            return None
        compared = compared_as(kind)
        ranked = [(self.rank(i, path, v, kind), i, v) for i, v in given]
        grounded = {normalize(compared, v) for rank, _, v in ranked if rank >= GROUNDED}
        if len(grounded) > 1:
            self.conflicts.append(path)
        best = max(rank for rank, _, _ in ranked)
        top = [(i, v) for rank, i, v in ranked if rank == best]
        counts: dict[Any, int] = {}
        for _, v in top:
            counts[normalize(compared, v)] = counts.get(normalize(compared, v), 0) + 1
        most = max(counts.values())
        return next(v for _, v in top if counts[normalize(compared, v)] == most)

    def items(self, path: str, kind: FieldKind, given: list[tuple[int, Any]], bound: int | None) -> list[Any]:
        """The union of the chunks' lists, de-duplicated after normalization, in order of first occurrence."""
        seen: dict[Any, tuple[int, Any]] = {}
        for i, items in given:
            for item in items if isinstance(items, list) else []:
                key = normalize("name", item) if isinstance(item, str) else normalize(compared_as(kind), item)
                if key is not None and key not in seen:
                    seen[key] = (i, item)
        out = list(seen.values())
        if bound is not None and len(out) > bound:  # the found ones first, each group in its order
            found = {n for n, (i, item) in enumerate(out) if self.rank(i, f"{path}[]", item, kind) >= GROUNDED}
            keep = sorted(sorted(range(len(out)), key=lambda n: n not in found)[:bound])
            out = [out[n] for n in keep]
        return [item for _, item in out]

    def objects(self, model: type[BaseModel], given: list[tuple[int, Any]]) -> list[Any]:
        """The chunks' lists of objects concatenated; a later chunk's object whose evidence spans in the whole text
        are an earlier chunk's is that object seen again in the overlap."""
        out: list[Any] = []
        spans_of: list[tuple[int, frozenset[tuple[int, int]]]] = []
        for i, items in given:
            start = self.answers[i].chunk.start
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, Mapping):
                    continue
                found = (self.grounder(i).ground(leaf) for leaf in leaves(model, item))
                spans = frozenset((start + e.start, start + e.end) for e in found
                                  if e.start is not None and e.end is not None and e.status != "not_found")
                if spans and any(j != i and spans == other for j, other in spans_of):
                    continue
                spans_of.append((i, spans))
                out.append(dict(item))
        return out

    def model(self, model: type[BaseModel], values: list[tuple[int, Mapping[str, Any]]], prefix: str = "") -> dict:
        out: dict[str, Any] = {}
        for name, kind in field_kinds(model).items():
            given = [(i, v.get(name)) for i, v in values]
            path = prefix + name
            if kind.nested is not None and kind.is_list:
                out[name] = self.objects(kind.nested, given)
            elif kind.nested is not None:
                parts = [(i, v) for i, v in given if isinstance(v, Mapping)]
                merged = self.model(kind.nested, parts, path + ".") if parts else None
                out[name] = merged if merged and any(not _empty(v) for v in merged.values()) else None
            elif kind.is_list:
                out[name] = self.items(path, kind, given, _bound(model, name))
            else:
                out[name] = self.scalar(path, kind, given)
        return out


def _bound(model: type[BaseModel], name: str) -> int | None:
    """A list field's `max_length`, where the schema sets one."""
    for meta in model.model_fields[name].metadata:
        if (most := getattr(meta, "max_length", None)) is not None:
            return int(most)
    return None


def merge(model: type[BaseModel], answers: Sequence[ChunkAnswer]) -> Merged:
    """The chunks' answers as one record of `model` (as `model_dump(mode="json")` gives it; see the module
    docstring), and the fields whose grounded answers disagreed."""
    merger = _Merger(answers)
    value = merger.model(model, [(i, a.value) for i, a in enumerate(answers)])
    return Merged(value, merger.conflicts)
