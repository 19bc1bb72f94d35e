"""The OpenAI-compatible backend's own behaviour, through the real client stack and the fake server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel

from extractor.errors import ExtractionError
from extractor.llm.backends import open_backend
from extractor.llm.instructor_patch import remember_async_validator_checks
from extractor.llm.transport import CallMeter
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
