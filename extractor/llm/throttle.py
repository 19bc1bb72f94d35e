"""How many requests may be in flight: the configured concurrency, until the server pushes back.

A provider's rate limit answers 429 (or 503 when overloaded) to whatever exceeds it. Retrying each
request on its own, even honouring Retry-After, keeps every worker hammering the limit: measured
against the fake server limited to 4 requests in flight, 16 workers drew ~150 429s for 48 documents
and 20 of them ran out of attempts. So the transport also adapts how many requests it lets out,
additive-increase / multiplicative-decrease as TCP does: a push-back halves the limit, each success
adds 1/limit (about +1 per round trip), never above the configured concurrency nor below 1.
"""

from __future__ import annotations

import asyncio
import collections
import time

THROTTLE_STATUSES = frozenset({429, 503})


class AdaptiveLimit:
    """An asyncio gate whose width follows the server's push-back. One per HTTP client (one event loop)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(self.ceiling)
        self.in_flight = 0
        self.lowest = self.ceiling  # narrowest the gate has been
        self.cuts = 0
        self._last_cut = float("-inf")
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def width(self) -> int:
        return max(1, int(self.limit))

    async def acquire(self) -> float:
        """Wait for a free place; returns when the request goes out (time.monotonic())."""
        if self.in_flight < self.width and not self._waiters:
            self.in_flight += 1  # the common case takes no await at all
            return time.monotonic()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(None)  # the place was granted just as we were cancelled: hand it on
            else:
                self._waiters.remove(waiter)
            raise
        return time.monotonic()

    def release(self, sent_at: float | None, status: int | None = None) -> None:
        """Give the place back and learn from the answer: a push-back narrows, a success widens."""
        self.in_flight -= 1
        if status in THROTTLE_STATUSES and sent_at is not None:
            # Answers to requests sent before the last cut describe the old width: one cut per round.
            if sent_at > self._last_cut:
                self.limit = max(1.0, self.limit / 2)
                self._last_cut = time.monotonic()
                self.cuts += 1
                self.lowest = min(self.lowest, self.width)
        elif status is not None and 200 <= status < 300:
            self.limit = min(float(self.ceiling), self.limit + 1 / self.limit)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.width:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
