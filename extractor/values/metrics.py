"""Comparing extracted values: normalization, agreement across samples, accuracy against labels.

Every comparison goes through one normalization per kind of field, so "agreement" and "accuracy"
mean the same thing everywhere: names and text compare case-, space- and punctuation-blind, phones by
their digits, numbers within a relative tolerance, dates as ISO days, lists as sets (Jaccard / set F1).
Nested objects are compared per leaf (`salary.min`, `salary.currency`, ...). A list of objects (an invoice's
`line_items`) is a list of records: its items are matched one to one between two lists by an assignment on their
fields' similarity (`match_items`), then scored as items (matched, invented, missed) and item field by item field
(`RecordScore`). The kind of each field is the schema's (`schemas.FieldKind`); `compared_as` says how each kind
compares.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from extractor.schemas import FieldKind, field_kinds

NUMBER_TOLERANCE = 0.02  # relative; 85,000 vs 86,000 is the same salary, 3 vs 4 years is not


def compared_as(kind: FieldKind) -> str:
    """How a field's values are compared, from its kind (`schemas.FieldKind`): records (a list of objects), list (a
    set of names), number, date, email, phone, name, or text (text, currencies, choices, booleans, an object nested
    in a nested object)."""
    if kind.is_list and kind.nested is not None:
        return "records"  # a list of objects: items matched one to one, then compared field by field
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
    if kind == "records":  # the items themselves: they are compared by `records_similarity`, never as a set
        return tuple(value) if isinstance(value, (list, tuple)) else None
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
    return _agree(kind, normalize(kind, a), normalize(kind, b))


def _agree(kind: str, x: Any, y: Any) -> float:
    """`similarity` of two values already normalized (`normalize`)."""
    if x is None or y is None:
        return 1.0 if x is y else 0.0
    if kind == "records":
        return records_similarity(list(x), list(y))
    if kind == "list":
        return len(x & y) / len(x | y)
    if kind == "number" and isinstance(x, float) and isinstance(y, float):
        return 1.0 if abs(x - y) <= NUMBER_TOLERANCE * max(abs(x), abs(y), 1.0) else 0.0
    return 1.0 if x == y else 0.0


# -- lists of objects: items matched one to one, then compared field by field -----------------------------------

# Items whose fields agree less than this (mean over the fields either gives) are not the same item: an invented
# line and a missed one are two errors, not one altered line. Half: an item with 2 of its 4 fields changed is still
# that item (its sub-field scores say which 2), one that shares only its quantity is not.
MATCH_MIN = 0.5


def item_kinds(model: type[BaseModel]) -> dict[str, str]:
    """Leaf -> how it is compared, for the items of a list of objects (`compared_kinds` of the item model:
    `tax.value` for an object inside an item)."""
    return compared_kinds(model)


def _guess(value: Any) -> str:
    """How to compare an item's value when the item model is not at hand: a number as a number, else a name."""
    if isinstance(value, bool):
        return "text"
    if isinstance(value, int | float):
        return "number"
    try:
        float(str(value))
    except ValueError:
        return "name"
    return "number"


def _item_leaves(items: list[Any], kinds: Mapping[str, str] | None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Each item's leaves normalized once (`tax.value` of a nested object), and how each leaf compares: from
    `kinds`, else guessed from the first value given (a number as a number, anything else as a name)."""
    raw = [_leaf_paths(item) for item in items]
    known = dict(kinds or {})
    if kinds is None:
        for leaves_of in raw:
            for key, value in leaves_of.items():
                if key not in known and value is not None:
                    known[key] = _guess(value)
    return [{k: v for k in known if (v := normalize(known[k], leaves_of.get(k))) is not None}
            for leaves_of in raw], known


def _item_agreement(x: dict[str, Any], y: dict[str, Any], kinds: Mapping[str, str]) -> float:
    given = x.keys() | y.keys()
    if not given:
        return 1.0
    return sum(_agree(kinds[k], x.get(k), y.get(k)) for k in given) / len(given)


def item_similarity(a: Mapping[str, Any], b: Mapping[str, Any], kinds: Mapping[str, str] | None = None) -> float:
    """Mean agreement of two items over the leaves either of them gives (`tax.value` of a nested object); 1.0
    for two items that give nothing. Without `kinds` (no item model at hand) a number compares as a number
    and anything else as a name."""
    (x, y), known = _item_leaves([a, b], kinds)
    return _item_agreement(x, y, known)


def _leaf_paths(item: Any) -> dict[str, Any]:
    """{`tax.value`: ...} of an item: one level of nested objects spread, as `compared_kinds` spreads them."""
    if not isinstance(item, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def match_items(predicted: list[Any], gold: list[Any], kinds: Mapping[str, str] | None = None,
                ) -> list[tuple[int, int, float]]:
    """(predicted index, gold index, similarity) of the items that are the same item: the assignment that
    maximizes the summed `item_similarity` (scipy's linear_sum_assignment, the Hungarian method), keeping the
    pairs at or above MATCH_MIN. Order does not matter; a duplicate is an item of its own (two identical
    predicted lines against one labeled line: one match and one invented item)."""
    if not predicted or not gold:
        return []
    import numpy as np
    from scipy.optimize import linear_sum_assignment  # lazy: scipy costs ~0.2 s to import

    # Leaves normalized once per item, not once per pair: a 200-line invoice is 40,000 pairs.
    normalized, known = _item_leaves([*predicted, *gold], kinds)
    mine, theirs = normalized[:len(predicted)], normalized[len(predicted):]
    matrix = np.array([[_item_agreement(p, g, known) for g in theirs] for p in mine])
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return [(int(i), int(j), float(matrix[i, j])) for i, j in zip(rows, cols, strict=True)
            if matrix[i, j] >= MATCH_MIN]


def records_similarity(a: list[Any], b: list[Any], kinds: Mapping[str, str] | None = None) -> float:
    """Agreement of two lists of objects: the matched items' similarities over the longer list's length (a
    missed or invented item counts 0); 1.0 for two empty lists."""
    if not a and not b:
        return 1.0
    return sum(sim for *_, sim in match_items(a, b, kinds)) / max(len(a), len(b))


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

    @property
    def values(self) -> int:
        """Labeled values this field puts into the headline "fields right / total" (one per document here)."""
        return self.documents

    @property
    def right(self) -> float:
        """Of those, how many were right (a list counts its per-document set F1)."""
        return self.accuracy_sum

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


@dataclass
class SubFieldScore:
    """One field of the items of a list of objects, over the matched items whose label gives it."""

    values: int = 0
    right: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.right / self.values if self.values else None


@dataclass
class RecordScore(FieldScore):
    """A list of objects against its labels, item by item (`match_items`): tp/fp/fn count items (matched,
    invented, missed; a duplicate is an item), so precision and recall are the items'; `sub_fields` is each
    item field's accuracy over the matched items.

    In the headline every labeled item value counts as one field: a matched item adds its labeled fields
    (right or wrong), a missed or invented item adds its fields all wrong, and a document whose label and
    answer both have no items adds one right value. So 4 wrong lines of 26 weigh what 4 wrong fields of 26
    would, instead of the whole list counting as one field. `accuracy` is the mean per-document share."""

    item_fields: dict[str, str] = field(default_factory=dict)  # leaf of an item -> how it is compared
    sub_fields: dict[str, SubFieldScore] = field(default_factory=dict)
    labeled_values: int = 0
    right_values: int = 0

    @property
    def values(self) -> int:
        return self.labeled_values

    @property
    def right(self) -> float:
        return float(self.right_values)

    def add(self, predicted: Any, gold: Any) -> None:
        self.documents += 1
        p = [i for i in predicted or () if isinstance(i, Mapping)]
        g = [i for i in gold or () if isinstance(i, Mapping)]
        width = max(len(self.item_fields), 1)
        pairs = match_items(p, g, self.item_fields)
        self.tp += len(pairs)
        self.fp += len(p) - len(pairs)
        self.fn += len(g) - len(pairs)
        values = (len(p) - len(pairs) + len(g) - len(pairs)) * width
        right = 0
        for i, j, _ in pairs:
            mine, theirs = _leaf_paths(p[i]), _leaf_paths(g[j])
            for key, kind in self.item_fields.items():
                if key.split(".", 1)[0] not in g[j]:
                    continue  # the label does not give this part of the item
                sub = self.sub_fields.setdefault(key, SubFieldScore())
                hit = similarity(kind, mine.get(key), theirs.get(key)) == 1.0
                sub.values += 1
                sub.right += hit
                values += 1
                right += hit
        if not p and not g:
            self.tn += 1
            values, right = 1, 1
        self.labeled_values += values
        self.right_values += right
        self.accuracy_sum += right / values if values else 1.0


def score(rows: Iterable[Mapping[str, Any]], labels: Mapping[str, Mapping[str, Any]],
          model: type[BaseModel]) -> list[FieldScore]:
    """Per-field scores of result rows against labels; only labeled (document, field) pairs count. A list of
    objects is scored item by item (`RecordScore`)."""
    kinds = compared_kinds(model)
    nested = {name: kind.nested for name, kind in field_kinds(model).items() if kind.nested is not None}
    scores = {name: RecordScore(field=name, kind=kind, item_fields=item_kinds(nested[name])) if kind == "records"
              else FieldScore(field=name, kind=kind) for name, kind in kinds.items()}
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