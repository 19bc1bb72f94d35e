"""The retry policy's reading of server back-off headers."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from extractor.llm.transport import is_retryable_status, retry_after_seconds


def test_retry_after_forms() -> None:
    assert retry_after_seconds(httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_after_seconds(httpx.Headers({"retry-after": future})) == pytest.approx(30, abs=2)
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after_seconds(httpx.Headers({"retry-after": past})) == 0.0
    assert retry_after_seconds(httpx.Headers({})) is None


def test_garbage_retry_after_falls_back_to_backoff() -> None:
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None


@pytest.mark.parametrize(("status", "retry"), [(408, True), (409, True), (429, True), (500, True), (503, True),
                                                (400, False), (401, False), (403, False), (404, False), (422, False)])
def test_which_statuses_are_transient(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry


def test_only_requests_safe_to_repeat_are_retried() -> None:
    from extractor.llm.transport import repeatable

    def request(method: str, path: str) -> httpx.Request:
        return httpx.Request(method, "https://api.example" + path)

    assert repeatable(request("POST", "/v1/chat/completions"))
    assert repeatable(request("POST", "/v1/files")) and repeatable(request("GET", "/v1/batches/b1"))
    assert not repeatable(request("POST", "/v1/batches")), "a repeated create could pay for a batch twice"
