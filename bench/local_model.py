"""Embedded model: extractor's wall time vs calling llama.cpp directly with the same prompts.

Not a test: prints measured figures. Both sides load the same GGUF, send the same messages and tool
schema with the same forced tool call, temperature, max_tokens and repeat penalty, one document at a
time on the same cores; extractor's side includes starting and stopping its server, reading the
files and writing Parquet. Target (issue 3): ratio <= 1.10.

    python bench/local_model.py [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import build_config  # noqa: E402
from extractor.documents import discover, load_document  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.extraction.prompts import build_messages, system_prompt  # noqa: E402
from extractor.llm.embedded import CONTEXT_TOKENS, EMBEDDED_EXTRA_BODY, EMBEDDED_MAX_TOKENS, default_model_path  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402


def direct(files: list[Path], folder: Path) -> float:
    import instructor
    from llama_cpp import Llama

    schema = load_schema(ROOT / "schemas", "cover_letter")
    tool = instructor.openai_schema(schema.model).openai_schema
    system = system_prompt(schema)
    started = time.perf_counter()
    llm = Llama(model_path=str(default_model_path()), n_ctx=CONTEXT_TOKENS, n_threads=os.cpu_count(),
                n_threads_batch=os.cpu_count(), verbose=False)
    for src in discover(folder):
        doc = load_document(src, max_chars=200_000)
        llm.create_chat_completion(
            messages=build_messages(system, doc.text), tools=[{"type": "function", "function": tool}],
            tool_choice={"type": "function", "function": {"name": tool["name"]}}, temperature=0.0,
            max_tokens=EMBEDDED_MAX_TOKENS, **dict(EMBEDDED_EXTRA_BODY))
    return time.perf_counter() - started


def via_extractor(folder: Path, out: Path) -> tuple[float, int]:
    config = build_config(dict(input_dir=folder, schema="cover_letter", schemas_dir=ROOT / "schemas",
                               output_dir=out, backend="embedded"), env={})
    started = time.perf_counter()
    summary = runner.run(config)
    return time.perf_counter() - started, summary.ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N documents of inputs/")
    args = parser.parse_args()
    sources = discover(ROOT / "inputs")
    if args.limit:
        sources = sources[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        for src in sources:
            target = folder / src.doc_id
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.path.read_bytes())
        engine = direct([s.path for s in sources], folder)
        pipeline, ok = via_extractor(folder, Path(tmp) / "out")
    n = len(sources)
    print(f"documents: {n} ({ok} ok through extractor)")
    print(f"llama.cpp direct: {engine:7.1f} s  {n / engine * 60:6.1f} documents/minute")
    print(f"extractor:        {pipeline:7.1f} s  {n / pipeline * 60:6.1f} documents/minute")
    print(f"ratio extractor / direct: {pipeline / engine:.3f} (target <= 1.10: "
          f"{'met' if pipeline / engine <= 1.10 else 'NOT met'})")


if __name__ == "__main__":
    main()
