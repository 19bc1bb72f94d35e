"""Field accuracy of a results.parquet against gold labels (fields right / fields total).

    python bench/accuracy.py [outputs/cover_letter/results.parquet] [bench/labels/cover_letters.jsonl]

A field is right when it equals the label after light normalization: case and spacing for text,
digits only for phones, 5% tolerance for numbers, set Jaccard >= 0.5 for lists, every sub-field for
objects; a null where the label is null counts as right. Not a test: prints measured figures.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent


def same(field: str, got: Any, want: Any) -> bool:
    if want is None or got is None:
        return (got is None and want is None) or (want in ([], None) and got in ([], None))
    if isinstance(want, dict):
        return isinstance(got, dict) and all(same(k, got.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        a = {str(x).casefold().strip() for x in got}
        b = {str(x).casefold().strip() for x in want}
        return not (a or b) or len(a & b) / len(a | b) >= 0.5
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return abs(float(got) - want) <= 0.05 * max(abs(want), 1)
        except (TypeError, ValueError):
            return False
    if field == "phone":
        return re.sub(r"\D", "", str(got)) == re.sub(r"\D", "", str(want))
    return " ".join(str(got).casefold().split()) == " ".join(str(want).casefold().split())


def main() -> None:
    results = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "outputs/cover_letter/results.parquet"
    labels_path = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "bench/labels/cover_letters.jsonl"
    rows = {r["doc_id"]: r for r in pl.read_parquet(results).to_dicts()}
    labels = [json.loads(line) for line in labels_path.read_text().splitlines() if line.strip()]
    per_field: dict[str, list[int]] = {}
    for label in labels:
        row = rows.get(label["doc_id"], {})
        for field, want in label.items():
            if field == "doc_id":
                continue
            got = row.get(field)
            if hasattr(got, "isoformat"):
                got = got.isoformat()
            hit = per_field.setdefault(field, [0, 0])
            hit[0] += same(field, got, want)
            hit[1] += 1
    right = sum(h[0] for h in per_field.values())
    total = sum(h[1] for h in per_field.values())
    print(f"fields right / total: {right}/{total} = {right / total:.1%} over {len(labels)} documents")
    for field, (ok, n) in per_field.items():
        print(f"  {field:20} {ok:3}/{n}")


if __name__ == "__main__":
    main()
