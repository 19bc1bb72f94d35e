"""Embedded model quality: per-field accuracy, fields right, seconds and prompt tokens evaluated per
document, for each small model and strategy. Not a test: prints measured figures.

Each combination runs the real pipeline (`extractor run` in-process, a fresh output folder, the
embedded llama.cpp server) over a folder of documents and scores it with `extractor eval`'s code
against a labels file. "Prompt tokens evaluated" are read from the llama.cpp server's own verbose log
(`prompt eval time = ... / N tokens` per request): with the document first and byte-identical across a
document's questions, the server evaluates the document once and then only each question's tokens.

    python bench/local_quality.py [--models smollm2,gemma3] [--strategies fields,whole]
        [--inputs inputs] [--labels bench/labels/cover_letters.jsonl] [--limit N] [--fields]
        [--cache answers.json] [--only location,company,skills] [--schema cover_letter] [--docs a.txt,b.pdf]

    python bench/local_quality.py --models smollm2 --strategies fields --schema invoice \
        --inputs samples/invoices --labels bench/labels/invoices.jsonl --fields --docs us_01.txt,...

With a list of objects (an invoice's line_items) `--fields` also prints each item field's accuracy over the
labeled items, item i of the result against item i of the label (numbers within 0.5%, text blind to case and
spacing), and the items' count against the label's.

On a shared 2-core machine one run of the field strategy takes an hour, so two options cut what a comparison
asks the model (field strategy only): `--cache FILE` keeps the model's answers by question (messages, answer
schema, max_tokens; temperature 0, so the same question gets the same answer) and answers a question asked
before from it: a run after a change asks the model only the questions that changed. `--only FIELDS` sends the
model only those fields' questions (the others are answered null; the deterministic finders still run) and
prints only their figures: a change to some fields, whose other questions stay byte for byte the same, is
measured on the fields it changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import build_config  # noqa: E402
from extractor.documents import discover  # noqa: E402
from extractor.extraction import fields, runner  # noqa: E402
from extractor.llm.embedded import MODELS, model_file  # noqa: E402
from extractor.quality.evaluation import EvalConfig, evaluate  # noqa: E402


def memoize(cache_file: Path | None, only: set[str]) -> dict[str, int]:
    """Answers of the field strategy's questions from `cache_file` (written back as new ones come), and only
    `only`'s questions sent to the model (see the module docstring). Returns live hit/miss counts."""
    cache: dict[str, str] = json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}
    stats = {"hit": 0, "miss": 0}
    init = fields.FieldExtractor.__init__

    def patched(self: fields.FieldExtractor, ask: fields.Ask, *args: object, **kwargs: object) -> None:
        async def answer(messages: list[dict[str, str]], schema: dict, max_tokens: int, meter: object,
                         *rest: object) -> str:
            name = next(iter(schema["properties"]))
            if only and name not in only:
                return json.dumps({name: None})
            key = hashlib.sha256(json.dumps([messages, schema, max_tokens, rest], sort_keys=True).encode()).hexdigest()
            if key in cache:
                stats["hit"] += 1
                return cache[key]
            stats["miss"] += 1
            cache[key] = await ask(messages, schema, max_tokens, meter, *rest)
            if cache_file is not None:
                cache_file.write_text(json.dumps(cache))
            return cache[key]

        init(self, answer, *args, **kwargs)

    if cache_file is not None or only:
        fields.FieldExtractor.__init__ = patched
    return stats


_PROMPT_EVAL = re.compile(r"prompt eval time\s*=\s*[\d.]+ ms /\s*(\d+) tokens")


def run_one(model: str, strategy: str, folder: Path, labels: Path, work: Path, schema: str = "cover_letter") -> dict:
    out = work / f"out-{model}-{strategy}"
    log_path = work / f"llama-{model}-{strategy}.log"
    os.environ["EXTRACTOR_LLAMA_LOG"] = str(log_path)
    try:
        config = build_config(dict(input_dir=folder, schema=schema, schemas_dir=ROOT / "schemas",
                                   output_dir=out, backend="embedded", strategy=strategy,
                                   model_path=model_file(model)), env={})
        started = time.perf_counter()
        summary = runner.run(config)
        wall = time.perf_counter() - started
    finally:
        os.environ.pop("EXTRACTOR_LLAMA_LOG", None)
    report = evaluate(EvalConfig(settings=config, labels_file=labels))
    right, total = report.fields_right
    evaluated = sum(int(n) for n in _PROMPT_EVAL.findall(log_path.read_text(errors="replace")))
    docs = max(summary.documents, 1)
    return dict(model=model, strategy=strategy, ok=summary.ok, docs=summary.documents, right=right, total=total,
                s_per_doc=wall / docs, compute_s=summary.compute_s / docs,
                prompt_tokens=summary.prompt_tokens / docs if hasattr(summary, "prompt_tokens") else None,
                evaluated_per_doc=evaluated / docs, scores=report.scores,
                items=item_scores(config.layout.results, labels))


def _same(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= 0.005 * max(abs(a), abs(b), 1e-9)
    return " ".join(str(a).split()).casefold() == " ".join(str(b).split()).casefold()


def item_scores(results: Path, labels: Path) -> dict[str, tuple[int, int]]:
    """Per item field of each list of objects: (right, labeled) over the labeled items, item i against item i;
    "<list> count": documents whose item count is the label's."""
    import polars as pl

    rows = {r["doc_id"]: r for r in pl.read_parquet(results).to_dicts()}
    out: dict[str, list[int]] = {}
    for line in labels.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        row = rows.get(label["doc_id"])
        if row is None:
            continue
        for name, value in label.items():
            if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
                continue
            got = row.get(name) or []
            count = out.setdefault(f"{name} count", [0, 0])
            count[0] += len(got) == len(value)
            count[1] += 1
            for i, item in enumerate(value):
                for sub, truth in item.items():
                    if truth is None:
                        continue
                    score = out.setdefault(f"{name}.{sub}", [0, 0])
                    score[0] += i < len(got) and got[i].get(sub) is not None and _same(got[i][sub], truth)
                    score[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--strategies", default="fields,whole")
    parser.add_argument("--inputs", type=Path, default=ROOT / "inputs")
    parser.add_argument("--labels", type=Path, default=ROOT / "bench" / "labels" / "cover_letters.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents")
    parser.add_argument("--fields", action="store_true", help="print per-field accuracy")
    parser.add_argument("--cache", type=Path, help="JSON file of the model's answers by question (fields strategy)")
    parser.add_argument("--only", default="", help="comma-separated fields whose questions go to the model")
    parser.add_argument("--schema", default="cover_letter", help="the schema in schemas/ (default cover_letter)")
    parser.add_argument("--docs", default="", help="comma-separated doc ids: only these documents")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    stats = memoize(args.cache, only)
    sources = discover(args.inputs)
    if args.docs:
        wanted = set(args.docs.split(","))
        sources = [s for s in sources if s.doc_id in wanted]
    if args.limit:
        sources = sources[: args.limit]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = work / "in"
        for src in sources:
            target = folder / src.doc_id
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.path.read_bytes())
        for model in args.models.split(","):
            for strategy in args.strategies.split(","):
                result = run_one(model, strategy, folder, args.labels, work, args.schema)
                results.append(result)
                print(f"{model:8} {strategy:6} ok {result['ok']}/{result['docs']}  fields right "
                      f"{result['right']:.1f}/{result['total']} = {result['right'] / max(result['total'], 1):.1%}  "
                      f"{result['s_per_doc']:.2f} s/doc  {result['compute_s']:.2f} CPU-s/doc  "
                      f"prompt tokens evaluated/doc {result['evaluated_per_doc']:.0f}"
                      + (f"  answers from the cache {stats['hit']}, asked {stats['miss']}" if args.cache else ""),
                      flush=True)
                if args.fields:
                    for s in result["scores"]:
                        if only and s.field.split(".")[0] not in only:
                            continue
                        print(f"    {s.field:22} {s.accuracy:.0%}" if s.accuracy is not None else f"    {s.field}")
                    for name, (right, labeled) in result["items"].items():
                        print(f"    {name:22} {right / labeled:.0%} ({right}/{labeled}, items by position)")
    print("\n| model | strategy | fields right | s/doc | prompt tokens evaluated/doc |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['model']} | {r['strategy']} | {r['right']:.1f}/{r['total']} = "
              f"{r['right'] / max(r['total'], 1):.1%} | {r['s_per_doc']:.2f} | {r['evaluated_per_doc']:.0f} |")


if __name__ == "__main__":
    main()
