"""A local OpenAI-compatible chat server that answers with schema-valid JSON and injects faults.

For tests and benchmarks: it speaks real HTTP on a loopback port, so the whole client stack
(openai, instructor, the retry transport) is exercised. Faults are asked for by the document itself,
which makes them deterministic per document under any concurrency:

    [[fault:429*2]]     the first 2 requests for this document get 429 with Retry-After
    [[fault:500]]       one 500; also 502/503/504/408/409/400/401/403/404
    [[fault:slow*1]]    the first request answers after `slow_s` seconds (beyond a short client timeout)
    [[fault:badjson]]   tool-call arguments that are not JSON (the model's fault: re-asked)
    [[fault:invalid]]   JSON that breaks the schema (re-asked)
    [[answer:{...}]]    values to put into the answer (merged over the generated defaults); or, without a
                        directive in the text, `answers={key: values}` for documents that contain `key`
                        (`model_answers={model: {key: values}}`: the same for one model, applied last)
    [[vary:field=a|b|c]] the k-th answer for this document sets field to the k-th option (cycling),
                        for self-consistency tests; `n` choices per request are honoured
    [[invalid-every-4th]] every 4th answer breaks the schema

Several fault directives are consumed in order. `fail_rate` adds random transient 429/500/503s.
`context_tokens=4096`: a request whose prompt (and `max_tokens`) is longer gets HTTP 400
`context_length_exceeded`, as OpenAI answers. `anchored={text: values}`: an oracle that answers a request only
with what its document contains: the values of every anchor text found in it (as whole words, whitespace- and
case-blind),
merged (lists joined, first scalar wins); a field no anchor in it answers is left at its generated default.
Image content parts (`{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}`) are checked as
OpenAI checks them (an inline data URL of a PNG, JPEG, WebP or GIF whose bytes are that format; nothing is
fetched) and billed by OpenAI's gpt-4o tile rule (85 tokens, plus 170 a 512 px tile with detail high, after
scaling to fit 2048 px and 768 px on the short side). `vision=False` refuses them with OpenAI's 400 for a
text-only model. `pictures={text: image bytes}`: what the server "sees" in an image: a received image that looks
like one of these (a 32 x 32 grey thumbnail within a few levels: the same page scaled down and recompressed, not
another page nor the page turned) reads as its text, which the oracles (`answers`, `anchored`) then match as if it
were in the document's text.
`logprobs: true` in a request: each choice with content carries token log probabilities (`_logprobs`: low for an
injected wrong span). Every request is logged with the usage it reported (GET /_log), so tests can reconcile tokens.
POST /v1/embeddings answers hashed word-count vectors (logged with `embeddings: true`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import threading
import time
from typing import Any

_FAULT = re.compile(r"\[\[fault:([a-z0-9]+)(?:\*(\d+))?\]\]")
_ANSWER = re.compile(r"\[\[answer:(\{.*?\})\]\]", re.DOTALL)
_VARY = re.compile(r"\[\[vary:(\w+)=(.*?)\]\](?!\])")  # options may be JSON lists: ["a","b"]|["a"]
_INVALID_SAMPLE = re.compile(r"\[\[invalid-every-4th\]\]")
EMBEDDING_DIMENSIONS = 256
_STATUS_FAULTS = {"400", "401", "403", "404", "408", "409", "429", "500", "502", "503", "504"}


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root.get("$defs", root.get("definitions", {}))[name]
    return schema


def _allows_null(schema: dict, root: dict) -> bool:
    schema = _resolve(schema, root)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return any(_resolve(o, root).get("type") in ("null", ["null"]) or "null" in (o.get("type") or [])
               for o in options)


def sample_value(schema: dict, root: dict, name: str = "") -> Any:
    """A small value that satisfies `schema` (required properties only; optional ones are null)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema or "oneOf" in schema:
        options: list[Any] = schema.get("anyOf") or schema.get("oneOf") or []
        non_null = [o for o in options if _resolve(o, root).get("type") != "null"]
        return sample_value(non_null[0] if non_null else options[0], root, name)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required:
                out[key] = sample_value(sub, root, key)
            elif _allows_null(sub, root):
                out[key] = None
        return out
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        return [sample_value(schema.get("items", {}), root, name) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if schema.get("format") == "date":
        return "2026-01-01"
    lowered = name.lower()
    if "email" in lowered:
        return "someone@example.com"
    if "language" in lowered:
        return "en"
    if "currency" in lowered:
        return "EUR"
    return f"sample {name}".strip()


def _first_user(body: dict[str, Any], seen: list[str] | None = None) -> str:
    """The first user message's text: its text parts (and what `seen` says its images show, one line each)."""
    messages = body.get("messages", [])
    first_user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
    if isinstance(first_user, str):
        return first_user
    if not isinstance(first_user, list):
        return json.dumps(first_user)
    texts = [str(part.get("text", "")) for part in first_user if isinstance(part, dict) and part.get("type") == "text"]
    return "\n".join(texts + list(seen or ()))


_DATA_URL = re.compile(r"data:image/(png|jpeg|jpg|webp|gif);base64,(.*)", re.DOTALL)
_MAGIC = {"png": (b"\x89PNG",), "jpeg": (b"\xff\xd8",), "jpg": (b"\xff\xd8",), "webp": (b"RIFF",),
          "gif": (b"GIF8",)}
THUMB = 32  # side of the grey thumbnail an image is recognized by (`pictures`)
SAME_PICTURE = 6.0  # mean absolute difference of two thumbnails (grey levels) under which they are one picture


def _thumbnail(raw: bytes) -> Any:
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as image:
        return np.asarray(image.convert("L").resize((THUMB, THUMB)), dtype=np.float32)


def _image_parts(messages: list[Any]) -> list[dict[str, Any]]:
    return [part for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list)
            for part in m["content"] if isinstance(part, dict) and part.get("type") == "image_url"]


def _image_tokens(width: int, height: int, detail: str) -> int:
    """OpenAI's gpt-4o tile rule: what this provider bills an image."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def _text_tokens(messages: list[Any], tools: Any) -> int:
    """Tokens of the request without its images (their data URLs are not text the model reads)."""
    plain = [{**m, "content": [p for p in m["content"] if not (isinstance(p, dict) and p.get("type") == "image_url")]}
             if isinstance(m, dict) and isinstance(m.get("content"), list) else m for m in messages]
    return _tokens(json.dumps(plain, ensure_ascii=False) + json.dumps(tools or ""))


COPIED_FIELDS = ("email", "phone", "desired_role", "company", "location")


def oracle_answers(labels: list[dict[str, Any]], made_up: float = 0.0, seed: int = 0,
                   fields: tuple[str, ...] = COPIED_FIELDS) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    """`answers=` for labeled letters (keyed by the applicant's last name, which occurs in the letter): the
    labels, with a seeded share `made_up` of the copied `fields` replaced by another letter's value; and which
    (doc_id, field) were made up (the evidence tests and bench/evidence_quality.py)."""
    rng = random.Random(seed)
    out: dict[str, dict[str, Any]] = {}
    invented: set[tuple[str, str]] = set()
    for label in labels:
        answer = {k: v for k, v in label.items() if k != "doc_id"}
        for field in fields:
            if answer.get(field) and rng.random() < made_up:
                answer[field] = rng.choice([x for x in labels if x is not label and x.get(field)])[field]
                invented.add((label["doc_id"], field))
        out[label["applicant_name"].split()[-1]] = answer
    return out, invented


class FakeOpenAI:
    """The server's state: options, per-document request counts and the request log."""

    def __init__(self, *, latency_s: float = 0.0, fail_rate: float = 0.0, seed: int = 0,
                 slow_s: float = 2.0, retry_after_s: float = 0.0, supports_n: bool = True,
                 max_in_flight: int | None = None, batch_polls: int = 0, batch_expires: bool = False,
                 batch_answers_lost: int = 0, batch_api: bool = True,
                 answers: dict[str, dict[str, Any]] | None = None,
                 model_answers: dict[str, dict[str, dict[str, Any]]] | None = None,
                 embeddings: bool = True, models: set[str] | None = None, context_tokens: int | None = None,
                 anchored: dict[str, dict[str, Any]] | None = None, wrong_spans: float = 0.0,
                 vision: bool = True, pictures: dict[str, bytes] | None = None) -> None:
        self.supports_n = supports_n  # False: behave like servers that ignore `n` (llama.cpp)
        # A provider's rate limit, simplified: a request arriving while this many are being answered
        # gets 429 with Retry-After at once. Peak concurrency seen is kept in `peak_in_flight`.
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.peak_in_flight = 0
        self._choices: dict[str, int] = {}
        self.latency_s = latency_s
        self.fail_rate = fail_rate
        self.slow_s = slow_s
        self.retry_after_s = retry_after_s
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._systems: set[str] = set()
        self.log: list[dict[str, Any]] = []
        # The Batch API: uploaded files, and batches answered once retrieved `batch_polls` + 1 times.
        self.batch_polls = batch_polls
        self.batch_expires = batch_expires  # True: a batch ends "expired" with only its first half answered
        self.batch_answers_lost = batch_answers_lost  # this many creates happen but answer 500 (answer lost)
        # An oracle: a document whose text contains a key is answered with that key's values (merged over the
        # generated defaults), without any directive in the document (evidence tests need clean text).
        self.answers = dict(answers or {})
        # The same per model, applied last: {model: {key: values}}, so one model can answer better than
        # another (experiments comparing models).
        self.model_answers = dict(model_answers or {})
        self.batch_api = batch_api  # False: a server without files and batches endpoints (404, like llama.cpp)
        self.embeddings = embeddings  # False: no /v1/embeddings (404), like a chat-only server
        # The models served, like vLLM or Ollama: another model's request is a 404 naming it. None: any model.
        self.models = set(models) if models is not None else None
        # A context window: a longer request is refused with 400 context_length_exceeded.
        self.context_tokens = context_tokens
        # The chunk oracle: each anchor's values are answered where the document contains the anchor.
        self.anchored = [(re.compile(rf"(?<!\w){re.escape(_collapse(anchor))}(?!\w)"), values)
                         for anchor, values in (anchored or {}).items()]

        # A small model's typical error on one-field questions: this seeded share of the questions whose oracle
        # value is a string is answered with another span of the same document instead (another field's value
        # where one is in the text, the applicant's name as the company; else a few of its words).
        self.wrong_spans = wrong_spans
        self.vision = vision  # False: a text-only model, which refuses image content parts (HTTP 400)
        self.pictures = [(text, _thumbnail(raw)) for text, raw in (pictures or {}).items()]
        self.seed = seed
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle -----------------------------------------------------------------------------
    # aiohttp on its own event loop thread: latency is an asyncio sleep, so 32 slow answers in flight
    # cost no threads (a thread-per-connection server measured ~44 ms of GIL convoy per request).
    def start(self, port: int = 0) -> str:
        from aiohttp import web

        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        if self.embeddings:
            app.router.add_post("/v1/embeddings", self._embeddings)
        if self.batch_api:
            app.router.add_post("/v1/files", self._file_upload)
            app.router.add_get("/v1/files/{file_id}/content", self._file_content)
            app.router.add_post("/v1/batches", self._batch_create)
            app.router.add_get("/v1/batches", self._batch_list)
            app.router.add_get("/v1/batches/{batch_id}", self._batch_retrieve)
        app.router.add_get("/_log", self._log)
        app.router.add_post("/_reset", self._reset)
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        ready = threading.Event()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=256)
            self._loop.run_until_complete(site.start())
            self._port = self._runner.addresses[0][1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name="fake-openai")
        self._thread.start()
        ready.wait(10)
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    # -- HTTP handlers -------------------------------------------------------------------------
    async def _chat(self, request: Any) -> Any:
        from aiohttp import web

        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "request body is not JSON"}}, status=400)
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            self._append({"status": 429, "fault": "rate-limit", "first_user": _first_user(body),
                          "prompt_tokens": 0, "completion_tokens": 0,
                          "cached_tokens": 0, "in_flight": self.in_flight})
            return web.json_response(
                {"error": {"message": "Rate limit reached: too many requests in flight", "type": "requests",
                           "code": "rate_limit_exceeded"}},
                status=429, headers={"retry-after": f"{self.retry_after_s:g}"})
        if self.models is not None and body.get("model") not in self.models:
            self._append({"status": 404, "fault": "model", "first_user": _first_user(body), "prompt_tokens": 0,
                          "completion_tokens": 0, "cached_tokens": 0})
            return web.json_response(
                {"error": {"message": f"The model `{body.get('model')}` does not exist.", "type": "NotFoundError",
                           "code": "model_not_found"}}, status=404)
        self.in_flight += 1  # only this event loop's thread touches the counters
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            status, headers, payload, delay = self.respond(body)
            if status == 401:  # as OpenAI does: the refused key is quoted back in the error
                key = request.headers.get("Authorization", "").removeprefix("Bearer ")
                payload["error"]["message"] = f"Incorrect API key provided: {key}. You can find your API key..."
            if delay:
                await asyncio.sleep(delay)
            return web.json_response(payload, status=status, headers=headers)
        finally:
            self.in_flight -= 1

    async def _embeddings(self, request: Any) -> Any:
        """Deterministic vectors: hashed word counts, L2-normalized (documents sharing words are close)."""
        from aiohttp import web

        body = await request.json()
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        data, tokens = [], 0
        for i, text in enumerate(texts):
            vector = [0.0] * EMBEDDING_DIMENSIONS
            for word in re.findall(r"\w+", str(text).lower()):
                vector[int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % EMBEDDING_DIMENSIONS] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vector]})
            tokens += _tokens(str(text))
        self._append({"embeddings": True, "model": body.get("model"), "inputs": len(texts), "status": 200,
                      "prompt_tokens": tokens, "completion_tokens": 0, "cached_tokens": 0})
        return web.json_response({"object": "list", "data": data, "model": body.get("model", "fake"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    # -- the Batch API (files, batches), answered with the same behaviour as chat completions ---------
    def _new_id(self, prefix: str) -> str:
        seed = f"{prefix}{len(self.files)}{len(self.batches)}{time.time_ns()}"
        return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:16]}"

    def _store_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = self._new_id("file")
        self.files[file_id] = content
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}

    async def _file_upload(self, request: Any) -> Any:
        from aiohttp import web

        form = await request.post()
        upload = form.get("file")
        if upload is None or not hasattr(upload, "file"):
            return web.json_response({"error": {"message": "no file in the upload"}}, status=400)
        return web.json_response(self._store_file(upload.file.read(), upload.filename or "upload.jsonl",
                                                  str(form.get("purpose", ""))))

    async def _file_content(self, request: Any) -> Any:
        from aiohttp import web

        content = self.files.get(request.match_info["file_id"])
        if content is None:
            return web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.Response(body=content, content_type="application/octet-stream")

    async def _batch_create(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        if body.get("input_file_id") not in self.files or body.get("endpoint") != "/v1/chat/completions":
            return web.json_response({"error": {"message": "unknown input_file_id or endpoint"}}, status=400)
        batch = {"id": self._new_id("batch"), "object": "batch", "endpoint": body["endpoint"],
                 "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
                 "status": "validating", "created_at": int(time.time()), "metadata": body.get("metadata"),
                 "output_file_id": None, "error_file_id": None, "polls": 0}
        self.batches[batch["id"]] = batch
        if self.batch_answers_lost > 0:
            self.batch_answers_lost -= 1
            return web.json_response({"error": {"message": "upstream timeout"}}, status=500)
        return web.json_response(self._public(batch))

    async def _batch_list(self, request: Any) -> Any:
        from aiohttp import web

        data = [self._public(b) for b in reversed(list(self.batches.values()))]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    async def _batch_retrieve(self, request: Any) -> Any:
        from aiohttp import web

        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return web.json_response({"error": {"message": "no such batch"}}, status=404)
        batch["polls"] += 1
        if batch["status"] in ("validating", "in_progress"):
            if batch["polls"] > self.batch_polls:
                self._complete(batch)
            else:
                batch["status"] = "in_progress"
        return web.json_response(self._public(batch))

    def _complete(self, batch: dict[str, Any]) -> None:
        outputs: list[str] = []
        errors: list[str] = []
        lines = [line for line in self.files[batch["input_file_id"]].decode().splitlines() if line.strip()]
        if self.batch_expires:
            lines = lines[: len(lines) // 2]
        for line in lines:
            item = json.loads(line)
            status, _, payload, _ = self.respond(item["body"])  # no waiting: the batch is done
            record = {"id": self._new_id("batch_req"), "custom_id": item["custom_id"],
                      "response": {"status_code": status, "request_id": self._new_id("req"), "body": payload},
                      "error": None}
            (outputs if status == 200 else errors).append(json.dumps(record))
        if outputs:
            batch["output_file_id"] = self._store_file(("\n".join(outputs) + "\n").encode(), "output.jsonl",
                                                       "batch_output")["id"]
        if errors:
            batch["error_file_id"] = self._store_file(("\n".join(errors) + "\n").encode(), "errors.jsonl",
                                                      "batch_output")["id"]
        batch["status"] = "expired" if self.batch_expires else "completed"
        batch["request_counts"] = {"total": len(outputs) + len(errors), "completed": len(outputs),
                                   "failed": len(errors)}

    @staticmethod
    def _public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if k != "polls"}

    async def _models(self, request: Any) -> Any:
        from aiohttp import web

        served = sorted(self.models) if self.models is not None else ["fake"]
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in served]})

    async def _log(self, request: Any) -> Any:
        from aiohttp import web

        with self._lock:
            return web.json_response(list(self.log))

    async def _reset(self, request: Any) -> Any:
        from aiohttp import web

        self.reset()
        return web.json_response({"ok": True})

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self._choices.clear()
            self._systems.clear()
            self.log.clear()

    # -- behaviour -----------------------------------------------------------------------------
    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any], float]:
        """(status, headers, json body, seconds to wait before answering) for one request."""
        messages = body.get("messages", [])
        system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
        images, seen, refusal = self._look(messages)
        if refusal is not None:
            self._append({"status": 400, "fault": "image", "first_user": _first_user(body), "prompt_tokens": 0,
                          "completion_tokens": 0, "cached_tokens": 0, "images": len(_image_parts(messages))})
            return 400, {}, {"error": {"message": refusal, "type": "invalid_request_error", "param": "messages",
                                       "code": None}}, self.latency_s
        first_user = _first_user(body, seen)
        key = hashlib.sha256((first_user + "".join(d for d, _ in images)).encode()).hexdigest()
        faults: list[str] = []
        for kind, count in _FAULT.findall(first_user):
            faults.extend([kind] * int(count or 1))
        with self._lock:
            index = self._seen.get(key, 0)
            self._seen[key] = index + 1
            cached_hit = system in self._systems
            self._systems.add(system)
            fault = faults[index] if index < len(faults) else None
            if fault is None and self.fail_rate and self._random.random() < self.fail_rate:
                fault = self._random.choice(["429", "500", "503"])
        record: dict[str, Any] = {"key": key, "first_user": first_user, "attempt": index + 1, "fault": fault,
                                  "messages": messages, "tools": bool(body.get("tools")),
                                  "temperature": body.get("temperature"), "logprobs": bool(body.get("logprobs")),
                                  "system_sha256": hashlib.sha256(system.encode()).hexdigest(),
                                  "schema_sha256": hashlib.sha256(
                                      json.dumps(self._schema(body), sort_keys=True).encode()).hexdigest(),
                                  "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0,
                                  "images": len(images), "image_tokens": sum(t for _, t in images), "seen": seen}
        delay = self.latency_s
        if fault in _STATUS_FAULTS:
            status = int(fault)
            headers = {"retry-after": f"{self.retry_after_s:g}"} if status == 429 else {}
            record["status"] = status
            self._append(record)
            return status, headers, {"error": {"message": f"injected fault {fault}", "type": "fake",
                                               "code": fault}}, delay
        if fault == "slow":
            delay += self.slow_s
        if self.context_tokens is not None:
            asked = _text_tokens(messages, body.get("tools")) + sum(t for _, t in images) + int(
                body.get("max_tokens") or body.get("max_completion_tokens") or 0)
            if asked > self.context_tokens:
                record.update(status=400, fault="context")
                self._append(record)
                return 400, {}, {"error": {
                    "message": f"This model's maximum context length is {self.context_tokens} tokens. However, you "
                               f"requested {asked} tokens. Please reduce the length of the messages.",
                    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}, delay
        n = max(1, int(body.get("n") or 1)) if self.supports_n else 1
        with self._lock:
            first_choice = self._choices.get(key, 0)
            self._choices[key] = first_choice + n
        answered = [self._arguments(body, first_user, fault, first_choice + i) for i in range(n)]
        answers = [arguments for arguments, _ in answered]
        prompt_tokens = _text_tokens(messages, body.get("tools")) + sum(t for _, t in images)
        cached = min(prompt_tokens, _tokens(system)) if cached_hit else 0
        completion_tokens = sum(_tokens(a) for a in answers)  # the prompt is billed once for n choices
        record.update(status=200, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      cached_tokens=cached, choices=n)
        self._append(record)
        choices = []
        for i, (arguments, wrong) in enumerate(answered):
            message: dict[str, Any] = {"role": "assistant", "content": None}
            logprobs = None
            if body.get("tools"):
                name = body["tools"][0]["function"]["name"]
                message["tool_calls"] = [{"id": f"call_{key[:12]}_{i}", "type": "function",
                                          "function": {"name": name, "arguments": arguments}}]
                finish = "tool_calls"
            else:
                message["content"] = arguments
                finish = "stop"
                if body.get("logprobs"):
                    logprobs = {"content": self._logprobs(arguments, wrong, f"{key}:{first_choice + i}")}
            choices.append({"index": i, "message": message, "finish_reason": finish, "logprobs": logprobs})
        response = {
            "id": "chatcmpl-" + key[:16], "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        }
        return 200, {}, response, delay

    def _look(self, messages: list[Any]) -> tuple[list[tuple[str, int]], list[str], str | None]:
        """The request's images as (sha256, tokens billed), what they show (`pictures`), and the 400 message that
        refuses the request (a text-only model, an image that is not one), if any."""
        import base64
        import binascii
        import io

        parts = _image_parts(messages)
        if not parts:
            return [], [], None
        if not self.vision:
            return [], [], "Invalid content type. image_url is only supported by certain models."
        images: list[tuple[str, int]] = []
        seen: list[str] = []
        for n, part in enumerate(parts):
            spec = part.get("image_url") or {}
            url = str(spec.get("url", "")) if isinstance(spec, dict) else ""
            detail = spec.get("detail", "auto") if isinstance(spec, dict) else "auto"
            found = _DATA_URL.fullmatch(url)
            if found is None:
                return [], [], (f"image {n}: only inline data URLs of png, jpeg, webp or gif images are accepted "
                                "here (this server fetches nothing)")
            if detail not in ("auto", "low", "high"):
                return [], [], f"image {n}: detail must be auto, low or high, not {detail!r}"
            try:
                raw = base64.b64decode(found.group(2), validate=True)
            except (binascii.Error, ValueError):
                return [], [], f"image {n}: the data URL is not valid base64"
            if not raw.startswith(_MAGIC[found.group(1)]):
                return [], [], f"image {n}: the bytes are not a {found.group(1)} image"
            try:
                from PIL import Image

                with Image.open(io.BytesIO(raw)) as image:
                    width, height = image.size
                thumb = _thumbnail(raw)
            except Exception as exc:
                return [], [], f"image {n}: cannot be decoded ({type(exc).__name__})"
            images.append((hashlib.sha256(raw).hexdigest(), _image_tokens(width, height, str(detail))))
            if self.pictures:
                import numpy as np

                text, distance = min(((t, float(np.abs(thumb - p).mean())) for t, p in self.pictures),
                                     key=lambda item: item[1])
                if distance < SAME_PICTURE:
                    seen.append(text)
        return images, seen, None

    def _append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.log.append(record)

    @staticmethod
    def _schema(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("tools"):
            return body["tools"][0]["function"]["parameters"]
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return fmt["json_schema"]["schema"]
        if fmt.get("type") == "json_object" and "schema" in fmt:  # llama-cpp-python's form
            return fmt["schema"]
        return {"type": "object", "properties": {}}

    def _logprobs(self, arguments: str, wrong: bool, salt: str) -> list[dict[str, Any]]:
        """Token log probabilities of an answer, as OpenAI and llama.cpp's server give them with `logprobs`: the text
        in tokens of about 4 characters (the billing's `_tokens`); the grammar's own characters (braces, quotes,
        the key) nearly certain; each token of the value drawn from p 0.35-0.99 for a right answer and 0.05-0.5 for an
        injected wrong span: the ranges overlap, as a real model is sometimes unsure of a right answer and sure of a
        wrong one. Seeded per answer."""
        draw = random.Random(f"{self.seed}:logprobs:{salt}")
        key_chars: set[int] = set()
        for m in re.finditer(r'"(?:[^"\\]|\\.)*"\s*:', arguments):
            key_chars |= set(range(m.start(), m.end()))
        low, high = (0.05, 0.5) if wrong else (0.35, 0.99)
        out = []
        for at in range(0, len(arguments), 4):
            token = arguments[at:at + 4]
            structural = all(not c.isalnum() or at + j in key_chars for j, c in enumerate(token))
            p = 0.999 if structural else draw.uniform(low, high)
            out.append({"token": token, "logprob": math.log(p), "bytes": list(token.encode()), "top_logprobs": []})
        return out

    def _arguments(self, body: dict[str, Any], first_user: str, fault: str | None,
                   choice: int = 0) -> tuple[str, bool]:
        """The answer's text, and whether it is an injected wrong span (`wrong_spans`)."""
        if fault == "badjson":
            return '{"applicant_name": "unterminated', False
        if fault == "invalid":
            return json.dumps({"unexpected": True, "skills": "not a list"}), False
        schema = self._schema(body)
        value = sample_value(schema, schema)
        match = _ANSWER.search(first_user)
        if match and isinstance(value, dict):
            value.update(json.loads(match.group(1)))
        oracle: dict[str, Any] = {}
        for key, answer in self.answers.items():
            if key in first_user and isinstance(value, dict):
                value.update(answer)
                oracle = answer
                break
        for key, answer in self.model_answers.get(str(body.get("model")), {}).items():
            if key in first_user and isinstance(value, dict):
                value.update(answer)
                break
        if self.anchored and isinstance(value, dict):
            value.update(self._contained(first_user))
        for name, options in _VARY.findall(first_user):
            # the k-th answer ever given for this document takes the k-th option (cycling)
            picked = options.split("|")[choice % len(options.split("|"))]
            value[name] = json.loads(picked) if picked[:1] in "[{0123456789-" or picked == "null" else picked
        wrong: dict[str, Any] = {}
        if self.wrong_spans and isinstance(value, dict) and len(schema.get("properties", {})) == 1:
            wrong = self._wrong_span(first_user, next(iter(schema["properties"])), oracle)
            value.update(wrong)
        if _INVALID_SAMPLE.search(first_user) and choice % 4 == 3:
            return json.dumps({"unexpected": True}), False
        return json.dumps(value, ensure_ascii=False), bool(wrong)

    def _contained(self, first_user: str) -> dict[str, Any]:
        """The values of every anchor this document contains, merged: nested tables field by field, lists
        joined without repeats, the first anchor's scalar wins."""
        text = _collapse(first_user)
        out: dict[str, Any] = {}
        for anchor, values in self.anchored:
            if anchor.search(text):
                _merge_into(out, values)
        return out


    def _wrong_span(self, first_user: str, name: str, oracle: dict[str, Any]) -> dict[str, Any]:
        """For a one-field question (the field strategy's): with seeded probability `wrong_spans`, a wrong span
        of the document instead of the oracle's string value (see __init__); {} otherwise."""
        right = oracle.get(name)
        if not isinstance(right, str) or not right:
            return {}
        draw = random.Random(f"{self.seed}:{name}:{first_user}")  # the same question gets the same answer
        if draw.random() >= self.wrong_spans:
            return {}
        document = first_user.split("\n\nQuestion:")[0].removeprefix("<document>\n").removesuffix("</document>")
        others = sorted({v for k, v in oracle.items() if k != name and isinstance(v, str) and len(v) >= 3
                         and v.casefold() != right.casefold() and v in document})
        if others:
            return {name: draw.choice(others)}
        pairs = [m.group(0) for m in re.finditer(r"[^\W\d_][\w'-]+ [^\W\d_][\w'-]+", document)
                 if m.group(0).casefold() not in right.casefold() and right.casefold() not in m.group(0).casefold()]
        return {name: draw.choice(pairs)} if pairs else {}


def _collapse(text: str) -> str:
    return " ".join(text.split()).casefold()


def _merge_into(out: dict[str, Any], values: dict[str, Any]) -> None:
    for key, item in values.items():
        if isinstance(item, dict) and isinstance(out.get(key), dict):
            _merge_into(out[key], item)
        elif isinstance(item, list) and isinstance(out.get(key), list):
            out[key].extend(x for x in item if x not in out[key])
        elif key not in out:
            out[key] = json.loads(json.dumps(item))  # a copy: the anchor's values stay as given


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help="answer 429 to a request that arrives while this many are in flight")
    parser.add_argument("--retry-after", type=float, default=0.0, help="Retry-After seconds of a 429")
    parser.add_argument("--context-tokens", type=int, default=None,
                        help="answer 400 context_length_exceeded to a longer request")
    args = parser.parse_args()
    server = FakeOpenAI(latency_s=args.latency, fail_rate=args.fail_rate, seed=args.seed,
                        max_in_flight=args.max_in_flight, retry_after_s=args.retry_after,
                        context_tokens=args.context_tokens)
    print(server.start(args.port), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
