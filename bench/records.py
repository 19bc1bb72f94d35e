"""What many records per document cost (not a test: prints measured figures).

1. The child table a checkpoint adds: `table.child_frame` over a results frame of N documents with K line
   items each (the explode that writes line_items.parquet), beside writing results.parquet itself.
2. Eval of records: scoring the 30 sample invoices' 332 labeled lines (bench/labels/invoices.jsonl) against
   themselves and against a copy with lines dropped, invented and altered (`values.metrics.score`: the
   assignment per document), and the one assignment of a 200-line invoice (the schema's MAX_ITEMS).

    python bench/records.py [--documents 10000] [--items 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from extractor.schemas import load_schema  # noqa: E402
from extractor.table import child_fields, child_frame, row_schema  # noqa: E402
from extractor.values.metrics import item_kinds, match_items, score  # noqa: E402


def _best(repeat: int, work: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    schema = load_schema(ROOT / "schemas", "invoice")
    item = child_fields(schema.model)["line_items"]
    labels = {r["doc_id"]: r for r in map(json.loads, (ROOT / "bench/labels/invoices.jsonl").read_text().splitlines())}

    rng = random.Random(20261202)
    rows = [{"doc_id": f"inv{i:06d}.pdf", "status": "ok", "invoice_number": f"INV-{i}",
             "line_items": [{"description": f"Item {j} of order {i}", "quantity": rng.randint(1, 40),
                             "unit_price": round(rng.uniform(1, 500), 2), "amount": round(rng.uniform(1, 9000), 2)}
                            for j in range(args.items)]} for i in range(args.documents)]
    frame = pl.DataFrame(rows, schema=row_schema(schema.model), strict=False)
    explode = _best(args.repeat, lambda: child_frame(frame, "line_items", item))
    children = child_frame(frame, "line_items", item)
    parquet = _best(args.repeat, lambda: children.write_parquet(io.BytesIO(), compression="zstd"))
    results = _best(args.repeat, lambda: frame.write_parquet(io.BytesIO(), compression="zstd"))
    print(f"child table: {args.documents:,} documents x {args.items} items = {children.height:,} rows: "
          f"explode {explode * 1000:.0f} ms + Parquet {parquet * 1000:.0f} ms per checkpoint "
          f"(results.parquet itself: {results * 1000:.0f} ms)")

    gold = list(labels.values())
    perturbed = copy.deepcopy(gold)
    for n, row in enumerate(perturbed):
        items = row["line_items"]
        if len(items) > 1 and n % 2 == 0:
            items.pop()
        if n % 3 == 0:
            items.append({"description": "Express surcharge", "quantity": 1, "unit_price": 17.5, "amount": 17.5})
        items[0]["amount"] = round((items[0]["amount"] or 0) * 1.1, 2)
    for name, predicted in (("the labels themselves", gold), ("lines dropped, invented, altered", perturbed)):
        seconds = _best(args.repeat, lambda predicted=predicted: score(predicted, labels, schema.model))
        (items,) = [s for s in score(predicted, labels, schema.model) if s.field == "line_items"]
        print(f"eval of 30 sample invoices ({sum(len(r['line_items']) for r in gold)} labeled lines) against "
              f"{name}: {seconds * 1000:.0f} ms; item precision {items.precision:.3f}, recall {items.recall:.3f}")
    big = [{"description": f"Part {j}", "quantity": j % 7 + 1, "unit_price": j * 1.5, "amount": j * 1.5 * (j % 7 + 1)}
           for j in range(200)]
    shuffled = rng.sample(big, len(big))
    kinds = item_kinds(item)
    seconds = _best(args.repeat, lambda: match_items(shuffled, big, kinds))
    print(f"one 200-line invoice, lines shuffled: assignment {seconds * 1000:.0f} ms, "
          f"{len(match_items(shuffled, big, kinds))} of 200 matched")


if __name__ == "__main__":
    main()
