"""What evidence costs (not a test: prints measured figures).

Grounds the labeled values of the 24 sample letters in their texts (the work a run adds per document),
then the values of one 20 MB document, and prints milliseconds per letter and seconds for the big one.

    python bench/grounding.py [--repeat 20] [--megabytes 20]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.documents import SourceFile, load_document  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.values.evidence import ground  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=20)
    args = parser.parse_args()
    schema = load_schema(ROOT / "schemas", "cover_letter")
    letters = []
    for line in (ROOT / "bench" / "labels" / "cover_letters.jsonl").read_text().splitlines():
        label = json.loads(line)
        doc = load_document(SourceFile(path=ROOT / "inputs" / label["doc_id"], doc_id=label["doc_id"]),
                            max_chars=200_000)
        value = schema.model.model_validate({k: v for k, v in label.items() if k != "doc_id"}).model_dump(mode="json")
        letters.append((value, doc.text, doc.pages))
    for value, text, pages in letters:  # warm: compiled patterns, babel's locale data
        ground(schema.model, value, text, pages)
    started = time.perf_counter()
    for _ in range(args.repeat):
        for value, text, pages in letters:
            ground(schema.model, value, text, pages)
    per_letter = (time.perf_counter() - started) / (args.repeat * len(letters)) * 1000
    print(f"sample letters: {per_letter:.3f} ms to ground one letter's values ({len(letters)} letters x "
          f"{args.repeat})")

    rng = random.Random(5)
    words = ["letter", "experience", "team", "project", "python", "design", "customer", "quality", "data"]
    size = args.megabytes * 1_000_000
    filler = " ".join(rng.choice(words) for _ in range(size // 6))[:size]
    text = (filler[: size // 2] + " Ada Lovelace, ada@example.org, +44 20 7946 0958, from 1 March 2027, salary "
            "85,000 EUR. " + filler[size // 2:])
    value = {"applicant_name": "Ada Lovelace", "email": "ada@example.org", "phone": "+442079460958",
             "company": "Invented Widgets Ltd", "available_from": "2027-03-01", "language": "en",
             "salary": {"min": 85000.0, "max": 85000.0, "currency": "EUR"}, "skills": ["Pythn", "Kubernetes"]}
    started = time.perf_counter()
    found = ground(schema.model, value, text)
    elapsed = time.perf_counter() - started
    statuses = ", ".join(f"{e.field} {e.status}" for e in found)
    print(f"{len(text) / 1e6:.1f} MB document: {elapsed:.2f} s to ground {len(found)} values ({statuses})")


if __name__ == "__main__":
    main()
