"""Throughput of the pipeline against the local fake server (not a test: prints measured figures).

Runs `extractor`'s library entry point at concurrency 32 against the fault-free fake
OpenAI-compatible server in a separate process, with 0 ms and 200 ms of simulated model latency.
Prints documents per second and, for 200 ms, the ratio to the ideal concurrency / latency.
Targets (issue 2): ratio >= 0.85 at 200 ms; >= 150 documents/s at 0 ms on 2 cores.

    python bench/throughput.py [--docs-0ms 600] [--docs-200ms 480]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor import runner  # noqa: E402
from extractor.config import build_config  # noqa: E402

CONCURRENCY = 32
LETTER = ("Dear Hiring Team at Example GmbH,\n\nI am applying for the role of Data Engineer. "
          "I have seven years of experience with Python, SQL and Airflow.\n\nBest regards,\nPat Doe {i}\n")


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "extractor.fakeserver", "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def measure(latency: float, docs: int) -> float:
    proc, url = start_server(latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "in"
            folder.mkdir()
            for i in range(docs):
                (folder / f"letter_{i:05}.txt").write_text(LETTER.format(i=i))
            config = build_config(dict(
                input_dir=folder, schema="cover_letter", schemas_dir=ROOT / "schemas",
                output_dir=Path(tmp) / "out", base_url=url, model="gpt-4o-mini", concurrency=CONCURRENCY), env={})
            started = time.perf_counter()
            summary = runner.run(config)
            wall = time.perf_counter() - started
            assert summary.ok == docs, summary
            return docs / wall
    finally:
        proc.terminate()
        proc.wait()


def measure_raw(latency: float, docs: int) -> float:
    """The same requests from a bare aiohttp client: what the server and loopback allow at best."""
    import asyncio

    import aiohttp
    import instructor

    from extractor.prompts import build_messages, system_prompt
    from extractor.schemas import load_schema

    schema = load_schema(ROOT / "schemas", "cover_letter")
    tool = instructor.openai_schema(schema.model).openai_schema
    system = system_prompt(schema)
    proc, url = start_server(latency)

    async def run() -> float:
        gate = asyncio.Semaphore(CONCURRENCY)
        async with aiohttp.ClientSession() as session:
            async def one(i: int) -> None:
                body = {"model": "gpt-4o-mini", "messages": build_messages(system, LETTER.format(i=i)),
                        "tools": [{"type": "function", "function": tool}],
                        "tool_choice": {"type": "function", "function": {"name": tool["name"]}}}
                async with gate, session.post(url + "/chat/completions", json=body) as response:
                    await response.json()

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(docs)))
            return docs / (time.perf_counter() - started)

    try:
        return asyncio.run(run())
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-0ms", type=int, default=600)
    parser.add_argument("--docs-200ms", type=int, default=480)
    args = parser.parse_args()
    fast = measure(0.0, args.docs_0ms)
    print(f"latency 0 ms:   {fast:7.1f} documents/s at concurrency {CONCURRENCY} "
          f"(target >= 150: {'met' if fast >= 150 else 'NOT met'})")
    slow = measure(0.2, args.docs_200ms)
    ideal = CONCURRENCY / 0.2
    print(f"latency 200 ms: {slow:7.1f} documents/s, ideal {ideal:.0f}, ratio {slow / ideal:.3f} "
          f"(target >= 0.85: {'met' if slow / ideal >= 0.85 else 'NOT met'})")
    raw = measure_raw(0.2, args.docs_200ms)
    print(f"bare aiohttp client, same requests, 200 ms: {raw:7.1f} documents/s, ratio {raw / ideal:.3f} "
          "(the ceiling this server and loopback allow)")


if __name__ == "__main__":
    main()
