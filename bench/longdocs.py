"""Long documents, chunked against whole (not a test: prints measured figures).

For packs made from a sample letter (scripts/make_long_documents.py) at 1x, 4x and 16x a 4,096-token context, it
extracts each pack twice through the fake server (with `--latency` seconds an answer, priced as gpt-4o-mini):
**whole**, one request, as a model whose context holds it would be asked; **chunked**, a server limited to the
4,096 tokens, the pack asked in chunks and merged. It prints requests, prompt tokens, cost, wall time and how
many labeled values came out right; then a 600,000-character pack's wall time, the process's peak RSS and the
grounding time of 150,000 against 600,000 characters (linear if about 4x).

    python bench/longdocs.py [--latency 0.2] [--letter jonas_berg]
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from extractor.config import build_config  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.schemas import load_schema  # noqa: E402
from extractor.testing.fakeserver import FakeOpenAI  # noqa: E402
from extractor.values.evidence import ground  # noqa: E402
from extractor.values.metrics import score  # noqa: E402

CONTEXT = 4096


def _packs() -> Any:
    spec = importlib.util.spec_from_file_location("make_long_documents", ROOT / "scripts" / "make_long_documents.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(folder: Path, out: Path, server: FakeOpenAI, context: int | None) -> tuple[Any, float]:
    config = build_config({"input_dir": folder, "schema": "cover_letter", "schemas_dir": ROOT / "schemas",
                           "output_dir": out, "base_url": server.base_url, "api_key": "sk-bench-000000000",
                           "model": "gpt-4o-mini", "context_tokens": context, "force": True}, env={})
    began = time.perf_counter()
    summary = runner.run(config)
    return summary, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the fake server takes an answer")
    parser.add_argument("--letter", default="jonas_berg")
    args = parser.parse_args()
    packs = _packs()
    (_, letter_text, label), = packs.letters([args.letter])
    oracle = packs.anchors(letter_text, label)
    model = load_schema(ROOT / "schemas", "cover_letter").model
    work = Path(tempfile.mkdtemp(prefix="bench-longdocs-"))
    try:
        # a 4,096-token context holds ~16,000 characters: pages of 1,800 characters, 9 pages a context
        print(f"context {CONTEXT:,} tokens, fake server answering in {args.latency:g} s, priced as gpt-4o-mini")
        print(f"{'size':>5} {'chars':>9} {'way':>8} {'requests':>8} {'prompt tok':>10} {'cost USD':>9} "
              f"{'wall s':>7} {'right':>6}")
        for times in (0, 1, 4, 16):  # 0: a warm-up (imports, the first connection), not printed
            folder = work / f"x{times}"
            written = packs.write_packs(folder, pages=max(3, 9 * times), names=[args.letter], formats=["txt"],
                                        labels=work / f"x{times}.jsonl")
            labels = {w["doc_id"]: w for w in written}
            chars = sum((folder / w["doc_id"]).stat().st_size for w in written)
            for way, limit in (("whole", None), ("chunked", CONTEXT)):
                server = FakeOpenAI(latency_s=args.latency, context_tokens=limit, anchored=oracle)
                server.start()
                try:
                    summary, wall = _run(folder, work / f"out-{times}-{way}", server, limit or 10**7)
                finally:
                    server.stop()
                rows = pl.read_parquet(work / f"out-{times}-{way}" / "cover_letter" / "results.parquet").to_dicts()
                scores = score(rows, labels, model)
                right = sum(s.accuracy == 1.0 for s in scores)
                if not times:
                    continue
                print(f"{times:>4}x {chars:>9,} {way:>8} {summary.requests:>8} {summary.prompt_tokens:>10,} "
                      f"{summary.cost_usd:>9.5f} {wall:>7.2f} {right:>3}/{len(scores)}")
        # A 600,000-character pack: time and peak memory of the whole run, chunked to the 4,096 tokens.
        folder = work / "big"
        packs.write_packs(folder, pages=334, names=[args.letter], formats=["txt"], labels=work / "big.jsonl")
        server = FakeOpenAI(latency_s=0.0, context_tokens=CONTEXT, anchored=oracle)
        server.start()
        try:
            summary, wall = _run(folder, work / "out-big", server, CONTEXT)
        finally:
            server.stop()
        big = next(folder.glob("*.txt")).read_text(encoding="utf-8")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"600k: {len(big):,} characters, {summary.ok} ok, {summary.requests} requests, {wall:.1f} s, "
              f"peak RSS of this process {rss_mb:,.0f} MB")
        value = model.model_validate({k: v for k, v in label.items() if k != "doc_id"}).model_dump(mode="json")
        timings = []
        for text in (big[: len(big) // 4], big):
            began = time.perf_counter()
            ground(model, value, text)
            timings.append(time.perf_counter() - began)
        print(f"grounding one record: {timings[0]:.3f} s in {len(big) // 4:,} characters, {timings[1]:.3f} s in "
              f"{len(big):,} ({timings[1] / timings[0]:.1f}x for 4x the text)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
