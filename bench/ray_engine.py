"""`--engine ray` against one process, on a CPU-bound and a latency-bound folder (not a test: prints measured figures).

The letters of bench/throughput.py against its fake server, in a separate process, at 0 ms (the client's CPU is
the limit) and at 200 ms (the wait is), same concurrency, local engine and Ray engine alternating. Ray is started
locally, small (`num_cpus` = this machine's cores); its start-up and its actors' imports are part of a run's wall
time, so two rates are printed: over the whole run, and steady (first to last committed document). Driver CPU is
the driver's main-thread CPU per document: what is left in the driver with Ray (intake, journal, outputs) against
all of it in one process.

    python bench/ray_engine.py [--docs 600] [--latencies 0 0.2] [--concurrency 32] [--rounds 2]

`--startup` measures what a Ray run costs before its first document instead: a run of `--docs` letters (say 4) on
each engine, the seconds from the run's start to its first committed row and to its end; the difference between
the engines is Ray's start-up (a local Ray, its actors importing extractor) and shut-down.

    python bench/ray_engine.py --startup --docs 4 --rounds 3

`--scans`: the folder is `--docs` sample letters as clean one-page scans (bench/make_scans.py), read by OCR: the
CPU-heavy folder, where the reading itself is the work an actor takes over.

    python bench/ray_engine.py --scans --docs 8 --latencies 0 --rounds 1 --concurrency 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import ROOT, start_server, write_letters

from extractor.config import build_config
from extractor.extraction import runner


class Stamps:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.begun = 0.0

    def begin(self) -> None:
        self.begun = time.perf_counter()

    def started(self, total: int, backend: str, model: str) -> None: ...

    def finished(self, row: dict[str, Any], totals: Any) -> None:
        self.times.append(time.perf_counter())


def write_scans(folder: Path, letters: int) -> int:
    """`letters` sample letters as clean one-page 200 dpi scans (bench/make_scans.py); how many files."""
    from make_scans import make

    written = make(folder, letters=letters, variants=("clean",))
    (folder / "labels.jsonl").unlink()  # not a document of the folder
    return len(written)


def measure(engine: str, latency: float, docs: int, concurrency: int,
            scans: bool = False) -> tuple[float, float, float]:
    """(documents/s over the whole run, documents/s first to last commit, driver CPU ms per document)."""
    proc, url = start_server(latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "in"
            options: dict[str, Any] = {}
            if scans:
                docs = write_scans(folder, docs)
                options = dict(parse_timeout_s=900, ocr_page_timeout_s=900)  # a page took minutes on busy cores
            else:
                write_letters(folder, docs)
            config = build_config(dict(
                input_dir=folder, schema="cover_letter", schemas_dir=ROOT / "schemas", output_dir=Path(tmp) / "out",
                base_url=url, model="gpt-4o-mini", concurrency=concurrency, engine=engine, **options), env={})
            stamps = Stamps()
            started, cpu = time.perf_counter(), time.thread_time()
            summary = runner.run(config, observer=stamps)
            wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
            assert summary.ok == docs, summary.failures[:3]
            steady = (len(stamps.times) - 1) / (stamps.times[-1] - stamps.times[0])
            return docs / wall, steady, cpu / docs * 1000
    finally:
        proc.terminate()
        proc.wait()


def startup(engine: str, docs: int, concurrency: int) -> tuple[float, float]:
    """(seconds to the first committed row, seconds the whole run took) for `docs` letters on a 0 ms server."""
    proc, url = start_server(0.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "in"
            write_letters(folder, docs)
            config = build_config(dict(
                input_dir=folder, schema="cover_letter", schemas_dir=ROOT / "schemas", output_dir=Path(tmp) / "out",
                base_url=url, model="gpt-4o-mini", concurrency=concurrency, engine=engine), env={})
            stamps = Stamps()
            stamps.begin()
            summary = runner.run(config, observer=stamps)
            wall = time.perf_counter() - stamps.begun
            assert summary.ok == docs, summary.failures[:3]
            return stamps.times[0] - stamps.begun, wall
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--startup", action="store_true", help="Ray's start-up and shut-down, not its rate")
    parser.add_argument("--scans", action="store_true",
                        help="--docs sample letters (at most 24) as clean scans, read by OCR, instead of text letters")
    args = parser.parse_args()
    if args.startup:
        for i in range(args.rounds):
            (lf, lw), (rf, rw) = (startup(engine, args.docs, args.concurrency) for engine in ("local", "ray"))
            print(f"{args.docs} letters at 0 ms, concurrency {args.concurrency}, round {i + 1}: "
                  f"local first row {lf:5.2f} s, run {lw:5.2f} s; ray first row {rf:5.2f} s, run {rw:5.2f} s; "
                  f"ray's start-up {rf - lf:5.2f} s, start-up and shut-down {rw - lw:5.2f} s", flush=True)
        return
    for latency in args.latencies:
        for i in range(args.rounds):
            figures = {engine: measure(engine, latency, args.docs, args.concurrency, args.scans)
                       for engine in ("local", "ray")}
            (lw, ls, lc), (rw, rs, rc) = figures["local"], figures["ray"]
            what = "scanned letters" if args.scans else "letters"
            print(f"latency {latency * 1000:3.0f} ms, {args.docs} {what}, concurrency {args.concurrency}, "
                  f"round {i + 1}: "
                  f"local {lw:6.2f} documents/s (steady {ls:6.2f}, driver CPU {lc:5.2f} ms/document); "
                  f"ray {rw:6.2f} (steady {rs:6.2f}, driver CPU {rc:5.2f} ms/document); "
                  f"ray/local {rw / lw:.2f} (steady {rs / ls:.2f})", flush=True)


if __name__ == "__main__":
    main()
