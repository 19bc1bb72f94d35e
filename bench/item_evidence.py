"""Evidence per line item: of the items' true values, how many are found in their document, and how many in their
own row. Not a test: prints measured figures (tests/test_invoice_evidence.py holds the >= 98% bar).

Grounds the gold values of the sample invoices (bench/labels/invoices.jsonl) in their parsed text with the evidence
search (`extractor.values.evidence.ground`, as a run does with a model that answers the truth). A value is in its
row when the line its quote stands on starts with the item's position number and holds the item's description
(every sample prints its rows so). Run it against another checkout to compare (`PYTHONPATH=/that/checkout`).

    python bench/item_evidence.py [--inputs samples/invoices] [--labels bench/labels/invoices.jsonl]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: another checkout's package can be measured on these files

from extractor.documents import discover, load_document  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.values import evidence  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inputs", type=Path, default=ROOT / "samples" / "invoices")
    parser.add_argument("--labels", type=Path, default=ROOT / "bench" / "labels" / "invoices.jsonl")
    parser.add_argument("--schema", default="invoice")
    args = parser.parse_args()
    schema = load_schema(ROOT / "schemas", args.schema)
    labels = {row.pop("doc_id"): row for row in map(json.loads, args.labels.read_text(encoding="utf-8").splitlines())}
    total = found = placed = 0
    seconds = 0.0
    for src in discover(args.inputs):
        doc = load_document(src, max_chars=1_000_000)
        truth = labels[src.doc_id]
        started = time.perf_counter()
        values = evidence.ground(schema.model, truth, doc.text, doc.pages)
        seconds += time.perf_counter() - started
        for item in values:
            match = re.match(r"(\w+)\[(\d+)\]\.", item.field)
            if match is None:
                continue
            total += 1
            if item.start is None:
                continue
            found += 1
            line_start = doc.text.rfind("\n", 0, item.start) + 1
            line_end = doc.text.find("\n", item.start)
            line = doc.text[line_start:line_end if line_end >= 0 else None]
            index = int(match.group(2))
            description = truth[match.group(1)][index]["description"]
            placed += bool(re.match(rf"\s*(?:\|\s*)?{index + 1}\b", line)) and description in line
    print(f"{evidence.__file__}")
    print(f"{len(labels)} documents, {total} item values: found {found} ({found / total:.1%}), in their own row "
          f"{placed} ({placed / total:.1%}); grounding {seconds / len(labels) * 1000:.1f} ms per document")


if __name__ == "__main__":
    main()
