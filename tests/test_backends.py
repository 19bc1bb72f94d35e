"""The OpenAI-compatible backend's own behaviour, through the real client stack and the fake server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extractor.errors import ExtractionError
from extractor.llm.backends import open_backend
from extractor.llm.instructor_patch import remember_async_validator_checks
from extractor.llm.transport import CURRENT_METER, CallMeter
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import make_config


class Plain(BaseModel):
    name: str


def _with_async_validator() -> type[BaseModel]:
    from instructor.v2.validation.async_validators import async_field_validator

    class Inner(BaseModel):
        value: str

        @async_field_validator("value")
        async def check(cls, value: str) -> str:
            return value

    class Outer(BaseModel):  # the validator sits on a nested model: the check must look inside
        name: str
        inner: Inner

    return Outer


def test_instructor_layout_is_the_one_the_speedup_was_written_for() -> None:
    # If instructor moves reject_async_validators, this fails: the 30% client-CPU saving
    # (bench/throughput.py) would silently be gone.
    assert remember_async_validator_checks() is True
    from instructor.v2.core import patch
    from instructor.v2.validation import async_validators

    assert async_validators.reject_async_validators is patch.reject_async_validators
    assert async_validators.reject_async_validators.remembers_passed_models  # type: ignore[attr-defined]


def test_models_with_async_validators_are_still_rejected_every_time() -> None:
    remember_async_validator_checks()
    from instructor.v2.validation.async_validators import reject_async_validators

    bad = _with_async_validator()
    for _ in range(3):
        with pytest.raises(ValueError, match="async validators are not supported"):
            reject_async_validators(bad)
    reject_async_validators(Plain)
    reject_async_validators(Plain)  # remembered: passes again
    reject_async_validators(list[Plain])  # not a class: checked every time, still passes


def test_extraction_through_instructor_after_the_check_is_remembered(tmp_path: Path,
                                                                      fake_server: FakeOpenAI) -> None:
    config = make_config(tmp_path, fake_server)
    bad = _with_async_validator()
    messages = [{"role": "user", "content": 'Say [[answer:{"name": "Ada"}]]'}]

    async def main() -> None:
        async with open_backend(config) as backend:
            for _ in range(2):
                value = await backend.extract(messages, Plain, CallMeter())
                assert value.model_dump() == {"name": "Ada"}
            for _ in range(2):
                with pytest.raises(ExtractionError, match="async validators"):
                    await backend.extract(messages, bad, CallMeter())

    asyncio.run(main())


def test_the_embedded_server_is_ready_only_when_its_own_process_answers() -> None:
    # The port is free when chosen; another process can take it before llama.cpp binds it, and its
    # answer to /models must not pass for the embedded server's.
    import os
    import socket
    import sys

    from extractor.llm.embedded import _listens

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert _listens(os.getpid(), port) is True
        assert _listens(os.getpid(), port + 1) is False
        other = next(pid for pid in os.listdir("/proc") if pid.isdigit() and int(pid) != os.getpid())
        assert _listens(int(other), port) in (False, None)


def test_the_chat_request_transform_is_skipped_only_where_it_changes_nothing() -> None:
    # If openai moves its transform or gives a chat field an alias or a format, the patch must not install:
    # then this fails loudly, and the ~18% of client CPU per document it saves (bench/throughput.py) is gone.
    from extractor.llm.instructor_patch import skip_identity_transforms

    assert skip_identity_transforms() is True
    from openai import NOT_GIVEN
    from openai._utils import async_maybe_transform as original
    from openai.resources.chat.completions import completions
    from openai.types.chat import completion_create_params as params

    from extractor.llm.request import CallSettings, request_params

    assert completions.async_maybe_transform is not original
    body = {"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            "temperature": 0.0, "max_tokens": NOT_GIVEN, "n": 2,
            **request_params(Plain, CallSettings(model="m"), 0.0)}
    for kind in (params.CompletionCreateParamsNonStreaming, params.CompletionCreateParamsStreaming):
        fast = asyncio.run(completions.async_maybe_transform(body, kind))
        assert fast == asyncio.run(original(body, kind)) and "max_tokens" not in fast
    # What is not plain JSON still goes through the transform (a generator becomes a list).
    lazy = {"model": "m", "messages": (m for m in [{"role": "user", "content": "u"}])}
    out = asyncio.run(completions.async_maybe_transform(lazy, params.CompletionCreateParamsNonStreaming))
    assert out["messages"] == [{"role": "user", "content": "u"}]
    # Other requests are not touched.
    other = dict[str, int]
    assert asyncio.run(completions.async_maybe_transform({"a": 1}, other)) == asyncio.run(original({"a": 1}, other))


def test_instructor_keeps_no_token_totals_and_the_transport_still_meters_every_attempt(
        tmp_path: Path, fake_server: FakeOpenAI) -> None:
    # If instructor moves its usage accounting, the patch must not install: then this fails loudly, and the deep
    # copies it saves (63 us a call in timeit) are back.
    from instructor.v2.core import retry

    from extractor.llm.instructor_patch import skip_usage_totals

    config = make_config(tmp_path, fake_server)
    messages = [{"role": "user", "content": 'Say [[fault:invalid]] [[answer:{"name": "Ada"}]]'}]

    async def main() -> tuple[BaseModel, CallMeter]:
        async with open_backend(config) as backend:
            meter = CallMeter()
            return await backend.extract(messages, Plain, meter), meter

    fake_server.log.clear()
    value, meter = asyncio.run(main())
    assert skip_usage_totals(lambda: False) is True  # installed once, by the backend
    assert retry._initialize_usage.skips_usage_totals  # type: ignore[attr-defined]
    # Outside extractor's calls (no meter set) instructor keeps its totals, for anyone else using it in the process.
    from instructor import Provider

    assert retry._initialize_usage(Provider.OPENAI) is not None
    token = CURRENT_METER.set(CallMeter())
    try:
        assert retry._initialize_usage(Provider.OPENAI) is None
    finally:
        CURRENT_METER.reset(token)
    assert value.model_dump() == {"name": "Ada"}
    # One re-ask: both answers' tokens are counted, from the transport, exactly as the server billed them.
    assert [e["attempt"] for e in fake_server.log] == [1, 2]
    assert meter.requests == 2
    assert meter.prompt_tokens == sum(e["prompt_tokens"] for e in fake_server.log) > 0
    assert meter.completion_tokens == sum(e["completion_tokens"] for e in fake_server.log) > 0
    # What instructor attaches is the last answer as the server sent it, not a running total.
    raw = value._raw_response  # type: ignore[attr-defined]
    assert raw.usage.prompt_tokens == fake_server.log[-1]["prompt_tokens"]


def test_the_client_knows_its_platform_before_the_first_request(tmp_path: Path, fake_server: FakeOpenAI,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # openai looks its platform up in a thread on a client's first request, once for every request that starts
    # before the first lookup returns: a run's whole first wave left the event loop there (bench/throughput.py
    # --timeline). The backend looks it up once as it opens; if openai changes how it does, this fails loudly.
    from openai._utils import _sync

    trips: list[str] = []
    original = _sync.to_thread

    async def counted(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(func, "__name__", repr(func)))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(_sync, "to_thread", counted)
    config = make_config(tmp_path, fake_server)
    messages = [{"role": "user", "content": 'Say [[answer:{"name": "Ada"}]]'}]

    async def main() -> list[BaseModel]:
        async with open_backend(config) as backend:
            assert backend.client._platform is not None  # type: ignore[attr-defined]
            return await asyncio.gather(*(backend.extract(messages, Plain, CallMeter()) for _ in range(8)))

    assert [v.model_dump() for v in asyncio.run(main())] == [{"name": "Ada"}] * 8
    assert trips == []  # no request of the first wave took a thread trip


def test_a_cookie_an_answer_sets_is_still_sent_back() -> None:
    import httpx

    from extractor.llm.instructor_patch import cookies_only_when_set

    sent: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        headers = {"set-cookie": "lb=node-2; Path=/"} if len(sent) == 2 else {}
        return httpx.Response(200, json={"ok": True}, headers=headers)

    asked: list[int] = []

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://api.test") as client:
            assert cookies_only_when_set(client) is True
            jar = client.cookies.jar
            extract = jar.extract_cookies

            def counted(response: object, request: object) -> None:
                asked.append(1)
                extract(response, request)  # type: ignore[arg-type]

            jar.extract_cookies = counted  # type: ignore[method-assign]
            for _ in range(4):
                (await client.post("/v1/chat/completions", json={})).raise_for_status()

    asyncio.run(main())
    assert sent == [None, None, "lb=node-2", "lb=node-2"]  # set by the 2nd answer, sent with every later request
    assert len(asked) == 1  # only the answer that set it went through the jar
    other = type("Client", (), {"cookies": None, "_cookies": None})()
    assert cookies_only_when_set(other) is False  # a client laid out otherwise is left alone


def test_a_remembered_url_is_the_one_the_client_would_prepare() -> None:
    import openai

    from extractor.llm.instructor_patch import remember_prepared_urls

    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
    fresh = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
    assert remember_prepared_urls(client) is True
    assert remember_prepared_urls(client) is False  # installed once
    for path in ("/chat/completions", "chat/completions", "/embeddings", "https://other.test/v1/files?x=1"):
        first = client._prepare_url(path)
        assert str(first) == str(fresh._prepare_url(path))
        assert client._prepare_url(path) is first  # parsed once
    client.base_url = "http://127.0.0.1:9/v2/"  # a new base: prepared against it
    assert str(client._prepare_url("/chat/completions")) == "http://127.0.0.1:9/v2/chat/completions"
