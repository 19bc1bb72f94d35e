"""How well confidence without labels separates right from wrong values, measured where labels exist.

Every extracted value that has evidence (a row of evidence.parquet) and a label is right or wrong by the
same rules as accuracy (names case- and punctuation-blind, phones by digits, numbers within 2%, dates
by day; a list item is right when the labeled list holds it; a value of an item of a list of objects is right when
the labeled item eval matched it to has it, and wrong on an item matched to none). Its confidence was computed
without the label. The AUROC is the chance that a right value has a higher confidence than a wrong one (ties count
half): 0.5 is no better than a coin, 1.0 separates perfectly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractor.schemas import field_kinds
from extractor.values.metrics import compared_kinds, item_kinds, leaves, match_items, normalize, similarity

BANDS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 0.9), (0.9, 1.0001))
# Below this AUROC the confidence tells right from wrong little better than a coin (0.5): needs_review and the
# badges then say nothing about a value, and every view says so instead of showing them as if they did.
INFORMATIVE_AUROC = 0.6
MIN_JUDGED = 20  # labeled values (right and wrong ones both present) before confidence is judged at all


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    values: int
    right: int

    @property
    def accuracy(self) -> float | None:
        return self.right / self.values if self.values else None


@dataclass
class Calibration:
    values: int = 0  # labeled values with a confidence
    right: int = 0
    auroc: float | None = None  # None when all values are right or all wrong
    bands: list[Band] = field(default_factory=list)
    per_field: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> values, right, auroc

    @property
    def uninformative(self) -> bool:
        """Measured on enough values, and no better than about a coin at telling right values from wrong."""
        return self.auroc is not None and self.values >= MIN_JUDGED and self.auroc < INFORMATIVE_AUROC

    def as_dict(self) -> dict[str, Any]:
        return {"values": self.values, "right": self.right, "auroc": self.auroc, "uninformative": self.uninformative,
                "bands": [{**asdict(b), "high": min(b.high, 1.0), "accuracy": b.accuracy} for b in self.bands],
                "fields": self.per_field}


def auroc(scored: Iterable[tuple[float, bool]]) -> float | None:
    """Area under the ROC curve of confidence against correctness (Mann-Whitney U over all pairs)."""
    items = sorted(scored)
    positives = sum(1 for _, right in items if right)
    negatives = len(items) - positives
    if not positives or not negatives:
        return None
    # Rank-sum with average ranks for ties.
    rank_sum, i = 0.0, 0
    while i < len(items):
        j = i
        while j < len(items) and items[j][0] == items[i][0]:
            j += 1
        average = (i + 1 + j) / 2
        rank_sum += average * sum(1 for k in range(i, j) if items[k][1])
        i = j
    return round((rank_sum - positives * (positives + 1) / 2) / (positives * negatives), 4)


def _base(field_path: str) -> tuple[str, bool]:
    """`skills[2]` -> ("skills", True); `salary.min` -> ("salary.min", False)."""
    base = re.sub(r"\[\d+\]", "", field_path)
    return base, base != field_path


_ITEM = re.compile(r"([^.\[]+)\[(\d+)\]\.(.+)")  # line_items[3].amount, line_items[3].tax.value


def _item_matches(rows: Iterable[Mapping[str, Any]], labels: Mapping[str, Mapping[str, Any]],
                  records: Mapping[str, dict[str, str]]) -> dict[tuple[str, str], dict[int, int]]:
    """(doc_id, list-of-objects field) -> {predicted item index: the labeled item it is}, matched as eval
    matches them (`match_items`)."""
    out: dict[tuple[str, str], dict[int, int]] = {}
    for row in rows:
        gold = labels.get(row["doc_id"]) or {}
        for name, kinds in records.items():
            if name in gold:
                pairs = match_items(list(row.get(name) or ()), list(gold[name] or ()), kinds)
                out[(row["doc_id"], name)] = {i: j for i, j, _ in pairs}
    return out


def calibrate(evidence: Iterable[Mapping[str, Any]], labels: Mapping[str, Mapping[str, Any]],
              model: type[BaseModel], rows: Iterable[Mapping[str, Any]] = ()) -> Calibration:
    """Correctness against labels of every evidence row whose field is labeled for its document. An item's
    value of a list of objects (`line_items[3].amount`) is right when the labeled item it was matched to (as
    eval matches items, so the results `rows` are needed) has the same value, wrong when its item matched none
    (invented); it is listed under `line_items.amount`."""
    kinds = compared_kinds(model)
    records = {name: item_kinds(kind.nested) for name, kind in field_kinds(model).items()
               if kind.nested is not None and kind.is_list}
    matches = _item_matches(rows, labels, records)
    flat = {doc_id: leaves(values, kinds) for doc_id, values in labels.items()}
    scored: list[tuple[str, float, bool]] = []
    for row in evidence:
        gold = flat.get(row["doc_id"])
        if gold is None:
            continue
        item = _ITEM.fullmatch(row["field"])
        if item is not None and item.group(1) in records:
            name, index, sub = item.group(1), int(item.group(2)), re.sub(r"\[\d+\]", "", item.group(3))
            matched = matches.get((row["doc_id"], name))
            if matched is None or sub not in records[name]:
                continue  # the list is not labeled for this document (or no results rows were given)
            j = matched.get(index)
            labeled = list(gold.get(name) or ())
            if j is None:
                right = False  # an invented item: none of its values is right
            else:
                sub_kind = records[name][sub]
                expected = leaves(labeled[j], {sub: sub_kind}).get(sub) if isinstance(labeled[j], Mapping) else None
                if sub_kind == "list":
                    right = normalize("text", row["value"]) in {normalize("text", x) for x in expected or []}
                else:
                    right = similarity(sub_kind, expected, _typed(row["value"], sub_kind)) == 1.0
            scored.append((f"{name}.{sub}", float(row["confidence"]), right))
            continue
        base, is_item = _base(row["field"])
        if base not in gold:
            continue
        kind = kinds.get(base, "text")
        if is_item:
            items = {normalize("text", x) for x in (gold[base] or [])}
            right = normalize("text", row["value"]) in items
        else:
            right = similarity(kind, gold[base], _typed(row["value"], kind)) == 1.0
        scored.append((base, float(row["confidence"]), right))
    out = Calibration(values=len(scored), right=sum(r for _, _, r in scored),
                      auroc=auroc((c, r) for _, c, r in scored))
    for low, high in BANDS:
        inside = [r for _, c, r in scored if low <= c < high]
        out.bands.append(Band(low, high, len(inside), sum(inside)))
    for name in sorted({f for f, _, _ in scored}):
        mine = [(c, r) for f, c, r in scored if f == name]
        out.per_field[name] = {"values": len(mine), "right": sum(r for _, r in mine),
                               "auroc": auroc(mine)}
    return out


def _typed(value: str, kind: str) -> Any:
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class ConfidenceVerdict:
    """What the newest eval said of the confidence of one model's values (calibration.json), for the views."""

    model: str
    schema_version: str
    auroc: float | None
    values: int
    uninformative: bool
    evaluated_at: str

    def note(self) -> str:
        return (f"confidence is uninformative for {self.model}: AUROC {self.auroc:.2f} over {self.values} labeled "
                f"values (extractor eval, {self.evaluated_at}); needs_review and the badges do not tell right "
                "values from wrong ones for this model, so check values by their field's accuracy instead")


def write_verdict(path: Path, calibration: Calibration, model: str, schema_version: str, evaluated_at: str) -> None:
    from extractor.store import write_json_atomic

    write_json_atomic({"model": model, "schema_version": schema_version, "auroc": calibration.auroc,
                       "values": calibration.values, "uninformative": calibration.uninformative,
                       "evaluated_at": evaluated_at}, path)


def read_verdict(path: Path) -> ConfidenceVerdict | None:
    """The newest eval's verdict, or None (no eval yet, or an unreadable file: then nothing is claimed)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ConfidenceVerdict(model=str(data["model"]), schema_version=str(data["schema_version"]),
                                 auroc=data["auroc"], values=int(data["values"]),
                                 uninformative=bool(data["uninformative"]), evaluated_at=str(data["evaluated_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
