"""Model backends behind one async method, `extract`, registered in one place.

A backend turns chat messages plus a pydantic model into a validated instance, or raises
`ExtractionError` (this document failed) or `AuthError` (stop the run). Heavy imports (openai,
instructor, llama.cpp) happen only when a backend is opened, so the CLI starts fast.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from extractor.config import RunConfig
from extractor.errors import (
    AuthError,
    BatchNotCreated,
    ConfigError,
    ContextExceeded,
    ExtractionError,
    ModelUnavailable,
    RunStop,
    ServerUnreachable,
)
from extractor.llm.batchapi import ENDPOINT, FINISHED, METADATA_KEY, BatchAPI, BatchState
from extractor.llm.request import CallSettings, Reply, parse_choice, request_params, token_logprobs, wrapped
from extractor.llm.throttle import AdaptiveLimit
from extractor.llm.transport import CURRENT_METER, CallMeter, RetryingTransport, RetryPolicy, Unreachable

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("extractor.llm.backends")


class Backend(Protocol):
    """What the runner needs from a model: one answer per document, K answers for self-consistency, and
    the provider's Batch API where it has one."""

    async def extract(self, messages: list[dict[str, str]], response_model: type[BaseModel],
                      meter: CallMeter) -> BaseModel: ...

    async def sample(self, messages: list[dict[str, str]], response_model: type[BaseModel], meter: CallMeter,
                     k: int, temperature: float) -> list[BaseModel | None]: ...

    def batch_api(self, temperature: float) -> BatchAPI | None:
        """The provider's Batch API, or None where the backend has none."""
        ...

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int,
                            meter: CallMeter, temperature: float | None = None) -> str:
        """One short answer constrained to a JSON schema (the field-by-field strategy's questions); `temperature`
        overrides the run's (self-consistency samples)."""
        ...

    async def embed(self, texts: list[str], model: str, meter: CallMeter) -> list[list[float]]:
        """One vector per text from the server's embeddings endpoint (`retrieval = "embeddings"`)."""
        ...


# name -> "module:factory"; a factory takes a RunConfig and returns an async context manager.
REGISTRY: dict[str, str] = {
    "openai": "extractor.llm.backends:open_openai_backend",
    "embedded": "extractor.llm.embedded:open_embedded_backend",
}


def open_backend(config: RunConfig) -> contextlib.AbstractAsyncContextManager[Backend]:
    name = config.resolved_backend
    target = REGISTRY.get(name)
    if target is None:
        raise ConfigError(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}")
    module_name, _, attr = target.partition(":")
    factory: Callable[[RunConfig], contextlib.AbstractAsyncContextManager[Backend]] = getattr(
        importlib.import_module(module_name), attr)
    return factory(config)


_SECRET_LIKE = re.compile(r"\b(sk|pk|rk|key)-[A-Za-z0-9_\-*]{6,}")


def redact(text: str, secret: str | None) -> str:
    """Remove the configured key (and anything shaped like one) from text that may be stored."""
    if secret:
        text = text.replace(secret, "***")
    return _SECRET_LIKE.sub("***", text)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, as httpx would make it (certifi, or SSL_CERT_FILE/SSL_CERT_DIR):
    loading the CA bundle takes tens of milliseconds, which every backend (each run, each experiment
    variant, each test) paid again."""
    import httpx

    return httpx.create_ssl_context(trust_env=True)


class OpenAICompatibleBackend:
    """instructor over openai.AsyncOpenAI, with the project's one retry policy in the HTTP transport."""

    def __init__(self, *, base_url: str | None, api_key: str | None, settings: CallSettings,
                 policy: RetryPolicy, max_connections: int, adapt: bool = True,
                 schema_format: str = "json_schema") -> None:
        import httpx
        import instructor
        import openai

        logging.getLogger("instructor").setLevel(logging.CRITICAL)  # it logs every failure to stderr
        from extractor.llm.instructor_patch import (
            cookies_only_when_set,
            remember_async_validator_checks,
            remember_prepared_urls,
            skip_identity_transforms,
            skip_usage_totals,
        )

        remember_async_validator_checks()
        skip_identity_transforms()
        skip_usage_totals(lambda: CURRENT_METER.get() is not None)  # inside this backend's calls only
        self._settings = settings
        self._secret = api_key
        # How a constrained answer is asked for: OpenAI's json_schema, or llama.cpp's json_object + schema.
        self._schema_format = schema_format
        from httpx_aiohttp import AiohttpTransport

        # aiohttp's connection pool: httpcore's scans every pooled connection (a syscall each) per
        # request, which cost ~6 ms per document at 32 connections (measured, bench/throughput.py).
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        transport = RetryingTransport(policy, AiohttpTransport(limits=limits, trust_env=True, verify=_tls_context()),
                                      limit=AdaptiveLimit(max_connections) if adapt else None)
        self._http = httpx.AsyncClient(transport=transport, timeout=settings.request_timeout_s)
        cookies_only_when_set(self._http)
        self._openai = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "no-key", max_retries=0,
            # openai 3 annotates http_client with httpx2's class; it drives an httpx client the same way
            # (every fake-server test goes through this one, with its retrying, metering transport).
            timeout=settings.request_timeout_s, http_client=self._http)  # type: ignore[arg-type]
        remember_prepared_urls(self._openai)
        self._client = instructor.from_openai(self._openai, mode=getattr(instructor.Mode, settings.mode.upper()))
        self._honours_n = True  # until a server answers n=K with fewer choices

    async def warm(self) -> None:
        """What the client would otherwise look up on its first requests, looked up once before any is sent."""
        from extractor.llm.instructor_patch import know_the_platform

        await know_the_platform(self._openai)

    async def extract(self, messages: list[dict[str, str]], response_model: type[BaseModel],
                      meter: CallMeter) -> BaseModel:
        s = self._settings
        kwargs: dict[str, Any] = {"temperature": s.temperature}
        if s.max_tokens is not None:
            kwargs["max_tokens"] = s.max_tokens
        if s.extra_body:
            kwargs["extra_body"] = dict(s.extra_body)
        token = CURRENT_METER.set(meter)
        try:
            return await self._client.chat.completions.create(
                model=s.model, messages=messages,  # type: ignore[arg-type]  # plain role/content dicts
                response_model=wrapped(response_model),
                max_retries=s.max_reasks, **kwargs)
        except Exception as exc:
            raise self._classify(exc) from exc
        finally:
            CURRENT_METER.reset(token)

    async def sample(self, messages: list[dict[str, str]], response_model: type[BaseModel], meter: CallMeter,
                     k: int, temperature: float) -> list[BaseModel | None]:
        """K independent answers (None where one fails validation), for self-consistency.

        One request with n=K where the server honours it (the prompt is billed once); servers that
        ignore n (llama.cpp) get the remaining answers as separate requests. No re-asks: a sample
        that breaks the schema counts as a disagreeing sample.
        """
        s = self._settings
        kwargs = self.request_params(response_model, temperature)
        answers: list[BaseModel | None] = []
        token = CURRENT_METER.set(meter)
        try:
            while len(answers) < k:
                wanted = k - len(answers)
                completion = await self._openai.chat.completions.create(
                    model=s.model, messages=messages, n=wanted if self._honours_n else 1, **kwargs)  # type: ignore[arg-type]
                if wanted > 1 and self._honours_n and len(completion.choices) < wanted:
                    self._honours_n = False
                # An answer without choices counts as one disagreeing sample: asking again would loop, paid.
                answers.extend([parse_choice(response_model, c) for c in completion.choices[:wanted]] or [None])
        except Exception as exc:
            raise self._classify(exc) from exc
        finally:
            CURRENT_METER.reset(token)
        return answers

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int,
                            meter: CallMeter, temperature: float | None = None) -> str:
        """One answer constrained to `schema`, metered into `meter`; its text ("" when there is none)."""
        s = self._settings
        if self._schema_format == "json_object":  # llama-cpp-python turns the schema into a grammar
            response_format: dict[str, Any] = {"type": "json_object", "schema": schema}
        else:
            response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        kwargs: dict[str, Any] = {"temperature": s.temperature if temperature is None else temperature,
                                  "max_tokens": max_tokens, "response_format": response_format}
        if s.extra_body:
            kwargs["extra_body"] = dict(s.extra_body)
        if s.logprobs:  # the answer's token probabilities: a confidence signal (evidence.answer_probabilities)
            # llama-cpp-python's server answers them only with top_logprobs too (logprobs alone: none, measured on
            # the embedded SmolLM2: '{ "company": "Acme Robotics" }' came back with its 10 tokens, "Acme Robotics"
            # at 0.81, the grammar's "{" at exp(-7): the model's raw distribution, so only a value's tokens count).
            kwargs.update(logprobs=True, top_logprobs=1)
        token = CURRENT_METER.set(meter)
        try:
            completion = await self._openai.chat.completions.create(
                model=s.model, messages=messages, **kwargs)  # type: ignore[arg-type]  # plain role/content dicts
        except Exception as exc:
            raise self._classify(exc) from exc
        finally:
            CURRENT_METER.reset(token)
        if not completion.choices:
            return Reply("")
        choice = completion.choices[0]
        return Reply(choice.message.content or "", token_logprobs(choice) if s.logprobs else ())

    async def embed(self, texts: list[str], model: str, meter: CallMeter) -> list[list[float]]:
        """One vector per text, in order, from `embeddings.create` through the same client and retry policy."""
        token = CURRENT_METER.set(meter)
        try:
            response = await self._openai.embeddings.create(model=model, input=texts)
        except Exception as exc:
            raise self._classify(exc) from exc
        finally:
            CURRENT_METER.reset(token)
        vectors = [list(item.embedding) for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts):
            raise _extraction_error("EmbeddingError", f"the embeddings endpoint answered {len(vectors)} vector(s) "
                                                      f"for {len(texts)} text(s)")
        return vectors

    def request_params(self, response_model: type[BaseModel], temperature: float) -> dict[str, Any]:
        """This backend's `request.request_params`: where a request is built without instructor (n=K samples,
        Batch API lines)."""
        return request_params(response_model, self._settings, temperature)

    def batch_api(self, temperature: float) -> BatchAPI | None:
        return OpenAIBatchAPI(self, temperature)

    @property
    def client(self) -> Any:
        """The openai.AsyncOpenAI client, with the project's retrying, metering transport."""
        return self._openai

    @property
    def settings(self) -> CallSettings:
        return self._settings

    def classify(self, exc: BaseException) -> Exception:
        """ExtractionError, or a RunStop (AuthError, ServerUnreachable), for an exception raised by the openai
        client."""
        return self._classify(exc)

    def _classify(self, exc: BaseException) -> Exception:
        import openai
        from instructor.core import InstructorRetryException

        chain: list[BaseException] = []
        seen: BaseException | None = exc
        while seen is not None and seen not in chain:
            chain.append(seen)
            seen = seen.__cause__ or seen.__context__
        for err in chain:  # the causes that stop the run or say where the connection failed come first
            if isinstance(err, ServerUnreachable):
                return ServerUnreachable(redact(str(err), self._secret), error_type=err.error_type)
            if isinstance(err, Unreachable):
                return _extraction_error(err.error_type, redact(str(err), self._secret))
        for err in chain:
            if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
                return AuthError(redact(
                    f"the server refused the credentials (HTTP {err.status_code}): {_short(err)}; "
                    "check OPENAI_API_KEY / api_key and the base URL", self._secret))
            if isinstance(err, openai.NotFoundError) and _names_a_model(err):
                return ModelUnavailable(redact(
                    f"the server has no model {self._settings.model!r} (HTTP 404: {_short(err)}); check --model "
                    "against the models the server lists (GET /v1/models) and the base URL", self._secret))
            if isinstance(err, openai.APIStatusError) and err.status_code in (400, 413) and _over_context(err):
                return ContextExceeded(redact(
                    f"HTTP {err.status_code}: {_short(err)}; the request is longer than the model's context: "
                    "set context_tokens to the server's real context window", self._secret))
            if isinstance(err, openai.APIStatusError) and err.status_code in (400, 415, 422) and _no_images(err):
                return _extraction_error("ImagesRefused", redact(
                    f"HTTP {err.status_code}: {_short(err)}; the model reads no images, and the setting pages "
                    "(images or both) sent page images: set pages = text (or vision = false, so that a run refuses "
                    "it before sending)", self._secret))
            if isinstance(err, openai.APIStatusError):
                return _extraction_error(type(err).__name__, redact(
                    f"HTTP {err.status_code}: {_short(err)}; {_status_advice(err.status_code)}", self._secret))
            if isinstance(err, openai.APITimeoutError):
                return _extraction_error("APITimeoutError", (
                    f"no answer within request_timeout_s = {self._settings.request_timeout_s:g}s, and the retry "
                    "policy gave up: the server is slow or overloaded; raise request_timeout_s in the config "
                    f"file or lower --concurrency; {AGAIN}"))
            if isinstance(err, openai.APIConnectionError):
                cause = err.__cause__
                detail = f"{type(cause).__name__}: {cause}" if cause else str(err)
                return _extraction_error("APIConnectionError",
                                         redact(f"cannot reach the server: {detail}", self._secret))
        if isinstance(exc, InstructorRetryException):
            attempts = getattr(exc, "n_attempts", None)
            failed = getattr(exc, "failed_attempts", None) or []
            last = failed[-1].exception if failed else exc
            return _extraction_error(
                "ValidationError",
                redact(f"the model's answer failed schema validation after {attempts} attempt(s): "
                       f"{_validation_summary(last)}; a stronger model or clearer field descriptions in the "
                       f"schema help; {AGAIN}", self._secret))
        return _extraction_error(type(exc).__name__, redact(_short(exc), self._secret))

    async def aclose(self) -> None:
        await self._openai.close()
        await self._http.aclose()


class OpenAIBatchAPI:
    """The Batch API of an OpenAI-compatible server, through the backend's client and transport."""

    def __init__(self, backend: OpenAICompatibleBackend, temperature: float) -> None:
        self._backend = backend
        self._temperature = temperature

    def request_line(self, custom_id: str, messages: list[dict[str, str]],
                     response_model: type[BaseModel]) -> dict[str, Any]:
        params = self._backend.request_params(response_model, self._temperature)
        extra_body = params.pop("extra_body", {})
        body = {"model": self._backend.settings.model, "messages": messages, **params, **extra_body}
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}

    async def create(self, submission_id: str, lines: list[dict[str, Any]]) -> str:
        import openai

        payload = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        client = self._backend.client
        try:
            uploaded = await client.files.create(file=(f"extractor-{submission_id}.jsonl", payload),
                                                 purpose="batch")
        except Exception as exc:  # no batch without its input file: certainly not created
            raise self._not_created(exc, "the upload of the batch's input file") from exc
        try:
            batch = await client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                                completion_window="24h", metadata={METADATA_KEY: submission_id})
        except openai.APIStatusError as exc:
            if exc.status_code < 500:  # the provider answered that it refused: certainly not created
                raise self._not_created(exc, "the batch create") from exc
            raise self._backend.classify(exc) from exc  # outcome unknown: the next run looks for it
        except Exception as exc:
            raise self._backend.classify(exc) from exc
        return str(batch.id)

    def _not_created(self, exc: Exception, what: str) -> Exception:
        import openai

        error = self._backend.classify(exc)
        if isinstance(error, RunStop):
            return error
        hint = ("the server has no Batch API: run without --batch"
                if isinstance(exc, openai.APIStatusError) and exc.status_code in (404, 405) else
                "the documents are submitted again by the next run")
        return BatchNotCreated(f"{what} failed, so no batch was created ({error}); {hint}",
                               error_type=getattr(error, "error_type", "BatchError"))

    async def find(self, submission_id: str) -> str | None:
        try:
            async for batch in self._backend.client.batches.list(limit=100):
                if (batch.metadata or {}).get(METADATA_KEY) == submission_id:
                    return str(batch.id)
        except Exception as exc:
            raise self._backend.classify(exc) from exc
        return None

    async def poll(self, batch_id: str) -> BatchState:
        client = self._backend.client
        try:
            batch = await client.batches.retrieve(batch_id)
            if batch.status not in FINISHED:
                return BatchState(batch.status)
            answers: list[dict[str, Any]] = []
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    content = await client.files.content(file_id)
                    answers.extend(json.loads(line) for line in content.text.splitlines() if line.strip())
        except Exception as exc:
            raise self._backend.classify(exc) from exc
        return BatchState(batch.status, answers)

    def parse(self, response_model: type[BaseModel], body: dict[str, Any]) -> BaseModel | None:
        from openai.types.chat import ChatCompletion

        completion = ChatCompletion.model_validate(body)
        return parse_choice(response_model, completion.choices[0]) if completion.choices else None


AGAIN = "the next run tries this document again"


def _names_a_model(err: BaseException) -> bool:
    """A 404 about the model rather than the path: OpenAI's `model_not_found`, vLLM's "The model `x` does not
    exist", Ollama's "model 'x' not found"."""
    code = getattr(err, "code", None)
    text = str(err).lower()
    return code == "model_not_found" or ("model" in text and ("not exist" in text or "not found" in text))


# How servers word a prompt longer than the context: OpenAI (`context_length_exceeded`, "maximum context length"),
# vLLM ("maximum context length is 4096 tokens"), llama.cpp's server ("exceeds the available context size"),
# llama-cpp-python ("Requested tokens (9000) exceed context window of 8192"), Ollama ("input length exceeds the
# context length"), others ("prompt is too long", "too many tokens").
_OVER_CONTEXT = re.compile(
    r"context_length_exceeded|maximum context length|exceeds? (?:the )?(?:available )?context (?:size|window|length)"
    r"|exceed context window|prompt is too long|too many (?:input )?tokens|context length exceeded", re.IGNORECASE)


# How servers refuse image content parts sent to a text-only model: OpenAI ("image_url is only supported by certain
# models"), vLLM ("... is not a multimodal model"), llama.cpp's server ("image input is not supported"), others
# ("does not support image input", "vision is not supported").
_NO_IMAGES = re.compile(
    r"image(?:_url| input| content)?s? (?:is |are )?(?:only supported|not supported|unsupported)"
    r"|not a multimodal model|does not support (?:image|vision)|vision is not supported", re.IGNORECASE)


def _no_images(err: BaseException) -> bool:
    """A refusal because the model reads no images (see `_NO_IMAGES`)."""
    return bool(_NO_IMAGES.search(str(err)))


def _over_context(err: BaseException) -> bool:
    """A refusal because the request does not fit the model's context (see `_OVER_CONTEXT`)."""
    return getattr(err, "code", None) == "context_length_exceeded" or bool(_OVER_CONTEXT.search(str(err)))


def _status_advice(status: int) -> str:
    """What a person can do about an HTTP error that the retry policy could not get past."""
    if status == 429:
        return f"the rate limit held through every attempt: lower --concurrency or raise max_attempts; {AGAIN}"
    if status >= 500 or status in (408, 409):
        return f"the server kept failing through every attempt (max_attempts): check its health; {AGAIN}"
    if status in (404, 405):
        return "the server has no such endpoint or model: check the base URL and the model name"
    return "the server refused the request: check the model name, the mode (--mode) and the document's length"


def _short(exc: BaseException, limit: int = 300) -> str:
    return _text(str(exc), limit)


def _text(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation_summary(exc: BaseException) -> str:
    """'field: problem; field: problem' for pydantic errors, a short text for anything else."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:8]]
        return _text("; ".join(parts), 600)
    return _short(exc, 600)


def _extraction_error(error_type: str, message: str) -> ExtractionError:
    return ExtractionError(message, error_type=error_type)


def call_settings(config: RunConfig, **overrides: Any) -> CallSettings:
    values: dict[str, Any] = dict(
        model=config.resolved_model, mode=config.mode, temperature=config.temperature,
        max_tokens=config.max_tokens, max_reasks=config.max_reasks,
        request_timeout_s=config.request_timeout_s, logprobs=config.logprobs)
    values.update(overrides)
    return CallSettings(**values)


def retry_policy(config: RunConfig) -> RetryPolicy:
    return RetryPolicy(max_attempts=config.max_attempts, backoff_initial_s=config.backoff_initial_s,
                       backoff_max_s=config.backoff_max_s)


@contextlib.asynccontextmanager
async def open_openai_backend(config: RunConfig) -> AsyncIterator[OpenAICompatibleBackend]:
    backend = OpenAICompatibleBackend(
        base_url=config.base_url, api_key=config.api_key, settings=call_settings(config),
        policy=retry_policy(config), max_connections=config.resolved_concurrency,
        adapt=config.adapt_concurrency)
    try:
        await backend.warm()
        yield backend
    finally:
        await backend.aclose()
