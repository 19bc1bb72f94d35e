"""Comparing extracted values: normalization, agreement across samples, accuracy against labels.

Every comparison goes through one normalization per kind of field, so "agreement" and "accuracy"
mean the same thing everywhere: names and text compare case-, space- and punctuation-blind, phones by
their digits, numbers within a relative tolerance, dates as ISO days, lists as sets (Jaccard / set F1).
Nested objects are compared per leaf (`salary.min`, `salary.currency`, ...). The kind of each field is the
schema's (`schemas.FieldKind`); `compared_as` says how each kind compares.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from extractor.schemas import FieldKind, field_kinds

NUMBER_TOLERANCE = 0.02  # relative; 85,000 vs 86,000 is the same salary, 3 vs 4 years is not


def compared_as(kind: FieldKind) -> str:
    """How a field's values are compared, from its kind (`schemas.FieldKind`): list (a set of names), number, date,
    email, phone, name, or text (text, currencies, choices, booleans, an object nested in a nested object)."""
    if kind.is_list:
        return "list"
    if kind.kind == "number":
        return "number"
    if kind.kind == "choice" and kind.options and isinstance(kind.options[0], int | float) \
            and not isinstance(kind.options[0], bool):
        return "number"  # Literal[1, 2, 3]
    if kind.kind in ("date", "email", "phone", "name"):
        return kind.kind
    return "text"


def compared_kinds(model: type[BaseModel]) -> dict[str, str]:
    """Leaf field -> how it is compared (`compared_as`), a nested model's fields spread (`salary.min`)."""
    kinds: dict[str, str] = {}
    for name, kind in field_kinds(model).items():
        if kind.nested is not None and not kind.is_list:
            for sub in field_kinds(kind.nested).values():
                kinds[f"{name}.{sub.name}"] = compared_as(sub)
        else:
            kinds[name] = compared_as(kind)
    return kinds


def leaves(values: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    """Spread nested objects into `parent.child` keys; only keys present in `values` are returned (a
    label giving `{"salary": {"min": 85000}}` says nothing about the salary's other parts)."""
    out: dict[str, Any] = {}
    for key in kinds:
        top, _, sub = key.partition(".")
        if top not in values:
            continue
        if sub:
            parent = values[top]
            if not isinstance(parent, Mapping):
                out[key] = None  # no object at all: every part is empty
            elif sub in parent:
                out[key] = parent[sub]
        else:
            out[key] = values[top]
    return out


def _text(value: Any, *, punctuation: bool) -> str:
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    if punctuation:
        text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def normalize(kind: str, value: Any) -> Any:
    """Canonical form of a value of this kind; None for "no value" (None, "", [])."""
    if value is None or value == "" or value == []:
        return None
    if kind == "list":
        items = value if isinstance(value, (list, tuple, set, frozenset)) else str(value).split(";")
        normalized = frozenset(n for n in (normalize("name", i) for i in items) if n)
        return normalized or None
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            return _text(value, punctuation=False)
    if kind == "date":
        return value.isoformat()[:10] if hasattr(value, "isoformat") else str(value)[:10]
    if kind == "phone":
        return re.sub(r"\D", "", str(value)) or None
    if kind == "email":
        return str(value).strip().casefold()
    return _text(value, punctuation=kind == "name") or None


def similarity(kind: str, a: Any, b: Any) -> float:
    """1.0 for the same value, 0.0 for different ones; Jaccard for lists. Inputs are raw values."""
    x, y = normalize(kind, a), normalize(kind, b)
    if x is None or y is None:
        return 1.0 if x is y else 0.0
    if kind == "list":
        return len(x & y) / len(x | y)
    if kind == "number" and isinstance(x, float) and isinstance(y, float):
        return 1.0 if abs(x - y) <= NUMBER_TOLERANCE * max(abs(x), abs(y), 1.0) else 0.0
    return 1.0 if x == y else 0.0


def majority(kind: str, values: list[Any], sim: Callable[[Any, Any], float] | None = None) -> tuple[Any, float]:
    """(the value most samples agree with, mean similarity of all samples to it).

    The medoid: the sample with the highest total similarity to the others (for scalars, a member of
    the largest group of equal values; for lists, the most central list). Ties go to the earliest.
    """
    if not values:
        return None, 1.0
    sim = sim or (lambda a, b: similarity(kind, a, b))
    totals = [sum(sim(v, w) for w in values) for v in values]
    best = max(range(len(values)), key=lambda i: (totals[i], -i))
    return values[best], totals[best] / len(values)


@dataclass
class Consensus:
    """The result of K samples of one document: majority values and how much the samples agreed."""

    value: dict[str, Any] | None  # JSON form of the majority answer; None when no sample was valid
    agreement: dict[str, float]  # per leaf field, invalid samples counting as disagreeing
    samples: int
    valid_samples: int

    @property
    def consistency(self) -> float:
        return sum(self.agreement.values()) / len(self.agreement) if self.agreement else 0.0


def consensus(model: type[BaseModel], answers: list[BaseModel | None]) -> Consensus:
    """Majority value per field across samples (the result), and per-field agreement with it."""
    kinds = compared_kinds(model)
    valid = [a.model_dump(mode="json") for a in answers if a is not None]
    if not valid:
        return Consensus(value=None, agreement=dict.fromkeys(kinds, 0.0), samples=len(answers), valid_samples=0)
    spread = [leaves(v, kinds) for v in valid]
    agreement = {}
    for key, kind in kinds.items():
        values = [s[key] for s in spread]
        if all(normalize(kind, v) is None for v in values):
            continue  # no sample answered it: no answer to agree on, not 100% agreement
        representative, _ = majority(kind, values)
        agreement[key] = sum(similarity(kind, v, representative) for v in values) / len(answers)
    result: dict[str, Any] = {}
    for name in model.model_fields:
        values = [v[name] for v in valid]
        if name in kinds:
            result[name] = majority(kinds[name], values)[0]
        else:  # a nested object: the sample whose sub-fields agree most with the others'
            subs = {k.split(".", 1)[1]: kind for k, kind in kinds.items() if k.startswith(name + ".")}

            def nested(a: Any, b: Any, subs: dict[str, str] = subs) -> float:
                a, b = a or {}, b or {}
                return sum(similarity(kind, a.get(k), b.get(k)) for k, kind in subs.items()) / max(len(subs), 1)

            result[name] = majority("object", values, nested)[0]
    try:
        value = model.model_validate(result).model_dump(mode="json")
    except ValueError:  # field-wise majorities that break a cross-field rule: keep a real sample
        value = valid[0]
    return Consensus(value=value, agreement=agreement, samples=len(answers), valid_samples=len(valid))


@dataclass
class FieldScore:
    """Accuracy of one field against labels. For lists, tp/fp/fn count items (micro) and accuracy is the
    mean per-document set F1; for other kinds they count documents and a wrong value is both fp and fn."""

    field: str
    kind: str
    documents: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    accuracy_sum: float = 0.0

    @property
    def accuracy(self) -> float | None:
        return self.accuracy_sum / self.documents if self.documents else None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, predicted: Any, gold: Any) -> None:
        self.documents += 1
        p, g = normalize(self.kind, predicted), normalize(self.kind, gold)
        if self.kind == "list":
            p, g = p or frozenset(), g or frozenset()
            hit = len(p & g)
            self.tp += hit
            self.fp += len(p) - hit
            self.fn += len(g) - hit
            denominator = len(p) + len(g)
            self.accuracy_sum += 1.0 if not denominator else 2 * hit / denominator
            return
        if g is None and p is None:
            self.tn += 1
            self.accuracy_sum += 1
        elif g is None:
            self.fp += 1
        elif p is None:
            self.fn += 1
        elif similarity(self.kind, predicted, gold) == 1.0:
            self.tp += 1
            self.accuracy_sum += 1
        else:
            self.fp += 1
            self.fn += 1


def score(rows: Iterable[Mapping[str, Any]], labels: Mapping[str, Mapping[str, Any]],
          model: type[BaseModel]) -> list[FieldScore]:
    """Per-field scores of result rows against labels; only labeled (document, field) pairs count."""
    kinds = compared_kinds(model)
    scores = {name: FieldScore(field=name, kind=kind) for name, kind in kinds.items()}
    for row in rows:
        gold = labels.get(row["doc_id"])
        if not gold:
            continue
        predicted = leaves(row, kinds)
        for key, value in leaves(gold, kinds).items():
            scores[key].add(predicted.get(key), value)
    return [s for s in scores.values() if s.documents]


def wilson(share: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% with the default z) of a share measured over `n` values: what a share of
    fields right on a few documents can honestly claim. (0, 1) when nothing was measured."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(share, 0.0), 1.0)
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def best_by_field(scores: Mapping[str, Mapping[str, tuple[float, int] | None]]) -> dict[str, set[str]]:
    """{field: the variants tied for its best accuracy} from {field: {variant: (accuracy, values scored)}}: the
    most accurate variant and every variant whose 95% interval (`wilson`) reaches its lower bound; a set of one
    is a clear winner, a larger one a tie (no clear winner). Unmeasured (None) never counts: the one rule the
    report page and the terminal mark by."""
    best: dict[str, set[str]] = {}
    for name, by_variant in scores.items():
        known = {variant: score for variant, score in by_variant.items() if score is not None}
        if not known:
            continue
        top = max(known, key=lambda v: known[v][0])
        low = wilson(*known[top])[0]
        best[name] = {v for v, (share, n) in known.items() if v == top or wilson(share, n)[1] >= low}
    return best