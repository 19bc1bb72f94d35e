"""One frozen settings object per invocation, merged from flags, a TOML config file and the environment.

Precedence: flags > config file > environment (OPENAI_API_KEY, OPENAI_BASE_URL) > defaults. The file
is read once, by `build_config`; every command (run, dry run, export, eval, breakeven, report, ...)
takes what it needs from the one `RunConfig` it returns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from extractor.errors import ConfigError
from extractor.layout import Layout, RoutingLayout

DEFAULT_CONFIG_FILE = Path("extractor.toml")
DEFAULT_REMOTE_MODEL = "gpt-4o-mini"
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDED_MODEL = "smollm2-135m-instruct-q4_1"
MODES = ("tools", "json_schema", "json", "md_json")
BACKENDS = ("auto", "openai", "embedded")
STRATEGIES = ("auto", "whole", "fields")
PAGES = ("text", "images", "both")
ENGINES = ("local", "ray")
MIN_CONTEXT_TOKENS = 1_024


class Secret(str):
    """The API key: hidden from repr (so from dataclass reprs, containers and logged objects). Its str is
    the key itself, since that is what is sent; never format it into a message (see backends.redact)."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens, for models genai-prices does not know (self-hosted, fine-tuned)."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one invocation; built once by the CLI (or a caller) and never mutated.

    `input_dir` is needed only by the commands that read documents (run, dry run)."""

    input_dir: Path | None = None
    schema: str = "cover_letter"  # or "auto": each document routed to the schema of its kind (extraction.routing)
    schemas: tuple[str, ...] = ()  # with schema = "auto": the schemas routed among (empty: all in schemas_dir)
    schemas_dir: Path = Path("schemas")
    output_dir: Path = Path("outputs")
    backend: str = "auto"
    model: str | None = None
    base_url: str | None = None
    api_key: Secret | None = field(default=None, repr=False)
    model_path: Path | None = None
    mode: str = "tools"
    strategy: str = "auto"  # whole: one call per document; fields: one grounded question per field (extraction.fields)
    concurrency: int | None = None  # None: 8 for a server, 1 for the embedded model
    # local: one process; ray: documents read, parsed and extracted in Ray actors (extraction.engine)
    engine: str = "local"
    ray_address: str | None = None  # engine = "ray": the cluster to join (None: RAY_ADDRESS, else a local Ray)
    temperature: float = 0.0
    max_tokens: int | None = None
    max_reasks: int = 2
    max_attempts: int = 6
    request_timeout_s: float = 60.0
    document_deadline_s: float = 300.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # A guard against runaway cost, not a context limit: a longer document is chunked to its model's context
    # (extraction.chunked); past this it fails, so a 20 MB text of junk never becomes a thousand requests.
    max_chars: int = 2_000_000
    context_tokens: int | None = None  # the model's context window (prompt + answer); None: the known window
    samples: int = 1  # >1: self-consistency, K answers per sampled document, the majority is the result
    sample_fraction: float = 1.0  # share of documents sampled: round(F * n), remembered (extraction.sampling)
    sample_temperature: float = 0.7
    sample_seed: int = 0
    parse_timeout_s: float = 60.0
    ocr_max_pages: int = 50  # a document with more pages to read by OCR is a failed row (0: OCR off)
    ocr_page_timeout_s: float = 30.0  # each page read by OCR adds this to the document's parse time limit
    # What the model is sent of a page read by OCR: its OCR text (text), its image instead (images) or both; only
    # a model that reads images (`vision`) can be sent them. Text-layer pages are always sent as text.
    pages: str = "text"
    vision: bool | None = None  # whether the model reads images; None: known per model (llm.tokens.accepts_images)
    force: bool = False  # re-extract documents that already have a stored result
    archive_dir: Path | None = None  # move ok inputs here once their result is durable
    grace_s: float = 30.0  # after SIGINT/SIGTERM: time for in-flight documents to finish
    checkpoint_s: float = 60.0  # rewrite results.parquet from the journal at most this often
    max_cost_usd: float | None = None  # start no new paid document once the run would spend more
    batch: bool = False  # submit through the OpenAI Batch API (half price, answers within 24 h)
    review_threshold: float = 0.5  # a row needs review when a value's confidence is below this
    # The field strategy asks for its answers' token log probabilities; the model's probability of each value then
    # enters its confidence (values.evidence.confidence). Opt-in: the embedded server keeps every token's logits.
    logprobs: bool = False
    reviewer: str | None = None  # who `review --serve` stores labels as (None: the OS user)
    examples: str = "static"  # static (the schema's) | none | similar:K (K labeled documents like this one)
    # How similar:K ranks labeled documents: bm25 (words, offline, no model) | embeddings[:MODEL] (the server's
    # embeddings endpoint, through the same client; default model DEFAULT_EMBEDDING_MODEL)
    retrieval: str = "bm25"
    adapt_concurrency: bool = True  # a 429/503 halves the requests in flight (throttle.AdaptiveLimit)
    label_minutes: float = 3.0  # minutes a person takes to label one document (the verdict's labelling effort)
    label_hourly_usd: float | None = None  # USD an hour of labelling, to price that effort; None: not priced
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    # [finetune_prices."<model>"]: training and fine-tuned inference prices beyond the dated table
    finetune_prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if self.pages not in PAGES:
            raise ConfigError(f"pages must be one of {', '.join(PAGES)}, not {self.pages!r}")
        if self.pages != "text" and self.resolved_backend == "embedded":
            raise ConfigError(f"pages = {self.pages} sends page images, and the embedded model reads text only: "
                              "use pages = text, or a model that reads images (--base-url / OPENAI_API_KEY)")
        if self.pages != "text" and self.resolved_strategy == "fields":
            raise ConfigError(f"pages = {self.pages} sends page images in one whole-schema request; --strategy "
                              "fields asks text questions: use --strategy whole, or pages = text")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.batch and self.strategy == "fields":
            raise ConfigError("--batch sends one request per document: it cannot ask field by field "
                              "(--strategy fields)")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if self.max_attempts < 1 or self.max_reasks < 0:
            raise ConfigError("max_attempts must be >= 1 and max_reasks >= 0")
        if self.max_chars < 1:
            raise ConfigError("max_chars must be positive")
        if self.context_tokens is not None and self.context_tokens < MIN_CONTEXT_TOKENS:
            raise ConfigError(f"context_tokens must be at least {MIN_CONTEXT_TOKENS:,} (the instructions, the schema "
                              f"and an answer need room besides the document), not {self.context_tokens}")
        if self.samples < 1 or not 0.0 <= self.sample_fraction <= 1.0:
            raise ConfigError("--samples must be >= 1 and --sample-fraction between 0 and 1")
        if not 0.0 <= self.review_threshold <= 1.0:
            raise ConfigError(f"review_threshold must be between 0 and 1, not {self.review_threshold}")
        if self.label_minutes < 0 or (self.label_hourly_usd is not None and self.label_hourly_usd < 0):
            raise ConfigError("label_minutes and label_hourly_usd must not be negative")
        if self.max_cost_usd is not None and self.max_cost_usd <= 0:
            raise ConfigError("--max-cost must be a positive amount of USD")
        if self.examples not in ("static", "none") and self.similar_examples is None:
            raise ConfigError(f"--examples must be static, none or similar:K (K >= 1), not {self.examples!r}")
        if self.retrieval != "bm25" and self.embedding_model is None:
            raise ConfigError(f"retrieval must be bm25 or embeddings[:MODEL], not {self.retrieval!r}")
        if self.embedding_model is not None and self.similar_examples is not None \
                and self.resolved_backend != "openai":
            raise ConfigError(f"retrieval = {self.retrieval} asks the server's embeddings endpoint: it needs an "
                              "OpenAI-compatible server (a key or --base-url); the embedded model ranks by bm25")
        if self.batch and self.resolved_backend != "openai":
            raise ConfigError("--batch needs an OpenAI-compatible server with the Batch API (a key or --base-url)")
        if self.batch and self.samples > 1:
            raise ConfigError("--batch cannot take self-consistency samples (--samples): run those without it")

    @property
    def routed(self) -> bool:
        """`schema = "auto"`: documents are routed to their schemas (extraction.routing), not extracted as one."""
        return self.schema == "auto"

    def for_schema(self, name: str) -> RunConfig:
        """These settings for one schema (what `--schema auto` runs each routed group of documents with)."""
        return dataclasses.replace(self, schema=name)

    def require_reachable_model(self) -> None:
        """Refuse (ConfigError, exit 2) a model no configured backend can serve, before a run stores anything.

        Without it, `--model gpt-4.1-mini` and no key ran the embedded model under that name, and an experiment
        measured a model that never ran. Commands that only read outputs do not call it."""
        if (self.resolved_backend == "embedded" and self.model not in (None, EMBEDDED_MODEL)
                and self.model_path is None):
            raise ConfigError(
                f"model {self.model!r} cannot be reached: no OPENAI_API_KEY and no --base-url are set, and the "
                f"embedded backend serves only its own model ({EMBEDDED_MODEL}); set OPENAI_API_KEY (OpenAI) or "
                "--base-url (an OpenAI-compatible server) to use it, or leave --model unset for the embedded "
                "model (--model-path FILE.gguf for another local model)")

    @property
    def resolved_backend(self) -> str:
        """`auto` means: a key or a base URL was configured -> that server; otherwise the embedded model."""
        if self.backend != "auto":
            return self.backend
        return "openai" if (self.base_url or self.api_key) else "embedded"

    @property
    def similar_examples(self) -> int | None:
        """K of `examples = "similar:K"`: retrieved examples per document; None for static or none."""
        kind, _, k = self.examples.partition(":")
        return int(k) if kind == "similar" and k.isdigit() and int(k) >= 1 else None

    @property
    def embedding_model(self) -> str | None:
        """The embeddings model of `retrieval = "embeddings[:MODEL]"`; None for bm25 (or a malformed value)."""
        kind, sep, model = self.retrieval.partition(":")
        if kind != "embeddings" or (sep and not model.strip()):
            return None
        return model.strip() or DEFAULT_EMBEDDING_MODEL

    @property
    def resolved_strategy(self) -> str:
        """`auto`: field by field for the embedded model (a small model answers one question at a time far
        better than a whole schema), one call for the whole schema otherwise."""
        if self.strategy != "auto":
            return self.strategy
        return "fields" if self.resolved_backend == "embedded" else "whole"

    @property
    def resolved_concurrency(self) -> int:
        """Documents asking the model at once (a remote run prepares half as many again ahead of a free place,
        `runner.ahead_of_slots`). The embedded engine runs one request at a time on every core, so documents parsed
        ahead only steal its CPU (measured: 8 in flight was 20% slower than 1)."""
        if self.concurrency is not None:
            return self.concurrency
        return 1 if self.resolved_backend == "embedded" else 8

    @property
    def resolved_model(self) -> str:
        if self.model:
            return self.model
        return EMBEDDED_MODEL if self.resolved_backend == "embedded" else DEFAULT_REMOTE_MODEL

    @property
    def endpoint(self) -> str:
        """Host (and port) of the server, never the key or a path that could carry one."""
        if self.resolved_backend == "embedded":
            return "embedded"
        url = self.base_url or "https://api.openai.com/v1"
        parts = urlsplit(url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "unknown"

    @property
    def schema_output_dir(self) -> Path:
        return self.layout.root

    @property
    def layout(self) -> Layout:
        """Where this schema's outputs live (journal, results, logs, ...)."""
        if self.routed:
            raise ConfigError("--schema auto has no outputs of its own: name the schema whose outputs you mean "
                              "(--schema NAME); the routing decisions are in "
                              f"{RoutingLayout.of(self.output_dir).routes}")
        return Layout.of(self.output_dir, self.schema)

    @property
    def routing_layout(self) -> RoutingLayout:
        """Where `--schema auto` keeps its decisions (`<output>/_routing/`)."""
        return RoutingLayout.of(self.output_dir)

    def document_key(self, content_sha256: str, schema_version: str, *, sampled: bool,
                     examples: str | None = None, ocr: str | None = None) -> str:
        """`cache_key` of one document as this run would extract it (K samples if it is `sampled`, see
        extractor.extraction.sampling; `examples`: the digest of the retrieved examples it is sent with, see
        extractor.extraction.retrieval; `ocr`: the OCR engine and version that read it, see
        extractor.documents.ocr)."""
        return self.cache_key(content_sha256, schema_version,
                              samples=self.samples if sampled else 1, examples=examples, ocr=ocr)

    def cache_key(self, content_sha256: str, schema_version: str, samples: int = 1,
                  examples: str | None = None, ocr: str | None = None) -> str:
        """Identity of an extraction: same bytes, schema version, model and settings -> same result.

        A stored ok result with this key is reused instead of paying for the document again. The schema's
        static examples are in the schema version; `examples = "none"` and retrieved examples (their
        digest) change the key, `static` (and `similar:K` with no example found) keep the keys they had.
        """
        identity = {
            "content": content_sha256, "schema_version": schema_version,
            "backend": self.resolved_backend, "model": self.resolved_model, "endpoint": self.endpoint,
            "model_file": self.model_path.name if self.model_path else None, "mode": self.mode,
            "temperature": self.temperature, "max_tokens": self.max_tokens, "max_reasks": self.max_reasks,
        }
        if self.resolved_strategy != "whole":  # only then: whole-schema results keep the keys they always had
            identity.update(strategy=self.resolved_strategy)
        if self.context_tokens is not None:  # only when set: a long document is chunked to another size
            identity.update(context_tokens=self.context_tokens)
        if samples > 1:  # only then: unsampled documents keep the keys they always had
            identity.update(samples=samples, sample_temperature=self.sample_temperature)
        if examples is not None or self.examples == "none":
            identity.update(examples=examples or "none")
        if ocr is not None:  # only then: documents with a text layer keep the keys they always had
            identity.update(ocr=ocr)
            if self.pages != "text":  # only then: OCR'd documents sent as text keep the keys they had
                identity.update(pages=self.pages)
        if self.logprobs:  # only then: a result asked with them carries their confidence; others keep their keys
            identity.update(logprobs=True)
        if examples is not None and self.resolved_strategy == "fields":
            # The field strategy shows retrieved examples since "fields-demos-v1"; its results from before,
            # under the same digest but never shown them, are not carried.
            identity.update(demonstrations="fields-demos-v1")
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _read_config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        path = DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None
        if path is None:
            return {}
    elif not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return data


def _prices(raw: Any) -> dict[str, ModelPrice]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("[prices] must be a table of model = {input_per_mtok, output_per_mtok}")
    out: dict[str, ModelPrice] = {}
    wanted = {f.name for f in dataclasses.fields(ModelPrice)}
    for model, spec in raw.items():
        given = set(spec) if isinstance(spec, Mapping) else set()
        missing = {"input_per_mtok", "output_per_mtok"} - given
        if not isinstance(spec, Mapping) or missing or given - wanted or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in spec.values()):
            raise ConfigError(
                f"[prices.{model!r}] in the config file needs input_per_mtok and output_per_mtok, numbers in USD "
                "per million tokens (cached_input_per_mtok is optional)"
                + (f"; missing: {', '.join(sorted(missing))}" if missing else "")
                + (f"; unknown: {', '.join(sorted(given - wanted))}" if given - wanted else "")
                + f"; got {dict(spec) if isinstance(spec, Mapping) else spec!r}")
        out[model] = ModelPrice(**spec)
    return out


def _finetune_prices(raw: Any) -> dict[str, dict[str, float]]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, Mapping) for v in raw.values()):
        raise ConfigError('[finetune_prices."<model>"] must be tables of training_per_mtok, input_per_mtok, ...')
    return {str(k): dict(v) for k, v in raw.items()}


_PATH_FIELDS = {"input_dir", "schemas_dir", "output_dir", "model_path", "archive_dir"}
_TABLES = {"prices", "finetune_prices"}  # read from the file only, never from a flag


def build_config(
    flags: Mapping[str, Any], config_file: Path | None = None, env: Mapping[str, str] | None = None
) -> RunConfig:
    """Merge flags (None means "not given"), the config file and the environment into the one RunConfig
    of this invocation. The file is read here and nowhere else."""
    env = os.environ if env is None else env
    file_values = _read_config_file(config_file)
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = set(file_values) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in config file: {', '.join(sorted(unknown))}; "
                          f"known settings: {', '.join(sorted(known - {'api_key'} - {'input_dir'}))}")
    values: dict[str, Any] = {}
    values.update({k: v for k, v in file_values.items() if k not in _TABLES})
    values.update({k: v for k, v in flags.items() if v is not None})
    if "api_key" not in values and env.get("OPENAI_API_KEY"):
        values["api_key"] = env["OPENAI_API_KEY"]
    if "base_url" not in values and env.get("OPENAI_BASE_URL"):
        values["base_url"] = env["OPENAI_BASE_URL"]
    if values.get("api_key"):
        values["api_key"] = Secret(values["api_key"])
    for name in _PATH_FIELDS & values.keys():
        if not isinstance(values[name], str | Path):
            raise ConfigError(f"{name} must be a path, not {values[name]!r}")
        values[name] = Path(values[name])
    if "schemas" in values:
        names = values["schemas"]
        if isinstance(names, str):
            names = [n for n in names.replace(",", " ").split() if n]
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"setting schemas must be a list of schema names, e.g. [\"invoice\", \"resume\"], "
                              f"not {names!r}")
        values["schemas"] = tuple(names)
    values["prices"] = _prices(file_values.get("prices"))
    values["finetune_prices"] = _finetune_prices(file_values.get("finetune_prices"))
    _check_types(values)
    try:
        return RunConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def _check_types(values: Mapping[str, Any]) -> None:
    """Each setting has the type RunConfig declares: a message names the setting, the value and what it must be."""
    hints = typing.get_type_hints(RunConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for name, value in values.items():
        allowed = _plain_types(hints.get(name))
        if allowed is None or (isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)):
            continue
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            continue  # 5 is a fine float
        what = " or ".join(sorted({_TYPE_WORDS.get(t, t.__name__) for t in allowed if t is not type(None)}))
        example = defaults.get(name)
        hint = f", e.g. {example!r}" if example not in (None, dataclasses.MISSING) else ""
        raise ConfigError(f"setting {name} must be {what}{hint}, not {value!r}")


_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text", Path: "a path",
               Secret: "text"}


def _plain_types(hint: Any) -> tuple[type, ...] | None:
    """The plain types a hint admits (`int | None` -> (int, NoneType)); None when it is not that simple."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    plain = tuple(a for a in args if isinstance(a, type) and a in (int, float, bool, str, Path, type(None), Secret))
    return plain if len(plain) == len(args) else None


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments a caller gave: None means "not given", as for `build_config`'s flags, so the
    receiving config's own default applies: `Assumptions(**given(epochs=flag))`."""
    return {name: value for name, value in values.items() if value is not None}
