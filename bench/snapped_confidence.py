"""How well the label-free confidence tells right from wrong snapped answers (not a test: prints figures).

Runs the field strategy over `inputs/` against the local fake server, which answers each one-field question from
the letter's labels (`bench/labels/`), but answers a seeded share of the free questions (a string field to copy)
with a wrong span of the same letter: another field's value where the letter has one, else two of its words. The
field strategy snaps every answer to a span, so evidence alone calls all of them found; the cue words and the
one-value-two-fields signals (`extractor/values/evidence.py`) must tell them apart. Prints the AUROC of the asked
fields' values and of every value (eval's figure), and how many letters holding a wrong answer need review.

    python bench/snapped_confidence.py [--wrong-spans 0.3] [--seed 5] [--logprobs]
    python bench/snapped_confidence.py --inputs bench/heldout/letters --labels bench/heldout/labels.jsonl

With --logprobs the questions ask for token log probabilities, which the fake server answers low for its wrong
spans and high for the rest, the two ranges overlapping (`FakeOpenAI._logprobs`): a stand-in for a model's own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import build_config  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.quality.calibration import calibrate  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.testing.fakeserver import FakeOpenAI, oracle_answers  # noqa: E402

LABELS = ROOT / "bench" / "labels" / "cover_letters.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wrong-spans", type=float, default=0.3, help="share of free questions answered wrong")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--logprobs", action="store_true", help="ask for (and use) token log probabilities")
    parser.add_argument("--inputs", type=Path, default=ROOT / "inputs", help="the letters [inputs/]")
    parser.add_argument("--labels", type=Path, default=LABELS, help="their labels [bench/labels/cover_letters.jsonl]")
    args = parser.parse_args()
    schema = load_schema(ROOT / "schemas", "cover_letter")
    labels = [json.loads(line) for line in args.labels.read_text().splitlines() if line.strip()]
    gold = {x["doc_id"]: x for x in labels}
    server = FakeOpenAI(answers=oracle_answers(labels)[0], wrong_spans=args.wrong_spans, seed=args.seed)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = build_config({"input_dir": args.inputs, "schemas_dir": ROOT / "schemas",
                                   "output_dir": Path(tmp), "base_url": server.base_url, "strategy": "fields",
                                   "api_key": "sk-bench-0000000000", "model": "gpt-4o-mini",
                                   "logprobs": args.logprobs}, env={})
            runner.run(config)
            found = pl.read_parquet(config.layout.evidence)
            results = pl.read_parquet(config.layout.results)
    finally:
        server.stop()
    asked = set()
    for record in server.log:
        question = record["messages"][-1]["content"].rsplit("Question: ", 1)[-1]
        name = question.split("?")[0].split(" (")[0].replace(" ", "_")
        if "Copy it from the document" in question and any(isinstance(x.get(name), str) for x in labels):
            asked.add(name)
    rows = found.filter(pl.col("field").is_in(sorted(asked))).to_dicts()
    mine = calibrate(rows, gold, schema.model)
    every = calibrate(found.to_dicts(), gold, schema.model)
    wrong = {r["doc_id"] for r in rows if r["value"].casefold() != str(gold[r["doc_id"]][r["field"]]).casefold()}
    review = dict(zip(results["doc_id"], results["needs_review"], strict=True))
    print(f"wrong spans {args.wrong_spans:.0%} of the free questions (seed {args.seed}"
          f"{', token logprobs' if args.logprobs else ''}); "
          f"asked: {', '.join(sorted(asked))}")
    print(f"asked fields: {mine.values} values, {mine.values - mine.right} wrong, AUROC {mine.auroc}")
    print(f"every value:  {every.values} values, {every.values - every.right} wrong, AUROC {every.auroc}")
    clean = [d for d in review if d not in wrong]
    print(f"letters with a wrong answer: {len(wrong)}, need review {sum(review[d] for d in wrong)}; "
          f"other letters: {len(clean)}, need review {sum(review[d] for d in clean)}")


if __name__ == "__main__":
    main()
