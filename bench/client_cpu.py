"""What client CPU per request costs at 32 requests in flight (not a test: prints measured figures).

bench/throughput.py's bare aiohttp client, with a fixed CPU time burnt per request (half before
sending, half after the answer, as extractor's client stack spends it), against the fake server at
200 ms latency. The ratio to the ideal 32 / 0.2 s shows why throughput.py's ratio follows
extractor's client CPU per document (which it prints), and what each millisecond of it costs.

    python bench/client_cpu.py [--docs 480] [--burn-ms 0 1 2 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import CONCURRENCY, measure_raw

LATENCY = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=480)
    parser.add_argument("--burn-ms", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    args = parser.parse_args()
    ideal = CONCURRENCY / LATENCY
    for ms in args.burn_ms:
        rate, _ = measure_raw(LATENCY, args.docs, burn_ms=ms)
        print(f"client CPU {ms:4.1f} ms/request: {rate:6.1f} documents/s, ratio {rate / ideal:.3f}")


if __name__ == "__main__":
    main()
