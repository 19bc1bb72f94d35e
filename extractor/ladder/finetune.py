"""Fine-tuning data from results: gold-labelled and self-consistent documents as OpenAI chat JSONL.

Each example is one line in OpenAI's chat fine-tuning format with function calling, shaped exactly
like the requests extractor sends in its default `tools` mode: the system prompt (without few-shot
examples: the fine-tuned model learns them from the data), the document fenced as untrusted data,
and the answer as a forced call of the function named after the schema's model, whose parameters
are the JSON schema instructor sends. The tool and the call come from `llm.request`, which builds the
backend's own requests (n=K samples, Batch API lines), so the two cannot drift.

Examples come from two sources, in this order:

1. labelled documents: the result row with its labels applied (`corrected_results`: a person's correction
   of a field wins over a labels file's value, whichever came first), if the row was ok or the labels
   cover every required field, and the values validate with the schema;
2. unlabelled ok rows whose self-consistency (`metrics.parquet`) is at least `min_agreement`; with no
   metrics file no unlabelled row is used.

Every document is read again from its source file (the text is not stored), and must still have the
bytes it was extracted from. Every line is checked with `validate_line` before anything is written;
both files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import reprlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from extractor.config import EMBEDDED_MODEL, RunConfig
from extractor.documents import SourceFile, load_document
from extractor.errors import ConfigError, DocumentError, ExtractorError
from extractor.extraction.prompts import build_messages, system_prompt
from extractor.formatting import usd, usd_as_given
from extractor.ladder import assumed
from extractor.llm import request
from extractor.llm.pricing import finetune_prices
from extractor.llm.tokens import DEFAULT_TOKENS_PER_CHAR, RequestRate, TokenRate, request_rate
from extractor.schemas import Schema, load_schema
from extractor.store import Journal, Labels, write_atomic_bytes
from extractor.store.labels import corrected_results

MIN_SAMPLES = 2  # a consistency measured on fewer samples says nothing about agreement
OPENAI_MIN_TRAIN_EXAMPLES = 10  # OpenAI refuses a fine-tuning job with fewer training examples

# Skip reasons (FinetuneReport.skipped[].kind)
MISSING = "source file missing"
UNREADABLE = "source file unreadable"
CHANGED = "source file changed since extraction"
INCOMPLETE = "not ok and required fields not labelled"
INVALID = "values fail schema validation"
NOT_IN_RESULTS = "labelled but not in results"


class FinetuneFormatError(ExtractorError):
    """A line extractor built breaks the fine-tuning format: a bug, so nothing was written."""


@dataclass(frozen=True)
class FinetuneConfig:
    """`extractor export finetune`: the invocation's settings (schema, folders, max_chars, archive_dir,
    [finetune_prices]) and what only this export needs."""

    settings: RunConfig
    out_dir: Path | None = None  # None: the layout's finetune folder (filled in on construction)
    val_fraction: float = 0.2
    seed: int = 0
    min_agreement: float = 0.9
    target_model: str = assumed.FINETUNE_TARGET
    epochs: int = 3

    def __post_init__(self) -> None:
        if self.out_dir is None:
            object.__setattr__(self, "out_dir", self.settings.layout.finetune)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be at least 0 and below 1, not {self.val_fraction}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(f"min_agreement must be between 0 and 1, not {self.min_agreement}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, not {self.epochs}")


@dataclass(frozen=True)
class Skipped:
    doc_id: str
    kind: str  # one of the skip reasons above
    detail: str


@dataclass
class FinetuneReport:
    schema: str
    target_model: str
    out_dir: Path
    labeled: int = 0  # examples from documents with gold labels
    agreed: int = 0  # examples from unlabelled ok rows at or above min_agreement
    min_agreement: float = 0.9
    metrics_path: Path | None = None  # None: no metrics.parquet, so no unlabelled row was used
    not_agreed: int = 0  # unlabelled ok rows below min_agreement or not measured
    skipped: list[Skipped] = field(default_factory=list)
    train_count: int = 0
    validation_count: int = 0
    train_path: Path | None = None
    validation_path: Path | None = None
    train_doc_ids: list[str] = field(default_factory=list)
    validation_doc_ids: list[str] = field(default_factory=list)
    # Token estimate: calibrated from the journal (prompt tokens per prompt character the API reported
    # for this model; the tool schema is inside that ratio) or 4 characters per token over everything.
    token_basis: str = "default"  # "calibrated" | "default"
    token_basis_text: str = ""
    tokens_per_char: float = DEFAULT_TOKENS_PER_CHAR
    train_chars: int = 0  # characters the estimate counts for the training file
    validation_chars: int = 0
    train_tokens: int = 0
    validation_tokens: int = 0
    epochs: int = 3
    training_price_per_mtok: float | None = None
    prices_as_of: str | None = None
    training_cost_usd: float | None = None  # train_tokens x epochs x price; validation is not billed
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)  # what to do with the files, in order

    @property
    def examples(self) -> int:
        return self.labeled + self.agreed

    def skipped_counts(self) -> dict[str, int]:
        return dict(Counter(s.kind for s in self.skipped))

    def as_text(self) -> str:
        lines = [f"Fine-tuning data for {self.schema} (target {self.target_model})"]
        agreed = (f"{self.agreed} agreed at consistency >= {self.min_agreement:g}" if self.metrics_path
                  else "no unlabelled documents: no metrics.parquet")
        lines.append(f"  examples:    {self.examples} ({self.labeled} labelled, {agreed})")
        if self.metrics_path and self.not_agreed:
            lines.append(f"  not used:    {self.not_agreed} unlabelled ok document(s) below the agreement "
                         "threshold or not measured")
        if self.skipped:
            lines.append(f"  skipped:     {len(self.skipped)}")
            for kind, count in sorted(self.skipped_counts().items()):
                ids = [s.doc_id for s in self.skipped if s.kind == kind]
                shown = ", ".join(ids[:5]) + (f", ... ({len(ids) - 5} more)" if len(ids) > 5 else "")
                lines.append(f"    {kind}: {count} ({shown})")
        lines.append(f"  train:       {self.train_count} -> {self.train_path or 'not written'}")
        lines.append(f"  validation:  {self.validation_count} -> {self.validation_path or 'not written'}")
        lines.append(f"  tokens:      ~{self.train_tokens:,} training, ~{self.validation_tokens:,} validation "
                     f"({self.token_basis_text})")
        if self.training_cost_usd is not None:
            lines.append(f"  train cost:  ~{usd(self.training_cost_usd)} = {self.train_tokens:,} tokens x "
                         f"{self.epochs} epoch(s) x {usd_as_given(self.training_price_per_mtok)}/M tokens "
                         f"(prices as of {self.prices_as_of}; validation tokens are not billed)")
        else:
            lines.append("  train cost:  unknown (no training price for the target model)")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.next_steps:
            lines.append("Next:")
            lines += [f"  {i}. {step}" for i, step in enumerate(self.next_steps, 1)]
        return "\n".join(lines)


# -- the format ----------------------------------------------------------------------------------------
# OpenAI's chat fine-tuning line with function calling, as pydantic models: extra="forbid" rejects unknown
# keys and strict=True wrong types (no "1" for 1, no 1 for true); ValidationError locations name each
# problem's place. What one model cannot see (names and ids that refer to each other) is `_references`.

_NonEmpty = Annotated[str, Field(min_length=1)]


class _Format(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Parameters(BaseModel):  # a JSON schema: any keys, but an object's
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["object"]


class _Function(_Format):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str = ""
    parameters: _Parameters
    strict: bool | None = None


class _Tool(_Format):
    type: Literal["function"]
    function: _Function


class _FunctionCall(_Format):
    name: _NonEmpty
    arguments: Json[dict[str, Any]]  # a string of JSON that holds an object


class _ToolCall(_Format):
    id: _NonEmpty
    type: Literal["function"]
    function: _FunctionCall


class _System(_Format):
    role: Literal["system"]
    content: _NonEmpty
    name: str | None = None


class _User(_System):
    role: Literal["user"]  # type: ignore[assignment]


class _Assistant(_Format):
    role: Literal["assistant"]
    content: str | None = None
    name: str | None = None
    tool_calls: Annotated[list[_ToolCall], Field(min_length=1)] | None = None
    weight: Literal[0, 1] | None = None

    @model_validator(mode="after")
    def _answers(self) -> _Assistant:
        if not self.content and not self.tool_calls:
            raise PydanticCustomError("no_answer", "an assistant message needs content or tool_calls")
        return self


class _ToolResult(_Format):
    role: Literal["tool"]
    content: str
    tool_call_id: _NonEmpty
    name: str | None = None


class FinetuneLine(_Format):
    """One line of a fine-tuning file."""

    messages: Annotated[list[Annotated[_System | _User | _Assistant | _ToolResult, Field(discriminator="role")]],
                        Field(min_length=1)]
    tools: Annotated[list[_Tool], Field(min_length=1)] = Field(default_factory=list)  # absent: no tools
    parallel_tool_calls: bool = True


def _references(line: FinetuneLine) -> list[str]:
    """What the models cannot check alone: the answer comes last, tools are named once, every call names a
    tool and has its own id, and a tool result answers an earlier call."""
    problems: list[str] = []
    tools: dict[str, None] = {}  # in their order
    for i, tool in enumerate(line.tools):
        if tool.function.name in tools:
            problems.append(f"tools.{i}.function.name: {tool.function.name!r} is defined twice")
        tools[tool.function.name] = None
    calls: set[str] = set()
    for i, message in enumerate(line.messages):
        if isinstance(message, _ToolResult) and message.tool_call_id not in calls:
            problems.append(f"messages.{i}.tool_call_id: {message.tool_call_id!r} answers no earlier tool call")
        for j, call in enumerate(getattr(message, "tool_calls", None) or []):
            where = f"messages.{i}.tool_calls.{j}"
            if call.id in calls:
                problems.append(f"{where}.id: {call.id!r} is used twice")
            calls.add(call.id)
            name = call.function.name
            if not tools:
                problems.append(f"{where}.function.name: {name!r} is called but the line has no tools")
            elif name not in tools:
                problems.append(f"{where}.function.name: {name!r} is not in tools (defined: {', '.join(tools)})")
    if not isinstance(line.messages[-1], _Assistant):
        problems.append(f"messages.{len(line.messages) - 1}: the last message must be the assistant's answer, "
                        f"not role {line.messages[-1].role!r}")
    return problems


def validate_line(obj: Any) -> list[str]:
    """Problems of one parsed line against OpenAI's chat fine-tuning format (function calling); empty when
    it is fine. Each problem names where it is, e.g. `messages.2.tool_calls.0.function.arguments: ...`."""
    try:
        line = FinetuneLine.model_validate(obj)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = list(error["loc"])
            if loc[:1] == ["messages"] and len(loc) > 2:
                del loc[2]  # the union's tag (the message's role)
            given = error["input"]
            if error["type"] not in ("missing", "extra_forbidden") and isinstance(given, str | int | float | None):
                error["msg"] += f" (got {reprlib.repr(given)})"
            problems.append(f"{'.'.join(map(str, loc))}: {error['msg']}" if loc else error["msg"])
        return problems
    return _references(line)


def validate_file(path: Path) -> list[str]:
    """Problems of a JSONL fine-tuning file, each prefixed with its 1-based line number."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"cannot read {path}: {exc}"]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if not lines:
        return [f"{path}: no examples"]
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            problems.append(f"line {number}: blank line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc})")
            continue
        problems += [f"line {number}: {p}" for p in validate_line(obj)]
    return problems


# -- building examples -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Example:
    doc_id: str
    source: str  # "labeled" | "agreed" | "production"
    line: dict[str, Any]
    chars: int  # system prompt + document text + answer arguments
    model: str | None  # the model that produced the result row (for token calibration)
    prompt_chars: int = 0  # system prompt + document text: what the journal counts as a document's prompt characters
    sent_chars: int = 0  # what else the request sends: the document's fence, the messages' framing, the tool (JSON)
    answer_chars: int = 0  # the answer's arguments (JSON)
    text: str = ""  # the document's text, read again from its source file
    values: dict[str, Any] = field(default_factory=dict)  # the answer, validated (JSON types)
    sha256: str = ""  # the document's bytes (the result row's content_sha256)


Example = _Example  # its public name: `extractor finetune-local` trains on the same examples


@dataclass(frozen=True)
class ExampleTokens:
    """What one fine-tuning example holds in tokens, as `export finetune` writes it: the prompt a fine-tuned model is
    sent (the system prompt without few-shot examples, the fenced document, the tool) and its answer (the forced
    tool call's arguments); the mean over the examples counted. Training bills both, a fine-tuned request the same."""

    prompt_tokens: float
    answer_tokens: float
    examples: int  # examples counted
    basis: str  # how the tokens were counted (`RequestRate.basis`)
    approximated: int = 0  # of them, documents that could not be read again: sized from the journal's characters

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.answer_tokens


def count_examples(examples: list[_Example], rate: RequestRate, approximated: int = 0) -> ExampleTokens | None:
    """The mean tokens of `examples` by the one estimate (`RequestRate.request_tokens`); None when there are none.
    `approximated`: how many of them `approximate_example` sized."""
    if not examples:
        return None
    prompt = sum(rate.request_tokens(e.prompt_chars, e.sent_chars) for e in examples)
    answer = sum(rate.tokens(e.answer_chars) for e in examples)
    n = len(examples)
    return ExampleTokens(prompt_tokens=prompt / n, answer_tokens=answer / n, examples=n, basis=rate.basis,
                         approximated=approximated)


def approximate_example(row: dict[str, Any], schema: Schema, prompt_chars: int) -> _Example:
    """The size of a row's fine-tuning example when its document can no longer be read: the text's length from
    the prompt characters the journal kept (`prompt_chars`, the system prompt with the schema's examples and the
    document), the answer from the row's values."""
    system = system_prompt(schema, examples=False)
    text_chars = max(0, prompt_chars - len(system_prompt(schema)))
    tool = request.tool(schema.model)
    framing = len(json.dumps(build_messages(system, ""), ensure_ascii=False)) - len(system)
    arguments = json.dumps({name: row.get(name) for name in schema.field_names}, ensure_ascii=False, default=str)
    return _Example(row["doc_id"], "production", {}, len(system) + text_chars + len(arguments), row.get("model"),
                    prompt_chars=len(system) + text_chars,
                    sent_chars=framing + len(json.dumps(tool, ensure_ascii=False)), answer_chars=len(arguments))


def run_strategy(summary: dict[str, Any] | None, model: str | None = None) -> str:
    """How a run asked its model: its summary's `strategy`; for a summary from before it was recorded (or a run
    killed before it had one) the `auto` default's choice: fields for the embedded model, whole otherwise."""
    if summary is not None and summary.get("strategy"):
        return str(summary["strategy"])
    backend = summary.get("backend") if summary is not None else None
    return "fields" if backend == "embedded" or (backend is None and model == EMBEDDED_MODEL) else "whole"


def example_rate(journal: Journal, model: str | None) -> RequestRate:
    """Tokens a character of a request in the shape a fine-tuning example has (one call for the whole schema), from
    `model`'s billed one-call (whole-strategy) extractions in the journal: fitted where their lengths allow, else
    averaged; the default rate when there are none (a field-by-field run's requests have another shape: they ask
    one question each, so their tokens say nothing about a whole-schema call)."""
    if model is None:
        return RequestRate(TokenRate(), None, 0)
    strategies = {run_id: run_strategy(summary, model) for run_id, summary in journal.runs_with_summaries()}
    rows = [r for r in journal.paid_extractions(model)
            if strategies.get(r.run_id, run_strategy(None, model)) == "whole" and not r.sampled]
    if not rows:
        return RequestRate(TokenRate(), None, 0)
    prompt = sum(r.prompt_tokens for r in rows)
    chars = sum(r.prompt_chars for r in rows)
    completion = sum(r.completion_tokens or 0 for r in rows)
    requests = sum(r.attempts or 1 for r in rows)
    observed = TokenRate(per_char=prompt / chars, completion=completion / requests, documents=len(rows))
    single = [(r.prompt_chars, r.prompt_tokens) for r in rows if (r.attempts or 1) == 1]
    return request_rate(observed, single, len(rows), max(requests, len(rows)))


def production_examples(settings: RunConfig, schema: Schema, rows: list[dict[str, Any]]) -> list[_Example]:
    """Fine-tuning examples, built as `export finetune` builds them, from production result rows (ok rows whose
    document can still be read with the bytes it was extracted from): what a fine-tuned model would be sent for
    them, and answer."""
    system = system_prompt(schema, examples=False)
    tool = request.tool(schema.model)
    out: list[_Example] = []
    for row in rows:
        if row.get("status") != "ok":
            continue
        values = {name: row.get(name) for name in schema.field_names}
        example, _ = _example(row, values, "production", schema, system, tool, settings)
        if example is not None:
            out.append(example)
    return out


def _call_id(doc_id: str) -> str:
    return "call_" + hashlib.sha256(doc_id.encode()).hexdigest()[:24]


def _agreement(path: Path) -> dict[str, float]:
    """doc_id -> consistency of its newest measurement with at least MIN_SAMPLES samples."""
    metrics = pl.read_parquet(path)
    missing = {"doc_id", "consistency"} - set(metrics.columns)
    if missing:
        raise ConfigError(f"{path} lacks column(s) {', '.join(sorted(missing))}: is it an extractor metrics file?")
    if "samples" in metrics.columns:
        metrics = metrics.filter(pl.col("samples") >= MIN_SAMPLES)
    metrics = metrics.filter(pl.col("consistency").is_not_null() & pl.col("consistency").is_not_nan())
    if "run_id" in metrics.columns:  # run ids sort by start time
        metrics = metrics.sort("run_id", nulls_last=False)
    newest = metrics.group_by("doc_id", maintain_order=True).last()
    return dict(zip(newest["doc_id"].to_list(), newest["consistency"].to_list(), strict=True))


def _read_text(row: dict[str, Any], settings: RunConfig) -> tuple[str | None, Skipped | None]:
    doc_id = row["doc_id"]
    path = Path(row["source_path"]) if row.get("source_path") else None
    archive_dir = settings.archive_dir  # where `run --archive` moved ok inputs
    if (path is None or not path.is_file()) and archive_dir is not None:
        archived = archive_dir / doc_id
        if archived.is_file():
            path = archived
    if path is None or not path.exists():
        return None, Skipped(doc_id, MISSING, f"{row.get('source_path')} does not exist")
    try:
        doc = load_document(SourceFile.of(path, doc_id), max_chars=settings.max_chars)
    except DocumentError as exc:
        return None, Skipped(doc_id, UNREADABLE, str(exc))
    if row.get("content_sha256") and doc.sha256 != row["content_sha256"]:
        return None, Skipped(doc_id, CHANGED, f"{path} no longer has the bytes the result was extracted from")
    return doc.text, None


def _example(row: dict[str, Any], values: dict[str, Any], source: str, schema: Schema, system: str,
             tool: dict[str, Any], settings: RunConfig) -> tuple[_Example | None, Skipped | None]:
    doc_id = row["doc_id"]
    try:
        answer = schema.model.model_validate(values)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5])
        return None, Skipped(doc_id, INVALID, where)
    text, skipped = _read_text(row, settings)
    if text is None:
        return None, skipped
    arguments = json.dumps(answer.model_dump(mode="json"), ensure_ascii=False)
    call = request.tool_call(schema.model, _call_id(doc_id), arguments)
    prompt = build_messages(system, text)
    line = {"messages": [*prompt, {"role": "assistant", "tool_calls": [call]}],
            "tools": [tool], "parallel_tool_calls": False}
    prompt_chars = len(system) + len(text)
    sent = len(json.dumps(prompt, ensure_ascii=False)) + len(json.dumps(tool, ensure_ascii=False)) - prompt_chars
    return _Example(doc_id, source, line, prompt_chars + len(arguments), row.get("model"), prompt_chars=prompt_chars,
                    sent_chars=sent, answer_chars=len(arguments), text=text,
                    values=answer.model_dump(mode="json"), sha256=row.get("content_sha256") or ""), None


def split_sizes(n: int, val_fraction: float) -> int:
    """Validation examples: the fraction rounded half up, at least 1 (of >= 2, when the fraction is
    above 0) and never all of them."""
    if n < 2 or val_fraction <= 0:
        return 0
    return min(n - 1, max(1, math.floor(n * val_fraction + 0.5)))


def _jsonl(examples: list[_Example]) -> bytes:
    lines = []
    for example in examples:
        text = json.dumps(example.line, ensure_ascii=False)
        problems = validate_line(json.loads(text))
        if problems:
            raise FinetuneFormatError(f"example for {example.doc_id} breaks the fine-tuning format: "
                                      + "; ".join(problems))
        lines.append(text + "\n")
    return "".join(lines).encode("utf-8")


@dataclass
class Selection:
    """What `export finetune` selects: the examples from labelled documents, then those from agreed unlabelled
    ones, and the report so far (counts, skips, notes)."""

    schema: Schema
    report: FinetuneReport
    labeled: list[_Example]
    agreed: list[_Example]

    @property
    def examples(self) -> list[_Example]:
        return self.labeled + self.agreed  # labelled first


def select_examples(config: FinetuneConfig) -> Selection:
    """The documents and values fine-tuning learns from (see the module docstring): one selection for the
    export's files and for `extractor finetune-local`."""
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    assert config.out_dir is not None
    report = FinetuneReport(schema=schema.name, target_model=config.target_model, out_dir=config.out_dir,
                            min_agreement=config.min_agreement, epochs=config.epochs)
    frame = corrected_results(schema, layout, labels_files=True)  # a person's correction over a file's value
    labelled: dict[str, dict[str, Any]] = {}
    if layout.journal.is_file():  # looking must not create a journal
        with Labels.open_readonly(layout.journal) as labels:
            labelled = labels.latest()
    rows = frame.sort("doc_id").to_dicts()
    for doc_id in sorted(set(labelled) - {r["doc_id"] for r in rows}):
        report.skipped.append(Skipped(doc_id, NOT_IN_RESULTS, "labels for a document results no longer hold"))

    metrics_path = layout.metrics
    agreement: dict[str, float] | None = None
    if metrics_path.exists():
        agreement = _agreement(metrics_path)
        report.metrics_path = metrics_path
    else:
        report.notes.append(f"no {metrics_path}: only labelled documents were used (measure self-consistency "
                            "to add unlabelled documents whose answers agree)")

    system = system_prompt(schema, examples=False)
    tool = request.tool(schema.model)  # what the backend sends (llm.request), in every example
    fields = schema.field_names
    required = [name for name, f in schema.model.model_fields.items() if f.is_required()]
    from_labels: list[_Example] = []
    agreed: list[_Example] = []
    for row in rows:
        fixed = [name for name in labelled.get(row["doc_id"], {}) if name in schema.model.model_fields]
        if fixed:
            if row["status"] == "ok":
                values = {name: row[name] for name in fields}
            else:
                absent = [name for name in required if name not in fixed]
                if absent:
                    report.skipped.append(Skipped(row["doc_id"], INCOMPLETE,
                                                  f"status {row['status']}; unlabelled: {', '.join(absent)}"))
                    continue
                values = {name: row[name] for name in fixed}  # the rest take the schema's defaults
            source, bucket = "labeled", from_labels
        elif row["status"] == "ok" and agreement is not None:
            score = agreement.get(row["doc_id"])
            if score is None or score < config.min_agreement:
                report.not_agreed += 1
                continue
            values = {name: row[name] for name in fields}
            source, bucket = "agreed", agreed
        else:
            continue
        example, skipped = _example(row, values, source, schema, system, tool, settings)
        if skipped is not None:
            report.skipped.append(skipped)
        else:
            assert example is not None
            bucket.append(example)
    report.labeled, report.agreed = len(from_labels), len(agreed)
    return Selection(schema, report, from_labels, agreed)


def export_finetune(config: FinetuneConfig) -> FinetuneReport:
    """Write train.jsonl and validation.jsonl under `config.out_dir`; see the module docstring."""
    selection = select_examples(config)
    report, layout = selection.report, config.settings.layout
    assert config.out_dir is not None
    tool = request.tool(selection.schema.model)
    examples = selection.examples  # labelled first; each file keeps this order
    n_val = split_sizes(len(examples), config.val_fraction)
    picked = set(random.Random(config.seed).sample(range(len(examples)), n_val))
    train = [e for i, e in enumerate(examples) if i not in picked]
    validation = [e for i, e in enumerate(examples) if i in picked]
    train_bytes, validation_bytes = _jsonl(train), _jsonl(validation)  # validated before anything is written

    train_path, validation_path = config.out_dir / "train.jsonl", config.out_dir / "validation.jsonl"
    for path, data in ((train_path, train_bytes), (validation_path, validation_bytes)):
        if data:
            write_atomic_bytes(path, data)
        else:
            path.unlink(missing_ok=True)  # a stale file from an earlier export would mislead
    report.train_count, report.validation_count = len(train), len(validation)
    report.train_path = train_path if train else None
    report.validation_path = validation_path if validation else None
    report.train_doc_ids = [e.doc_id for e in train]
    report.validation_doc_ids = [e.doc_id for e in validation]
    if not examples:
        report.warnings.append("no usable examples: label documents (export, correct, import-corrections) "
                               "or measure self-consistency first")
    elif len(train) < OPENAI_MIN_TRAIN_EXAMPLES:
        report.warnings.append(f"{len(train)} training example(s): OpenAI needs at least "
                               f"{OPENAI_MIN_TRAIN_EXAMPLES} to start a fine-tuning job")
    if examples and len(train) < assumed.TRAINING_EXAMPLES:
        report.warnings.append(
            f"{len(train)} training example(s) is far below the {assumed.TRAINING_EXAMPLES} `extractor breakeven` "
            "assumes a fine-tune needs (--training-examples): its cost and payback are for that many, and a model "
            "trained on fewer may not beat prompting; measure it before labelling more")
    if examples:
        report.next_steps = _next_steps(report)

    _estimate(report, train, validation, tool, layout.journal, config)
    return report


def _next_steps(report: FinetuneReport) -> list[str]:
    """What to do with the files: train, measure the result against the prompt, then decide."""
    files = f"{report.train_path}" + (f" (and {report.validation_path} as validation data)"
                                      if report.validation_path else "")
    held = (f"; the {report.validation_count} validation document(s) are held out of training, so an experiment "
            "can score the fine-tuned model on documents it never saw" if report.validation_count else "")
    return [
        f"upload {files} and start a fine-tuning job of {report.target_model} (OpenAI's dashboard or its "
        "fine-tuning API); the job names the model it makes, ft:...",
        "measure it as a variant beside today's prompt: `extractor experiment INPUT_DIR --labels FILE --variant "
        f"examples=static --variant model=ft:...`{held}",
        "read the verdict: `extractor breakeven --target 0.95` (a measured fine-tuned model counts with its "
        "accuracy, its training spent)",
    ]


def _estimate(report: FinetuneReport, train: list[_Example], validation: list[_Example], tool: dict[str, Any],
              journal_path: Path, config: FinetuneConfig) -> None:
    """Tokens and training cost, counted as the break-even counts a training example (`count_examples`): at the
    rate of the journal's one-call extractions by the model that produced the rows (`example_rate`: fitted, with
    the tool schema and framing apart, where their lengths allow), else 4 characters a token over everything sent."""
    models = Counter(e.model for e in [*train, *validation] if e.model)
    model = models.most_common(1)[0][0] if models else None
    rate = RequestRate(TokenRate(), None, 0)
    if model is not None and journal_path.is_file():
        with Journal.open_readonly(journal_path) as journal:
            rate = example_rate(journal, model)
    report.train_chars = sum(e.chars for e in train)
    report.validation_chars = sum(e.chars for e in validation)
    report.tokens_per_char = rate.rate.per_char
    if rate.rate.calibrated:
        report.token_basis = "calibrated"
        report.token_basis_text = f"calibrated on {model}: {rate.basis}"
    else:
        why = f"no one-call extraction by {model} in the journal" if model else "nothing to calibrate"
        report.token_basis = "default"
        report.token_basis_text = (f"default: {rate.rate.chars_per_token:g} characters per token over everything "
                                   f"sent, tool definition ({len(json.dumps(tool, ensure_ascii=False)):,} "
                                   f"characters) included; {why}")

    def tokens(examples: list[_Example]) -> int:
        counted = count_examples(examples, rate)
        return math.ceil(round(counted.tokens * counted.examples, 6)) if counted is not None else 0

    report.train_tokens = tokens(train)
    report.validation_tokens = tokens(validation)
    table = finetune_prices(config.settings.finetune_prices)
    report.prices_as_of = table.as_of
    try:
        price = table.get(config.target_model)
    except KeyError as exc:
        report.warnings.append(str(exc.args[0]))
        return
    report.training_price_per_mtok = price.training_per_mtok
    report.training_cost_usd = report.train_tokens * config.epochs * price.training_per_mtok / 1e6


__all__ = [
    "Example",
    "ExampleTokens",
    "FinetuneConfig",
    "FinetuneFormatError",
    "FinetuneReport",
    "Selection",
    "Skipped",
    "approximate_example",
    "count_examples",
    "example_rate",
    "export_finetune",
    "production_examples",
    "run_strategy",
    "select_examples",
    "split_sizes",
    "validate_file",
    "validate_line",
]
