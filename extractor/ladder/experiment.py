"""`extractor experiment`: run named variants of the settings over a labeled sample and compare them.

A variant is a SPEC of comma-separated `setting=value` overrides of this invocation's settings
(`examples=similar:3`, `model=gpt-4.1-mini,examples=static`, `schemas=schemas_v2`). Each variant is an
ordinary run (`runner.run`: the same intake, journal, accounting, evidence and consistency), restricted to
the labeled documents of the input folder, in an output folder of its own (`Layout.experiment_output`) so
that a trial's values never become the team's results; a variant run again reuses its stored results
like any incremental run. Its rows are then scored with `extractor eval`'s scoring against the labels
store (the team's corrections and labels files, plus `--labels FILE`), and one row per variant and field
is appended to `outputs/<schema>/experiments.parquet` (`table.experiments_schema()`), which
`extractor breakeven --target` and `extractor report` read.

A labeled document is never its own example: retrieval (`similar:K`) leaves out the document itself, its
bytes and near-duplicates of it, so every sample document is a leave-one-out case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from extractor.config import RunConfig
from extractor.documents import SourceFile, discover, sha256_file
from extractor.errors import ConfigError, DocumentError, ExperimentStopped
from extractor.extraction import runner
from extractor.extraction.plan import Plan, plan
from extractor.extraction.recorder import Observer, RunSummary
from extractor.llm.finetuned import read_manifest
from extractor.quality.evaluation import read_labels_file, store_labels_file
from extractor.schemas import Schema, load_schema
from extractor.store import Journal, Labels, frame_from_json_rows, write_parquet_atomic
from extractor.table import OVERALL, experiments_schema, row_schema
from extractor.values.metrics import FieldScore, RecordScore, score

# What a variant may change: the settings that shape an extraction (and its identity). Names are RunConfig's,
# `schemas` is the --schemas folder (another version of the schema's module: a prompt/schema version).
VARIANT_SETTINGS = ("schema", "schemas_dir", "model", "base_url", "backend", "model_path", "mode", "strategy",
                    "examples", "retrieval", "samples", "sample_fraction", "sample_temperature", "temperature",
                    "max_tokens", "max_reasks", "max_chars", "context_tokens", "pages", "vision",
                    "logprobs")
_ALIASES = {"schemas": "schemas_dir", "prompt": "schemas_dir"}


def parse_variant(spec: str) -> dict[str, Any]:
    """`setting=value,setting=value` -> typed overrides of RunConfig. Raises ConfigError naming the SPEC."""
    hints = typing.get_type_hints(RunConfig)
    overrides: dict[str, Any] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name = _ALIASES.get(name.strip(), name.strip().replace("-", "_"))
        raw = raw.strip()
        if not sep or not raw:
            raise ConfigError(f"variant {spec!r}: {part!r} is not setting=value "
                              "(e.g. --variant examples=similar:3 --variant model=gpt-4.1-mini,examples=static)")
        if name not in VARIANT_SETTINGS:
            raise ConfigError(f"variant {spec!r}: {name!r} cannot vary in an experiment; settings that can: "
                              f"{', '.join(sorted({*VARIANT_SETTINGS, *_ALIASES} - {'schemas_dir'}))}")
        if name in overrides:
            raise ConfigError(f"variant {spec!r} sets {name} twice")
        overrides[name] = _typed(spec, name, raw, hints[name])
    return overrides


def _typed(spec: str, name: str, raw: str, hint: Any) -> Any:
    args = set(typing.get_args(hint)) or {hint}
    if raw.lower() in ("none", "null") and type(None) in args:
        return None
    if bool in args:  # logprobs=true
        if raw.lower() not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise ConfigError(f"variant {spec!r}: {name} must be true or false, not {raw!r}")
        return raw.lower() in ("true", "yes", "on", "1")
    try:
        if int in args:
            return int(raw)
        if float in args:
            return float(raw)
    except ValueError:
        raise ConfigError(f"variant {spec!r}: {name} must be a number, not {raw!r}") from None
    if Path in args:
        return Path(raw)
    return raw


@dataclass(frozen=True)
class ExperimentConfig:
    """`extractor experiment`: the invocation's settings (input folder, schema, model...), the variants to
    compare and the labels."""

    settings: RunConfig
    variants: tuple[str, ...]
    labels_file: Path | None = None  # stored in the labels store first, as `eval --labels` does
    limit: int | None = None  # at most this many labeled documents (a stable draw by doc_id)


@dataclass
class VariantResult:
    """One variant's measurements over the sample (the rows it appended to experiments.parquet)."""

    spec: str
    settings: RunConfig
    summary: RunSummary
    rows: list[dict[str, Any]]  # experiments.parquet rows: OVERALL first, then one per field

    @property
    def overall(self) -> dict[str, Any]:
        return self.rows[0]


@dataclass
class ExperimentReport:
    experiment_id: str
    sample: int  # labeled documents extracted by each variant
    labeled: int  # labeled documents in the labels store
    path: Path  # experiments.parquet
    variants: list[VariantResult] = field(default_factory=list)
    imported: int = 0
    rejected: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # labeled doc_ids that are not in the input folder

    @property
    def exit_code(self) -> int:
        return max((v.summary.exit_code for v in self.variants), default=0)


def variant_settings(settings: RunConfig, spec: str) -> RunConfig:
    """The settings of one variant: the invocation's, with the SPEC's overrides, in the experiment's own output
    folder, never archiving the team's inputs and never through the Batch API (answers are needed now)."""
    overrides = parse_variant(spec)
    try:
        return dataclasses.replace(settings, **overrides, output_dir=settings.layout.experiment_output,
                                   archive_dir=None, batch=False)
    except ConfigError as exc:
        raise ConfigError(f"variant {spec!r}: {exc}") from None


def sample_of(files: list[SourceFile], labels: Mapping[str, Any], limit: int | None) -> list[SourceFile]:
    """The labeled documents of the folder; with `limit`, a stable draw of that many (by a hash of the doc_id,
    so the same documents are drawn each time and a larger limit keeps the smaller one's)."""
    labeled = [f for f in files if f.doc_id in labels]
    if limit is not None:
        labeled = sorted(labeled, key=lambda f: hashlib.sha256(f.doc_id.encode()).hexdigest())[:limit]
        labeled.sort(key=lambda f: f.doc_id)
    return labeled


@dataclass
class _Prepared:
    schema: Schema
    variants: list[tuple[str, RunConfig]]
    files: list[SourceFile]


def _prepare(config: ExperimentConfig) -> _Prepared:
    """Every SPEC checked and the folder listed before anything is stored or sent."""
    settings = config.settings
    if settings.input_dir is None:
        raise ConfigError("which folder? give the input folder of labeled documents")
    if not config.variants:
        raise ConfigError("no variant to run: give at least one --variant SPEC, e.g. --variant examples=none "
                          "--variant examples=similar:3")
    if len(set(config.variants)) != len(config.variants):
        raise ConfigError("the same --variant is given twice")
    if config.limit is not None and config.limit < 1:
        raise ConfigError("--limit must be at least 1")
    schema = load_schema(settings.schemas_dir, settings.schema)
    variants = [(spec, variant_settings(settings, spec)) for spec in config.variants]
    for spec, vs in variants:
        if vs.schema != settings.schema:
            other = load_schema(vs.schemas_dir, vs.schema)
            if set(other.field_names) != set(schema.field_names):
                raise ConfigError(f"variant {spec!r}: schema {vs.schema} has other fields than {schema.name}; "
                                  "an experiment compares versions of one schema")
    try:
        files = discover(settings.input_dir)
    except DocumentError as exc:
        raise ConfigError(str(exc)) from None
    return _Prepared(schema, variants, files)


def trained_on(variants: list[tuple[str, RunConfig]]) -> dict[str, frozenset[str]]:
    """spec -> the doc_ids and content shas its model was fine-tuned on (`llm.finetuned`'s manifest beside a
    `model_path`), for the variants whose model has one."""
    out: dict[str, frozenset[str]] = {}
    for spec, vs in variants:
        manifest = read_manifest(vs.model_path)
        if manifest is not None:
            out[spec] = manifest.trained_on
    return out


def held_back(files: list[SourceFile], seen: frozenset[str]) -> list[SourceFile]:
    """The files no fine-tuned variant was trained on, by doc_id and by bytes (a renamed copy of a training
    document is a training document)."""
    if not seen:
        return files
    return [f for f in files if f.doc_id not in seen and (f.part is not None or sha256_file(f.path) not in seen)]


def _sample(config: ExperimentConfig, schema: Schema, files: list[SourceFile],
            labels: Mapping[str, Any], variants: list[tuple[str, RunConfig]] | None = None,
            ) -> tuple[list[SourceFile], list[str]]:
    """(the labeled documents of the folder, drawn to --limit; labeled doc_ids not in the folder). Where a variant
    is a locally fine-tuned model, every variant is scored on the same documents: those none of them was trained
    on (nothing trained is ever scored on its own training documents)."""
    settings = config.settings
    if not labels:
        raise ConfigError(f"no labels for schema {schema.name}: give --labels FILE (JSONL, CSV or Parquet keyed by "
                          "doc_id) or import people's corrections first (extractor import-corrections)")
    seen = trained_on(variants or [])
    if seen:
        pool = [f for f in files if f.doc_id in labels]
        files = held_back(pool, frozenset().union(*seen.values()))
        if not files:
            raise ConfigError(f"every labeled document of {settings.input_dir} was trained on by "
                              f"{', '.join(seen)}: there is nothing held back to score it on; train again with "
                              "--held-back (extractor finetune-local) or label more documents")
    sample = sample_of(files, labels, config.limit)
    unmatched = sorted(set(labels) - {f.doc_id for f in files})
    if not sample:
        example = f" (a label's doc_id: {unmatched[0]!r}" + (f"; a file's: {files[0].doc_id!r})" if files else ")")
        raise ConfigError(f"none of the {len(labels)} labeled documents is in {settings.input_dir}: a label's "
                          f"doc_id is the file's path relative to the input folder{example if unmatched else ''}")
    return sample, unmatched


def run_experiment(config: ExperimentConfig, observer: Callable[[str, RunConfig], Observer | None] | None = None,
                   ) -> ExperimentReport:
    """Run every variant over the labeled sample, score it and append its rows to experiments.parquet.

    `observer(spec, settings)` may return a progress observer for that variant's run. Each variant's rows are
    written as soon as it finishes, so an interrupted experiment keeps what it measured.
    """
    settings = config.settings
    prepared = _prepare(config)
    schema, variants = prepared.schema, prepared.variants
    for spec, vs in variants:  # every variant can run as named, or nothing is stored
        try:
            vs.require_reachable_model()
        except ConfigError as exc:
            raise ConfigError(f"variant {spec!r}: {exc}") from None
    main = Labels(settings.layout.journal)  # the team's labels store: --labels goes there, as with eval
    try:
        imported, rejected = (store_labels_file(main, config.labels_file, schema) if config.labels_file is not None
                              else (0, []))
        labels = main.latest()
        for journal in dict.fromkeys(vs.layout.journal for _, vs in variants):  # variants of one schema share one
            mirror = Labels(journal)
            try:
                mirror.mirror(main)
            finally:
                mirror.close()
    finally:
        main.close()
    sample, unmatched = _sample(config, schema, prepared.files, labels, variants)

    now = dt.datetime.now(dt.UTC)
    report = ExperimentReport(experiment_id=runner.new_run_id(now), sample=len(sample), labeled=len(labels),
                              path=settings.layout.experiments, imported=imported, rejected=rejected,
                              unmatched=unmatched)
    for spec, vs in variants:
        progress = observer(spec, vs) if observer is not None else None
        collected = _Collect(progress)
        try:
            summary = runner.run(vs, collected, files=sample)
        finally:
            if (close := getattr(progress, "close", None)) is not None:
                close()  # a progress bar ends with its variant
        if summary.aborted:
            # The server could not serve this variant (no such model, refused key): whatever it would measure
            # is not the model the variant names.
            raise ExperimentStopped(f"variant {spec} was not measured: {summary.aborted}; nothing was recorded for "
                                    f"it in {settings.layout.experiments}")
        rows = measure(vs, schema, spec, summary, list(collected.rows.values()), labels, report.experiment_id)
        report.variants.append(VariantResult(spec, vs, summary, rows))
        append_rows(settings.layout.experiments, rows)
        if summary.interrupted:
            break
    return report


@dataclass
class ExperimentPlan:
    """`extractor experiment --dry-run`: what each variant would send over the sample, and its estimated cost."""

    sample: int
    labeled: int
    variants: list[tuple[str, Plan]]
    rejected: list[str] = field(default_factory=list)

    @property
    def cost_usd(self) -> float | None:
        costs = [p.cost_usd for _, p in self.variants]
        return None if None in costs else sum(c for c in costs if c is not None)


def plan_experiment(config: ExperimentConfig) -> ExperimentPlan:
    """Each variant's dry run over the labeled sample, writing nothing: the labels are the store's as it is,
    with `--labels FILE` laid over them as storing it would (a person's correction still wins)."""
    settings = config.settings
    prepared = _prepare(config)
    from_file: dict[str, dict[str, Any]] = {}
    rejected: list[str] = []
    if config.labels_file is not None:
        from_file, rejected = read_labels_file(config.labels_file, prepared.schema)
    labels = from_file
    if settings.layout.journal.exists():
        with Labels.open_readonly(settings.layout.journal) as store:
            labels = store.latest_with_file(from_file)
    sample, _ = _sample(config, prepared.schema, prepared.files, labels, prepared.variants)
    return ExperimentPlan(sample=len(sample), labeled=len(labels), rejected=rejected,
                          variants=[(spec, plan(vs, files=sample, labels=labels)) for spec, vs in prepared.variants])


class _Collect:
    """The rows one variant's run committed (fresh or reused), passed on to a progress observer: exactly that
    run's word on each document, never another variant's row of the same document in the shared journal."""

    def __init__(self, inner: Observer | None) -> None:
        self.inner = inner
        self.rows: dict[str, dict[str, Any]] = {}

    def started(self, total: int, backend: str, model: str) -> None:
        if self.inner is not None:
            self.inner.started(total, backend, model)

    def finished(self, row: dict[str, Any], totals: RunSummary) -> None:
        self.rows[row["doc_id"]] = row
        if self.inner is not None:
            self.inner.finished(row, totals)


def measure(settings: RunConfig, schema: Schema, spec: str, summary: RunSummary, rows: list[dict[str, Any]],
            labels: Mapping[str, Mapping[str, Any]], experiment_id: str) -> list[dict[str, Any]]:
    """One variant's experiments.parquet rows: accuracy per field (eval's scoring of the variant's rows, typed as
    results.parquet types them, against the labels) and per-document tokens, cost and latency of those rows."""
    typed = frame_from_json_rows((json.dumps(r, default=str, ensure_ascii=False) for r in rows),
                                 row_schema(schema.model)).to_dicts()
    with Journal.open_readonly(settings.layout.journal) as journal:
        metrics = [m for r in rows if (m := journal.metrics_of(r["run_id"], r["doc_id"])) is not None]
    scores = score(typed, labels, schema.model)
    n = len(rows) or 1

    def mean(key: str) -> float:
        return sum(r.get(key) or 0 for r in rows) / n

    priced = all(r.get("cost_usd") is not None or not (r.get("prompt_tokens") or r.get("completion_tokens"))
                 for r in rows)
    timed = [r["latency_s"] for r in rows if r.get("latency_s") is not None]
    common = {
        "experiment_id": experiment_id, "finished_at": summary.finished_at, "variant": spec,
        "schema_version": summary.schema_version, "backend": summary.backend, "model": summary.model,
        "examples": settings.examples, "strategy": settings.resolved_strategy, "samples": settings.samples,
        "run_id": summary.run_id, "ok": sum(r["status"] == "ok" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
        "prompt_tokens_per_doc": mean("prompt_tokens"), "completion_tokens_per_doc": mean("completion_tokens"),
        "cached_tokens_per_doc": mean("cached_tokens"), "requests_per_doc": mean("attempts"),
        "cost_usd_per_doc": mean("cost_usd") if priced else None,
        "latency_s_per_doc": sum(timed) / len(timed) if timed else None,
        "spent_usd": summary.cost_usd, "labeled_pool": len(labels),
        "embedding_tokens_per_doc": summary.embedding_tokens / n,
        "embedding_usd_per_doc": None if summary.embedding_cost_usd is None else summary.embedding_cost_usd / n,
        **_finetuned_columns(settings, rows),
    }
    not_found = _not_found_shares(rows)
    agreement = _agreements(metrics)
    right = sum(s.right for s in scores)  # eval's headline: a list of objects counts each labeled item value
    values = sum(s.values for s in scores)
    out = [{**common, "field": OVERALL, "documents": len(rows), "accuracy": right / values if values else None,
            "labeled_values": values, "agreement": _mean(list(agreement.values())),
            "not_found_share": _share([flag for flags in not_found.values() for flag in flags])}]
    for s in scores:
        if isinstance(s, RecordScore):  # its not-found share over all its items' values, then a row per item field
            flags = [f for name, fs in not_found.items() if name.startswith(s.field + ".") for f in fs]
            out.append(_field_row(common, s, agreement.get(s.field), flags or None))
            out += [{**common, "field": f"{s.field}.{name}", "documents": s.documents, "accuracy": sub.accuracy,
                     "labeled_values": sub.values, "agreement": None,
                     "not_found_share": _share(not_found.get(f"{s.field}.{name}") or [])}
                    for name, sub in s.sub_fields.items()]
        else:
            out.append(_field_row(common, s, agreement.get(s.field), not_found.get(s.field)))
    return out


def _finetuned_columns(settings: RunConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a locally fine-tuned variant's manifest says of its training, and the model server's CPU seconds a
    document (what serving a local model costs)."""
    computed = [r["compute_s"] for r in rows if r.get("compute_s") is not None]
    manifest = read_manifest(settings.model_path)
    out: dict[str, Any] = {"compute_s_per_doc": sum(computed) / len(computed) if computed else None,
                           "finetuned": None, "trained_documents": None, "training_s": None,
                           "training_compute_s": None}
    if manifest is not None and settings.model_path is not None:
        out.update(finetuned=settings.model_path.name, trained_documents=len(manifest.train_doc_ids),
                   training_s=manifest.training_s, training_compute_s=manifest.compute_s)
    return out


def _field_row(common: dict[str, Any], s: FieldScore, agreement: float | None,
               not_found: list[bool] | None) -> dict[str, Any]:
    return {**common, "field": s.field, "documents": s.documents, "accuracy": s.accuracy,
            "labeled_values": s.values, "agreement": agreement, "not_found_share": _share(not_found or [])}


def _not_found_shares(rows: list[dict[str, Any]]) -> dict[str, list[bool]]:
    """Per leaf field: for each extracted value with evidence, whether it was not found in the document."""
    out: dict[str, list[bool]] = {}
    for row in rows:
        for entry in row.get("_evidence") or ():
            name = ".".join(p.split("[")[0] for p in entry["field"].split("."))  # skills[2] -> skills
            out.setdefault(name, []).append(entry.get("status") == "not_found")
    return out


def _agreements(metrics: list[dict[str, Any]]) -> dict[str, float]:
    """Mean self-consistency agreement per leaf field over the sampled documents."""
    sums: dict[str, list[float]] = {}
    for m in metrics:
        for key, value in m.items():
            if key.startswith("agree_") and value is not None:
                sums.setdefault(key.removeprefix("agree_"), []).append(float(value))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Add a variant's rows to experiments.parquet (earlier experiments stay: the report shows the newest)."""
    frame = pl.DataFrame(rows, schema=experiments_schema(), strict=False)
    if path.exists():
        frame = pl.concat([pl.read_parquet(path), frame], how="diagonal_relaxed")
    write_parquet_atomic(frame, path)

