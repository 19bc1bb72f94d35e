"""Throughput of the pipeline against the local fake server (not a test: prints measured figures).

Runs `extractor`'s library entry point at concurrency 32 against the fault-free fake
OpenAI-compatible server in a separate process, with 0 ms and 200 ms of simulated model latency.
Prints documents per second and, for 200 ms, the ratio to the ideal concurrency / latency.
Targets (issue 2): ratio >= 0.85 at 200 ms; >= 150 documents/s at 0 ms on 2 cores.

The 200 ms target is judged on 960 documents (30 round trips per connection). A batch that short
still includes the start-up and drain transients (the first 32 requests leave one after the other,
the last ones finish alone: ~0.15 s in all); a 480-document batch is printed too, where they weigh
twice as much. Client CPU per document is the event loop thread's CPU time divided by documents:
at 32 requests in flight every millisecond of it delays the responses queued behind it.

    python bench/throughput.py [--docs-0ms 600] [--docs-200ms 960]
    python bench/throughput.py --against-plain ROUNDS [--docs-0ms 3000]    # extractor / a plain instructor loop, 0 ms
    python bench/throughput.py --stack-200ms ROUNDS [--docs-200ms 3000]    # each layer's ceiling at 200 ms
    python bench/throughput.py --timeline [--docs-200ms 3000]              # a 200 ms run's start and end
    python bench/throughput.py --first-wave [--docs-200ms 3000]            # how a 200 ms run gets going

`--stack-200ms` runs each layer in a fresh process of its own, imports paid before its clock starts, and prints the
whole run's rate and the steady one (between the 10th and 90th percentile of the finishing times: the rate a run
holds, without its start and its drain).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import RunConfig, build_config  # noqa: E402
from extractor.extraction import runner  # noqa: E402

CONCURRENCY = 32
LETTER = ("Dear Hiring Team at Example GmbH,\n\nI am applying for the role of Data Engineer. "
          "I have seven years of experience with Python, SQL and Airflow.\n\nBest regards,\nPat Doe {i}\n")


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    """A fresh fake server, warmed with one request shaped like the measured ones, so that its own
    first-request costs (lazy imports, caches) are not charged to the client being measured.
    The warm-up does not import openai or instructor here: the 0 ms run, first in this process, keeps
    paying that one-time import (~0.5 s), as a command-line run would."""
    from extractor.extraction.prompts import build_messages, system_prompt
    from extractor.schemas import load_schema

    proc = subprocess.Popen([sys.executable, "-m", "extractor.testing.fakeserver", "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    schema = load_schema(ROOT / "schemas", "cover_letter")
    tool = {"name": schema.model.__name__, "parameters": schema.model.model_json_schema()}
    body = {"model": "gpt-4o-mini", "messages": build_messages(system_prompt(schema), "warm-up"),
            "tools": [{"type": "function", "function": tool}],
            "tool_choice": {"type": "function", "function": {"name": tool["name"]}}}
    request = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return proc, url


class Marks:
    """An observer noting when each document finished (`steady`)."""

    def __init__(self, marks: list[float]) -> None:
        self.marks = marks

    def started(self, total: int, backend: str, model: str) -> None:
        pass

    def finished(self, row: dict, totals: object) -> None:
        self.marks.append(time.perf_counter())


def steady(marks: list[float]) -> float:
    """Documents per second between the 10th and the 90th percentile of the finishing times: the rate a run holds,
    without its start (a fresh process imports openai, ~1 s, and builds its client) and its drain."""
    marks = sorted(marks)
    a, b = len(marks) // 10, 9 * len(marks) // 10
    return (b - a) / (marks[b] - marks[a]) if b > a and marks[b] > marks[a] else 0.0


def measure(latency: float, docs: int, marks: list[float] | None = None) -> tuple[float, float]:
    """(documents per second, client CPU milliseconds per document) of one `runner.run`; `marks`: each document's
    finishing time is appended."""
    proc, url = start_server(latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = letters_config(Path(tmp), docs, url)
            started, cpu = time.perf_counter(), time.thread_time()
            summary = runner.run(config, Marks(marks) if marks is not None else None)
            wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
            assert summary.ok == docs, summary
            return docs / wall, cpu / docs * 1000
    finally:
        proc.terminate()
        proc.wait()


def timeline(docs: int) -> str:
    """Where one 200 ms run's time goes beyond the steady rate: from the call to the first document, to the first
    committed row, the steady rate, the results written at the end (`Recorder.materialize`'s last call) and the
    rest after the last row."""
    from extractor.extraction import recorder

    written: list[float] = []
    materialize = recorder.Recorder.materialize

    def timed(self: recorder.Recorder) -> None:
        began = time.perf_counter()
        materialize(self)
        written.append(time.perf_counter() - began)

    class Clock(Marks):
        def started(self, total: int, backend: str, model: str) -> None:
            self.began = time.perf_counter()

    marks: list[float] = []
    clock = Clock(marks)
    recorder.Recorder.materialize = timed  # type: ignore[method-assign]
    try:
        called, ended = letters_at_200ms(docs, clock)
    finally:
        recorder.Recorder.materialize = materialize  # type: ignore[method-assign]
    ideal = CONCURRENCY / 0.2
    return (f"whole {docs / (ended - called) / ideal:.3f} of {CONCURRENCY}/0.2 s, steady {steady(marks) / ideal:.3f}; "
            f"call to first document {clock.began - called:.3f} s, to the first committed row "
            f"{marks[0] - clock.began:.3f} s (0.2 of it the first answer's latency), last row to the end "
            f"{ended - marks[-1]:.3f} s (results written {written[-1]:.3f} s)")


def first_wave(docs: int) -> str:
    """How a warm 200 ms run over `docs` letters gets going: the documents done in each of its first six half
    seconds, and, at the transport, the median round trip of a request and the median gap from an answer to the next
    request sent (the k-th answer to the (k + CONCURRENCY)-th request), in the first half second and from the third
    second on."""
    import statistics

    from extractor.llm import transport

    sends: list[float] = []
    answers: list[float] = []
    send_once = transport.RetryingTransport._send_once

    async def timed(self: transport.RetryingTransport, request: object) -> object:
        sends.append(time.perf_counter())
        try:
            return await send_once(self, request)  # type: ignore[arg-type]
        finally:
            answers.append(time.perf_counter())

    measure(0.0, 100)  # imports and first-call costs paid before anything is timed
    marks: list[float] = []
    transport.RetryingTransport._send_once = timed  # type: ignore[assignment,method-assign]
    try:
        called, ended = letters_at_200ms(docs, Marks(marks))
    finally:
        transport.RetryingTransport._send_once = send_once  # type: ignore[method-assign]
    sent, answered = sorted(sends), sorted(answers)
    done = [sum(1 for m in marks if i <= (m - called) * 2 < i + 1) for i in range(6)]
    trips = [(s - called, a - s) for s, a in zip(sent, answered, strict=True)]
    gaps = [(a - called, s - a) for a, s in zip(answered, sent[CONCURRENCY:], strict=False)]

    def ms(pairs: list[tuple[float, float]], early: bool) -> str:
        got = [d for t, d in pairs if (t < 0.5 if early else t >= 3.0)]
        return f"{statistics.median(got) * 1000:.1f} ms" if got else "-"

    return (f"whole {docs / (ended - called) / (CONCURRENCY / 0.2):.3f}; documents done per half second "
            f"{', '.join(map(str, done))}; round trip {ms(trips, True)} in the first half second, {ms(trips, False)} "
            f"from the third second; answer to the next request {ms(gaps, True)}, then {ms(gaps, False)}")


def letters_at_200ms(docs: int, observer: Marks) -> tuple[float, float]:
    """(called, returned): the clock around one `runner.run` over `docs` letters against a fresh 200 ms fake server."""
    proc, url = start_server(0.2)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = letters_config(Path(tmp), docs, url)
            called = time.perf_counter()
            runner.run(config, observer)
            return called, time.perf_counter()
    finally:
        proc.terminate()
        proc.wait()


def letters_config(tmp: Path, docs: int, url: str) -> RunConfig:
    """A run over `docs` letters written under `tmp`/in, against the fake server at `url`, at CONCURRENCY."""
    folder = tmp / "in"
    write_letters(folder, docs)
    return build_config(dict(
        input_dir=folder, schema="cover_letter", schemas_dir=ROOT / "schemas", output_dir=tmp / "out",
        base_url=url, model="gpt-4o-mini", concurrency=CONCURRENCY), env={})


def write_letters(folder: Path, docs: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        (folder / f"letter_{i:05}.txt").write_text(LETTER.format(i=i))


def measure_plain(latency: float, docs: int, aiohttp: bool = False, marks: list[float] | None = None
                  ) -> tuple[float, float]:
    """A plain instructor loop over the same files (issue 26's yardstick): read each file, ask
    instructor over a default `openai.AsyncOpenAI` for the schema's model, 32 at a time; no journal,
    no evidence, no Parquet, no retries of its own. `aiohttp`: over openai's `DefaultAioHttpClient`
    (what extractor's transport is built on) instead of its default httpx client.
    (documents per second, client CPU ms per document)."""
    import asyncio

    import instructor
    import openai

    from extractor.extraction.prompts import build_messages, system_prompt
    from extractor.schemas import load_schema

    schema = load_schema(ROOT / "schemas", "cover_letter")
    system = system_prompt(schema)
    proc, url = start_server(latency)

    async def run(folder: Path) -> tuple[float, float]:
        http = openai.DefaultAioHttpClient() if aiohttp else None
        raw = openai.AsyncOpenAI(base_url=url, api_key="no-key", max_retries=0, http_client=http)
        client = instructor.from_openai(raw)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(path: Path) -> None:
            async with gate:
                await client.chat.completions.create(
                    model="gpt-4o-mini", response_model=schema.model, max_retries=2,
                    messages=build_messages(system, path.read_text()))  # type: ignore[arg-type]
            if marks is not None:
                marks.append(time.perf_counter())

        started, cpu = time.perf_counter(), time.thread_time()
        await asyncio.gather(*(one(path) for path in sorted(folder.iterdir())))
        measured = docs / (time.perf_counter() - started), (time.thread_time() - cpu) / docs * 1000
        await raw.close()
        return measured

    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "in"
            write_letters(folder, docs)
            return asyncio.run(run(folder))
    finally:
        proc.terminate()
        proc.wait()


def measure_openai(latency: float, docs: int, marks: list[float] | None = None) -> tuple[float, float]:
    """The same requests through openai's client alone (its `DefaultAioHttpClient`, no instructor, no extractor):
    what the client library extractor is built on allows at best. (documents per second, client CPU ms/document)"""
    import asyncio

    import instructor
    import openai

    from extractor.extraction.prompts import build_messages, system_prompt
    from extractor.schemas import load_schema

    schema = load_schema(ROOT / "schemas", "cover_letter")
    tool = instructor.openai_schema(schema.model).openai_schema
    system = system_prompt(schema)
    proc, url = start_server(latency)

    async def run() -> tuple[float, float]:
        raw = openai.AsyncOpenAI(base_url=url, api_key="no-key", max_retries=0,
                                 http_client=openai.DefaultAioHttpClient())
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                await raw.chat.completions.create(
                    model="gpt-4o-mini", messages=build_messages(system, LETTER.format(i=i)),  # type: ignore[arg-type]
                    tools=[{"type": "function", "function": tool}],  # type: ignore[list-item]
                    tool_choice={"type": "function", "function": {"name": tool["name"]}})
            if marks is not None:
                marks.append(time.perf_counter())

        started, cpu = time.perf_counter(), time.thread_time()
        await asyncio.gather(*(one(i) for i in range(docs)))
        measured = docs / (time.perf_counter() - started), (time.thread_time() - cpu) / docs * 1000
        await raw.close()
        return measured

    try:
        return asyncio.run(run())
    finally:
        proc.terminate()
        proc.wait()


def measure_raw(latency: float, docs: int, burn_ms: float = 0.0, marks: list[float] | None = None
                ) -> tuple[float, float]:
    """The same requests from a bare aiohttp client: what the server and loopback allow at best.

    `burn_ms` adds that much client CPU per request (half before sending, half after the answer), to
    show what client CPU costs at this concurrency (bench/client_cpu.py).
    """
    import asyncio

    import aiohttp
    import instructor

    from extractor.extraction.prompts import build_messages, system_prompt
    from extractor.schemas import load_schema

    schema = load_schema(ROOT / "schemas", "cover_letter")
    tool = instructor.openai_schema(schema.model).openai_schema
    system = system_prompt(schema)
    proc, url = start_server(latency)

    def burn(ms: float) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            pass

    async def run() -> tuple[float, float]:
        gate = asyncio.Semaphore(CONCURRENCY)
        async with aiohttp.ClientSession() as session:
            async def one(i: int) -> None:
                body = {"model": "gpt-4o-mini", "messages": build_messages(system, LETTER.format(i=i)),
                        "tools": [{"type": "function", "function": tool}],
                        "tool_choice": {"type": "function", "function": {"name": tool["name"]}}}
                async with gate:
                    burn(burn_ms / 2)
                    async with session.post(url + "/chat/completions", json=body) as response:
                        await response.json()
                    burn(burn_ms / 2)
                if marks is not None:
                    marks.append(time.perf_counter())

            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.gather(*(one(i) for i in range(docs)))
            return docs / (time.perf_counter() - started), (time.thread_time() - cpu) / docs * 1000

    try:
        return asyncio.run(run())
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-0ms", type=int, default=600)
    parser.add_argument("--docs-200ms", type=int, default=960)
    parser.add_argument("--against-plain", type=int, metavar="ROUNDS", default=0,
                        help="only compare extractor with a plain instructor loop at 0 ms, ROUNDS times "
                             "(alternating, over --docs-0ms letters), and print each ratio")
    parser.add_argument("--stack-200ms", type=int, metavar="ROUNDS", default=0,
                        help="only compare, at 200 ms over --docs-200ms letters, ROUNDS times: a bare aiohttp client, "
                             "openai's client alone, a plain instructor loop and extractor (each layer's ceiling)")
    parser.add_argument("--layer", default="", help=argparse.SUPPRESS)
    parser.add_argument("--first-wave", action="store_true",
                        help="only how a warm 200 ms run over --docs-200ms letters gets going: documents done per half "
                             "second, round trips and the gaps from an answer to the next request, early and later")
    parser.add_argument("--timeline", action="store_true",
                        help="only where one 200 ms run over --docs-200ms letters spends its time beyond the steady "
                             "rate (start, first row, the results written at the end), cold and warm")
    args = parser.parse_args()
    layers: dict[str, Callable[[list[float]], tuple[float, float]]] = {
        "bare aiohttp client": lambda m: measure_raw(0.2, args.docs_200ms, marks=m),
        "openai client alone (aiohttp)": lambda m: measure_openai(0.2, args.docs_200ms, marks=m),
        "plain instructor loop (aiohttp)": lambda m: measure_plain(0.2, args.docs_200ms, aiohttp=True, marks=m),
        "extractor": lambda m: measure(0.2, args.docs_200ms, marks=m)}
    if args.first_wave:
        print(first_wave(args.docs_200ms), flush=True)
        return
    if args.timeline:
        # First in this process: openai is not imported yet, as in a command-line run; then once more, warm.
        print(f"cold (openai imported during the run): {timeline(args.docs_200ms)}", flush=True)
        print(f"warm (imports already paid):           {timeline(args.docs_200ms)}", flush=True)
        return
    if args.layer:  # one layer in this fresh process (what --stack-200ms runs): a JSON line
        measure(0.0, 100)  # imports and first-call costs paid before anything is timed
        marks: list[float] = []
        rate, cpu = layers[args.layer](marks)
        print(json.dumps({"rate": rate, "cpu": cpu, "steady": steady(marks)}))
        return
    if args.stack_200ms:
        ideal = CONCURRENCY / 0.2
        for i in range(args.stack_200ms):
            for name in layers:
                # Each layer in a process of its own, its imports paid before its clock starts: what one layer leaves
                # on the heap (clients, caches, garbage) must not slow the next one's collections.
                out = subprocess.run([sys.executable, __file__, "--layer", name, "--docs-200ms", str(args.docs_200ms)],
                                     capture_output=True, text=True, check=True).stdout
                got = json.loads(out.strip().splitlines()[-1])
                print(f"round {i + 1}: {name:32s} {got['rate']:6.1f} documents/s, ratio {got['rate'] / ideal:.3f} of "
                      f"{CONCURRENCY}/0.2 s (steady {got['steady']:6.1f}/s = {got['steady'] / ideal:.3f}), client CPU "
                      f"{got['cpu']:.2f} ms/document", flush=True)
        return
    if args.against_plain:
        ratios = []
        for i in range(args.against_plain):
            ours, cpu = measure(0.0, args.docs_0ms)
            plain, plain_cpu = measure_plain(0.0, args.docs_0ms)
            fast, fast_cpu = measure_plain(0.0, args.docs_0ms, aiohttp=True)
            ratios.append(ours / max(plain, fast))  # against the faster of the two plain loops
            print(f"round {i + 1}: extractor {ours:6.1f} documents/s ({cpu:.2f} ms CPU/document); plain instructor "
                  f"loop {plain:6.1f} ({plain_cpu:.2f} ms), over aiohttp {fast:6.1f} ({fast_cpu:.2f} ms); "
                  f"ratio to the faster {ratios[-1]:.2f}", flush=True)
        print(f"ratio extractor / faster plain loop at 0 ms over {args.docs_0ms} letters, concurrency {CONCURRENCY}: "
              f"{min(ratios):.2f}-{max(ratios):.2f} (median {sorted(ratios)[len(ratios) // 2]:.2f})")
        return
    ideal = CONCURRENCY / 0.2
    fast, cpu = measure(0.0, args.docs_0ms)
    print(f"latency 0 ms:   {fast:7.1f} documents/s at concurrency {CONCURRENCY}, client CPU {cpu:.2f} ms/document "
          f"(target >= 150: {'met' if fast >= 150 else 'NOT met'})")
    marks: list[float] = []
    slow, cpu = measure(0.2, args.docs_200ms, marks)
    held = steady(marks)
    print(f"latency 200 ms: {slow:7.1f} documents/s over {args.docs_200ms} documents, ideal {ideal:.0f}, "
          f"ratio {slow / ideal:.3f} (steady {held:.1f}/s = {held / ideal:.3f}), client CPU {cpu:.2f} ms/document "
          f"(target >= 0.85: {'met' if slow / ideal >= 0.85 else 'NOT met'})")
    short, cpu = measure(0.2, args.docs_200ms // 2)
    print(f"latency 200 ms: {short:7.1f} documents/s over {args.docs_200ms // 2} documents, "
          f"ratio {short / ideal:.3f} (shorter batch: the start-up and drain transients weigh twice as much)")
    raw, cpu = measure_raw(0.2, args.docs_200ms)
    print(f"bare aiohttp client, same requests, 200 ms: {raw:7.1f} documents/s, ratio {raw / ideal:.3f}, "
          f"client CPU {cpu:.2f} ms/document (the ceiling this server and loopback allow)")


if __name__ == "__main__":
    main()
