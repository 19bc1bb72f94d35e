"""The shape of one extraction request, where it is built without instructor, and of its answer.

instructor builds the request of a plain extraction (and re-asks when the answer fails validation). Three
things build the same request themselves, from here, so that they cannot drift from it or from each other:

- the n=K samples of self-consistency and the Batch API's lines (`request_params`, answers read back by
  `parse_choice`), in `llm.backends`;
- the fine-tuning export (`ladder.finetune`), whose every example carries the tool the backend sends
  (`tool`) and the answer as the forced call of it that `parse_choice` reads (`tool_call`): a fine-tuned
  model is trained on exactly the request it will be sent.

The tool is the schema's model as instructor's TOOLS mode describes it (name, description, parameters).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class CallSettings:
    """Request settings of an OpenAI-compatible call; part of what makes a stored result reusable."""

    model: str
    mode: str = "tools"
    temperature: float = 0.0
    max_tokens: int | None = None
    max_reasks: int = 2
    request_timeout_s: float = 60.0
    extra_body: tuple[tuple[str, Any], ...] = ()
    logprobs: bool = False  # the field strategy's questions ask for the answer's token log probabilities


class Reply(str):
    """A constrained answer's text, and the log probability of each of its tokens where the server gave them
    (`logprobs`; OpenAI and llama.cpp's server answer them when asked): `tokens` is ((token, logprob), ...) in
    order, empty where none came back. A str, so a caller that wants only the text reads it as before."""

    tokens: tuple[tuple[str, float], ...]

    def __new__(cls, text: str, tokens: tuple[tuple[str, float], ...] = ()) -> Reply:
        reply = super().__new__(cls, text)
        reply.tokens = tokens
        return reply


def token_logprobs(choice: Any) -> tuple[tuple[str, float], ...]:
    """((token, logprob), ...) of an openai chat completion choice; () where it has none."""
    content = getattr(getattr(choice, "logprobs", None), "content", None) or ()
    out: list[tuple[str, float]] = []
    for item in content:
        token, logprob = getattr(item, "token", None), getattr(item, "logprob", None)
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            return ()  # a partial list cannot be aligned with the text
        out.append((token, float(logprob)))
    return tuple(out)


@functools.cache
def wrapped(model: type[BaseModel]) -> type[BaseModel]:
    """The model as instructor wraps it, once: instructor re-wraps a plain model (create_model + JSON schema,
    ~4 ms) on every call; a pre-wrapped one is used as is and its tool schema is cached. Measured: 2x throughput."""
    import instructor

    return instructor.openai_schema(model)


def _function(model: type[BaseModel]) -> dict[str, Any]:
    """The tool's function (name, description, parameters); shared, not to be changed."""
    spec: dict[str, Any] = wrapped(model).openai_schema  # type: ignore[attr-defined]  # set by the wrap
    return spec


def tool(model: type[BaseModel]) -> dict[str, Any]:
    """The `tools` entry a request for `model` carries (a copy of its own: the caller may change it)."""
    return {"type": "function", "function": copy.deepcopy(_function(model))}


def tool_call(model: type[BaseModel], call_id: str, arguments: str) -> dict[str, Any]:
    """The answer `arguments` (JSON of the model's fields) as the forced call of the tool, as a server answers."""
    return {"id": call_id, "type": "function", "function": {"name": _function(model)["name"], "arguments": arguments}}


def request_params(model: type[BaseModel], settings: CallSettings, temperature: float) -> dict[str, Any]:
    """Chat-completion parameters (beyond model and messages) that make the server answer in the schema's shape,
    as instructor's TOOLS (or JSON_SCHEMA) mode does; answers are read by `parse_choice`."""
    function = _function(model)
    params: dict[str, Any] = {"temperature": temperature}
    if settings.max_tokens is not None:
        params["max_tokens"] = settings.max_tokens
    if settings.extra_body:
        params["extra_body"] = dict(settings.extra_body)
    if settings.mode == "json_schema":
        params["response_format"] = {"type": "json_schema", "json_schema": {
            "name": function["name"], "schema": function["parameters"]}}
    else:  # tools (and the JSON modes, which every tool-calling server also accepts this way)
        params["tools"] = [{"type": "function", "function": function}]
        params["tool_choice"] = {"type": "function", "function": {"name": function["name"]}}
    return params


def parse_choice(model: type[BaseModel], choice: Any) -> BaseModel | None:
    """The validated answer of one choice (a tool call's arguments, or the content), None where it is not one."""
    message = choice.message
    calls = getattr(message, "tool_calls", None) or []
    text = calls[0].function.arguments if calls else (message.content or "")
    if not calls and text.strip().startswith("```"):  # md_json answers
        text = text.strip().strip("`").removeprefix("json")
    try:
        return model.model_validate_json(text)
    except ValueError:  # pydantic's ValidationError is a ValueError; so is malformed JSON
        return None
