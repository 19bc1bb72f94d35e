"""How well evidence tells true values from made-up ones (not a test: prints measured figures).

Runs the real pipeline over `inputs/` against the local fake server, which answers each letter with its
labels from `bench/labels/` (a truthful model), then again with a share of the copied fields replaced by
other letters' values (a model that makes things up). Prints the share of copied values found, how many
made-up and true values came out `not_found`, how many affected documents need review, and the AUROC of
the label-free confidence against correctness. This measures the alignment, not a model.

    python bench/evidence_quality.py [--made-up 0.4] [--seed 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import build_config  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.quality.calibration import calibrate  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.testing.fakeserver import FakeOpenAI, oracle_answers  # noqa: E402


def run(folder: Path, oracle: dict[str, dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    server = FakeOpenAI(answers=oracle)
    server.start()
    try:
        config = build_config({"input_dir": ROOT / "inputs", "schemas_dir": ROOT / "schemas", "output_dir": folder,
                               "base_url": server.base_url, "api_key": "sk-bench-0000000000",
                               "model": "gpt-4o-mini"}, env={})
        runner.run(config)
        return pl.read_parquet(config.layout.evidence), pl.read_parquet(config.layout.results)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--made-up", type=float, default=0.4, help="share of copied fields replaced")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    schema = load_schema(ROOT / "schemas", "cover_letter")
    labels = [json.loads(line) for line in (ROOT / "bench" / "labels" / "cover_letters.jsonl").read_text().splitlines()]
    gold = {x["doc_id"]: schema.model.model_validate({k: v for k, v in x.items() if k != "doc_id"})
            .model_dump(mode="json") for x in labels}
    with tempfile.TemporaryDirectory() as tmp:
        truthful, _ = run(Path(tmp) / "truthful", oracle_answers(labels, 0.0, args.seed)[0])
        copied = truthful.filter(pl.col("status") != "derived")
        found = copied.filter(pl.col("status") != "not_found")
        print(f"truthful answers: {found.height}/{copied.height} copied values found "
              f"({found.height / copied.height:.1%}); not found: "
              + "; ".join(f"{r['doc_id']} {r['field']}={r['value']!r}" for r in
                          copied.filter(pl.col("status") == "not_found").iter_rows(named=True)))

        oracle, invented = oracle_answers(labels, args.made_up, args.seed)
        evidence, results = run(Path(tmp) / "made-up", oracle)
        by_key = {(r["doc_id"], r["field"]): r["status"] for r in evidence.iter_rows(named=True)}
        made_up = [by_key[k] for k in invented]
        true = [s for k, s in by_key.items() if k not in invented and s != "derived"]
        affected = {doc_id for doc_id, _ in invented}
        flagged = set(results.filter(pl.col("needs_review"))["doc_id"])
        calibration = calibrate(evidence.to_dicts(), gold, schema.model)
        print(f"{args.made_up:.0%} of copied fields made up: {made_up.count('not_found')}/{len(made_up)} made-up "
              f"values not_found, {true.count('not_found')}/{len(true)} true values not_found, "
              f"{len(affected & flagged)}/{len(affected)} affected documents need review, confidence AUROC "
              f"{calibration.auroc}")


if __name__ == "__main__":
    main()
