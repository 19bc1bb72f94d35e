"""The one transport retry policy, applied to every HTTP request the openai client sends.

Why here and not around the instructor call: instructor wraps a 429/5xx in InstructorRetryException
after one attempt, and retrying the whole instructor call would also throw away its validation
re-asks. Retrying at the HTTP layer repeats exactly the request that failed, the openai client's own
retries are switched off (max_retries=0), and instructor keeps owning validation re-asks.

The same transport meters every response: usage reported by the server is added to the current
document's `CallMeter`, whatever happens next (re-ask, retry, final failure), so tokens reconcile.
"""

from __future__ import annotations

import contextvars
import email.utils
import errno
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    Future,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    wait_random_exponential,
)

from extractor.errors import ServerUnreachable
from extractor.llm.throttle import THROTTLE_STATUSES, AdaptiveLimit

log = logging.getLogger("extractor.llm.transport")

RETRY_STATUSES = frozenset({408, 409, 429})
RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass
class CallMeter:
    """What one document cost across every HTTP request made for it."""

    deadline: float = float("inf")  # time.monotonic() value after which no retry is started
    requests: int = 0
    transport_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    compute_s: float | None = None  # CPU seconds of a local model server, where one is measured
    throttled: int = 0  # answers that were the server pushing back (429, 503)
    timeouts: int = 0  # requests that got no answer within request_timeout_s
    lowest_width: int | None = None  # narrowest the adaptive in-flight limit had been, once it was cut

    def add_usage(self, usage: dict) -> None:
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        self.cached_tokens += int(details.get("cached_tokens") or 0)


CURRENT_METER: contextvars.ContextVar[CallMeter | None] = contextvars.ContextVar("meter", default=None)
# Called once a request's answer has been read off the wire (before the client parses it): a run that lets only
# `concurrency` documents ask at once frees the document's place here, so the next one is sent while this one's
# answer is validated and grounded (extraction.runner). The transport's own gate still caps the wire.
ANSWERED: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("answered", default=None)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


# POSTs the policy may send again after a failure whose outcome is unknown: chat completions (retrying
# them is the point of the policy) and file uploads (a duplicate costs nothing). Creating a batch is
# not one: a lost answer to a create that did happen would pay for the batch twice.
REPEATABLE_POSTS = ("/chat/completions", "/files")


def repeatable(request: httpx.Request) -> bool:
    return request.method != "POST" or request.url.path.endswith(REPEATABLE_POSTS)


def is_retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES or 500 <= status <= 599


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Server-requested wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable header: fall back to our own backoff
    return max(0.0, parsed.timestamp() - time.time())


# A connection that failed before the server said anything, by cause: (error_type, what it means).
CONNECT_FAILURES = {
    "refused": ("ConnectionRefused", "connection refused: nothing listens there; is the server running?"),
    "dns": ("DNSError", "the host name does not resolve; check the base URL's host"),
    "tls": ("TLSError", "the TLS handshake failed; check http:// vs https:// and the server's certificate"),
    "network": ("NetworkUnreachable", "no route to the host; check the network and the base URL"),
}


class Unreachable(httpx.ConnectError):
    """A connection that failed before any answer, with its cause (a key of CONNECT_FAILURES).

    Transient for the retry policy (an httpx.NetworkError); told apart from timeouts in rows: the
    aiohttp transport reports every failed connect as httpx.ConnectTimeout, whatever the cause."""

    def __init__(self, kind: str, endpoint: str, detail: str) -> None:
        self.kind = kind
        self.endpoint = endpoint
        self.error_type, advice = CONNECT_FAILURES[kind]
        super().__init__(f"cannot reach {endpoint}: {advice} ({detail})")


def connect_failure(exc: BaseException) -> str | None:
    """The cause of a failed connect (a key of CONNECT_FAILURES), or None: a timeout or anything else."""
    if not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return None
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return "refused"
        if isinstance(seen, socket.gaierror):
            return "dns"
        if isinstance(seen, ssl.SSLError):
            return "tls"
        if isinstance(seen, OSError) and seen.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network"
        seen = seen.__cause__ or seen.__context__
    return None


def endpoint_of(url: httpx.URL) -> str:
    """scheme://host:port of a URL: never its path or query, which could carry a key."""
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


class ConnectionWatch:
    """Connection failures in a row across every request of one run, whichever document sent them.

    A server that was never reached is given up after NEVER_REACHED failed connects in a row; one that
    answered before (it may be restarting or flapping) after AFTER_REACHED, with nothing answered in
    between. Then every request fails at once with ServerUnreachable, which stops the run.
    """

    NEVER_REACHED = 4
    AFTER_REACHED = 16

    def __init__(self) -> None:
        self.in_a_row = 0
        self.reached = False
        self.tripped: ServerUnreachable | None = None

    def answered(self) -> None:
        self.in_a_row = 0
        self.reached = True

    def failed(self, failure: Unreachable) -> None:
        self.in_a_row += 1
        limit = self.AFTER_REACHED if self.reached else self.NEVER_REACHED
        if self.tripped is None and self.in_a_row >= limit:
            self.tripped = ServerUnreachable(
                f"{failure} - {self.in_a_row} connection attempts in a row failed"
                + (" after the server had answered" if self.reached else " and none ever succeeded"),
                error_type=failure.error_type)

    def check(self) -> None:
        if self.tripped is not None:  # a fresh exception per request: they are raised concurrently
            raise ServerUnreachable(str(self.tripped), error_type=self.tripped.error_type)


class RetryingTransport(httpx.AsyncBaseTransport):
    """httpx transport: tenacity retries for transient failures, usage metering for every response."""

    def __init__(self, policy: RetryPolicy, inner: httpx.AsyncBaseTransport | None = None,
                 limit: AdaptiveLimit | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._limit = limit
        self.watch = ConnectionWatch()
        self._backoff = wait_random_exponential(multiplier=policy.backoff_initial_s,
                                                max=policy.backoff_max_s)
        self._retry = (retry_if_exception_type(RETRY_EXCEPTIONS)
                       | retry_if_result(lambda r: is_retryable_status(r.status_code)))

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            server_says = retry_after_seconds(outcome.result().headers)
            if server_says is not None:
                # Honoured as asked, not capped: the per-document deadline decides whether to wait at all.
                # A call outside any document (Batch API files and batches) has no deadline: capped there.
                return server_says if CURRENT_METER.get() is not None else min(server_says, self._policy.backoff_max_s)
        return self._backoff(state)

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self._policy.max_attempts:
            return True
        meter = CURRENT_METER.get()
        deadline = meter.deadline if meter else float("inf")
        return time.monotonic() + (state.upcoming_sleep or 0.0) >= deadline

    @staticmethod
    def _give_up(state: RetryCallState) -> httpx.Response:
        # The last response goes back to openai, which raises its typed error (RateLimitError, ...);
        # the last exception is re-raised and openai wraps it (APITimeoutError, APIConnectionError).
        assert state.outcome is not None
        return state.outcome.result()

    @staticmethod
    def _before_sleep(state: RetryCallState) -> None:
        meter = CURRENT_METER.get()
        if meter is not None:
            meter.transport_retries += 1
        outcome = state.outcome
        what = (f"HTTP {outcome.result().status_code}" if outcome and not outcome.failed
                else type(outcome.exception()).__name__ if outcome else "?")
        log.debug("transient %s, retry %d in %.2fs", what, state.attempt_number, state.upcoming_sleep)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not repeatable(request):
            return await self._send_once(request)
        # Most requests succeed at once; tenacity's per-call machinery (~7% of the client CPU per
        # document, py-spy) starts only after a transient failure, and is handed that first outcome
        # as its attempt 1, so backoff, stop rules and counts are exactly the policy's.
        try:
            response = await self._send_once(request)
        except RETRY_EXCEPTIONS as exc:
            first: Future = Future(1)
            first.set_exception(exc)
        else:
            if not is_retryable_status(response.status_code):
                return response
            first = Future(1)
            first.set_result(response)
        replay = [first]

        async def attempt(req: httpx.Request) -> httpx.Response:
            return replay.pop().result() if replay else await self._send_once(req)

        retrying = AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=self._retry,
            before_sleep=self._before_sleep,
            retry_error_callback=self._give_up,
        )
        return await retrying(attempt, request)

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        self.watch.check()
        meter = CURRENT_METER.get()
        limit = self._limit
        sent_at = await limit.acquire() if limit is not None else None
        status: int | None = None
        try:
            if meter is not None:
                meter.requests += 1
            try:
                response = await self._inner.handle_async_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if (kind := connect_failure(exc)) is None:
                    if meter is not None and isinstance(exc, httpx.TimeoutException):
                        meter.timeouts += 1
                    raise
                failure = Unreachable(kind, endpoint_of(request.url), str(exc.__cause__ or exc))
                self.watch.failed(failure)
                raise failure from exc
            except httpx.TimeoutException:
                if meter is not None:
                    meter.timeouts += 1
                raise
            self.watch.answered()
            status = response.status_code
            if "text/event-stream" in response.headers.get("content-type", ""):
                return response  # streams are metered by whoever reads them
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            if (answered := ANSWERED.get()) is not None:
                answered()
        finally:
            if limit is not None:
                limit.release(sent_at, status)
                if meter is not None and limit.cuts:
                    meter.lowest_width = limit.lowest
        if meter is not None and status in THROTTLE_STATUSES:
            meter.throttled += 1
        if meter is not None and (usage := _usage_of(body)):
            meter.add_usage(usage)
        headers = [(k, v) for k, v in response.headers.items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=body,
                              request=request, extensions=response.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _usage_of(body: bytes) -> dict | None:
    if not body or b'"usage"' not in body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    usage = data.get("usage") if isinstance(data, dict) else None
    return usage if isinstance(usage, dict) else None
