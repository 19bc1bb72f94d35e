"""The report's data: what `build_report` gathers from a schema's outputs, and the text helpers every view shares.

Results, runs, self-consistency metrics and the journal (evaluations, drift) are read into plain dataclasses;
the views (`charts`, `html`, `terminal`) only format them. Optional inputs may be missing (no metrics, no
evals, no drift, no price for the model): `ReportData.notes[section]` then says why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from extractor.config import ModelPrice, RunConfig
from extractor.errors import ConfigError
from extractor.ladder.breakeven import BreakEvenConfig, breakeven_analysis, compare_experiments, verdict_for
from extractor.ladder.compare import Comparison, Verdict, quality_wall
from extractor.ladder.costmodel import Assumptions, BreakEven
from extractor.schemas import load_schema
from extractor.store import Journal, require_results


@dataclass(frozen=True)
class ReportConfig:
    """What to report on, where to write it, and the break-even assumptions that are not observed."""

    settings: RunConfig
    """The invocation's settings: the schema and its folders, [prices], base_url and [finetune_prices]."""
    out: Path | None = None
    """The HTML file; None: the layout's report.html (filled in on construction)."""
    assumptions: Assumptions = field(default_factory=Assumptions)
    """What the break-even assumes rather than observes (target model, training examples, ...)."""
    quality_threshold: float = 0.9
    quality_versions: int = 3
    target: float | None = None
    """Share of fields right the Experiments section recommends the cheapest option for; None: the table only."""
    target_model: InitVar[str | None] = None
    """Shorthand: replaces `assumptions.target_model` (folded into `assumptions` on construction)."""
    current_price: InitVar[ModelPrice | None] = None
    """Shorthand: replaces `assumptions.current_price` (folded into `assumptions` on construction)."""

    def __post_init__(self, target_model: str | None, current_price: ModelPrice | None) -> None:
        if self.out is None:
            object.__setattr__(self, "out", self.settings.layout.report)
        if self.target is not None:
            BreakEvenConfig(settings=self.settings, target=self.target)  # raises ConfigError when out of range
        shorthands = {"target_model": target_model, "current_price": current_price}
        given: dict[str, Any] = {name: value for name, value in shorthands.items() if value is not None}
        if given:
            object.__setattr__(self, "assumptions", dataclasses.replace(self.assumptions, **given))

    @property
    def report_path(self) -> Path:
        assert self.out is not None
        return self.out

    def breakeven_config(self) -> BreakEvenConfig:
        """The break-even the report shows: `extractor breakeven`'s analysis of the latest run's model."""
        return BreakEvenConfig(settings=self.settings, assumptions=self.assumptions, target=self.target)


@dataclass(frozen=True)
class Headline:
    """Totals of the current results and of all runs."""

    documents: int
    ok: int
    failed: int
    skipped: int
    results_cost_usd: float | None  # what the current results cost; None when no row is priced
    unpriced_documents: int  # rows that used tokens but carry no cost (no price for the model)
    runs: int
    spent_usd: float | None  # across all priced runs, re-extractions included; None: no priced run
    unpriced_runs: int

    @property
    def cost_per_ok_usd(self) -> float | None:
        """Cost of all current results (failures included) per ok document."""
        if self.results_cost_usd is None or self.ok == 0:
            return None
        return self.results_cost_usd / self.ok


@dataclass(frozen=True)
class RunPoint:
    run_id: str
    started_at: str
    model: str
    schema_version: str
    documents: int
    ok: int
    failed: int
    skipped: int
    cached: int
    cost_usd: float | None
    wall_s: float | None


@dataclass(frozen=True)
class DocRow:
    """One document for the tables: the costliest and the ones that did not succeed."""

    doc_id: str
    status: str
    cost_usd: float | None
    prompt_tokens: int
    completion_tokens: int
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True)
class DriftRow:
    transition: str
    field: str | None  # None: the transition changed no field
    documents: int
    changed: int

    @property
    def share(self) -> float:
        return self.changed / self.documents if self.documents else 0.0


@dataclass(frozen=True)
class EvalSnapshot:
    evaluated_at: str
    schema_version: str
    model: str
    documents: int  # labeled documents of the best-covered field
    accuracy: dict[str, float]


@dataclass
class ReportData:
    """Everything the report shows; `notes[section]` says why a section is empty."""

    config: ReportConfig
    schema_name: str
    schema_version: str
    generated_at: str
    headline: Headline
    runs: list[RunPoint]
    doc_costs: list[float]
    costliest: list[DocRow]
    problems: list[DocRow]
    problem_count: int
    agreement: dict[str, float]
    sampled: int
    accuracy: EvalSnapshot | None
    drift: list[DriftRow]
    breakeven: BreakEven | None
    quality_history: list[tuple[str, dict[str, float]]]
    quality_wall: list[str]
    notes: dict[str, str] = field(default_factory=dict)
    experiments: Comparison | None = None
    """The measured variants against the fine-tuned model (experiments.parquet); None when there is none."""
    verdict: Verdict | None = None
    """The one verdict of the break-even and the experiments (`extractor breakeven`'s); None without either."""

    @property
    def latest_run(self) -> RunPoint | None:
        return self.runs[-1] if self.runs else None



# -- gathering -----------------------------------------------------------------------------------------


def build_report(config: ReportConfig) -> ReportData:
    """Read results, runs, metrics and the journal of the settings' schema; raises ConfigError without results."""
    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    layout = settings.layout
    results_path = require_results(layout)
    results = pl.read_parquet(results_path).with_columns(pl.col("status").cast(pl.String))
    notes: dict[str, str] = {}

    runs = _runs(layout.runs)
    if not runs:
        notes["runs"] = f"No run history: {layout.runs} does not exist."
    headline = _headline(results, runs)

    doc_costs = results.filter(pl.col("cost_usd") > 0)["cost_usd"].to_list()
    if results.height == 0:
        notes["cost"] = "The results hold no document yet."
    elif not doc_costs and headline.unpriced_documents:
        models = ", ".join(sorted(set(results.filter(pl.col("cost_usd").is_null())["model"].drop_nulls())))
        notes["cost"] = (f"No document has a cost: {headline.unpriced_documents} used tokens of a model with no "
                         f"known price ({models}); set its price under [prices] in the config file.")
    elif not doc_costs:
        notes["cost"] = ("No document has a cost above zero: the model runs locally for free (the embedded model), "
                         "or every document failed before reaching it.")
    if runs and all(r.cost_usd is None for r in runs):
        notes["runs"] = "No run has a cost: no run's model has a known price."
    costliest = _doc_rows(results.filter(pl.col("cost_usd") > 0).sort("cost_usd", descending=True).head(5))
    not_ok = results.filter(pl.col("status") != "ok").sort("doc_id")
    problems = _doc_rows(not_ok.head(20))

    agreement, sampled = _agreement(layout.metrics)
    if not agreement:
        notes["agreement"] = ("No self-consistency metrics: no run sampled documents more than once "
                              "(run with --samples K to measure how often the model agrees with itself).")

    journal_path = layout.journal
    summaries: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    if journal_path.is_file():
        with Journal.open_readonly(journal_path) as journal:
            summaries = journal.run_summaries()
            history = journal.eval_history()
    else:
        for key in ("accuracy", "drift", "breakeven", "quality"):
            notes[key] = f"No journal: {journal_path} does not exist."

    accuracy = _latest_eval(history)
    if accuracy is None:
        notes.setdefault("accuracy", "No evaluation recorded: run `extractor eval --labels FILE` to score the "
                                     "results against labeled documents.")
    drift = _drift(summaries)
    if not drift:
        notes.setdefault("drift", "No drift recorded: drift is measured when a document already extracted under "
                                  "one schema version or model is extracted again under another, and that has "
                                  "not happened yet.")

    versions = _quality_history(history)
    wall = quality_wall(versions, threshold=config.quality_threshold, last=config.quality_versions)
    if len(versions) < 2:
        notes.setdefault("quality", f"The quality wall needs evaluations of at least two schema versions; the "
                                    f"journal has {len(versions)}. Run `extractor eval` after each prompt change.")

    breakeven: BreakEven | None = None
    if "breakeven" not in notes:
        try:
            breakeven = breakeven_analysis(config.breakeven_config())
        except ConfigError as exc:  # nothing billed to project from, or no price: the message says which
            notes["breakeven"] = _sentence(str(exc))

    experiments: Comparison | None = None
    if layout.experiments.is_file():
        try:
            experiments = compare_experiments(config.breakeven_config(), breakeven)
        except ConfigError as exc:  # unreadable, empty, or no monthly volume: the message says which
            notes["experiments"] = _sentence(str(exc))

    verdict = (verdict_for(config.breakeven_config(), breakeven, experiments)
               if breakeven is not None or experiments is not None else None)
    return ReportData(
        config=config, schema_name=schema.name, schema_version=schema.version,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), headline=headline, runs=runs,
        doc_costs=doc_costs, costliest=costliest, problems=problems, problem_count=not_ok.height,
        agreement=agreement, sampled=sampled, accuracy=accuracy, drift=drift, breakeven=breakeven,
        quality_history=versions, quality_wall=wall, notes=notes, experiments=experiments, verdict=verdict)


def _runs(path: Path) -> list[RunPoint]:
    if not path.exists():
        return []
    frame = pl.read_parquet(path).sort("started_at")
    return [RunPoint(run_id=r["run_id"], started_at=r["started_at"] or "", model=r["model"] or "",
                     schema_version=r["schema_version"] or "", documents=r["documents"] or 0, ok=r["ok"] or 0,
                     failed=r["failed"] or 0, skipped=r["skipped"] or 0, cached=r["cached"] or 0,
                     cost_usd=r["cost_usd"], wall_s=r["wall_s"]) for r in frame.iter_rows(named=True)]


def _headline(results: pl.DataFrame, runs: list[RunPoint]) -> Headline:
    counts = dict(results.group_by("status").len().iter_rows())
    priced = results["cost_usd"].drop_nulls()
    used_tokens = (pl.col("prompt_tokens").fill_null(0) + pl.col("completion_tokens").fill_null(0)) > 0
    unpriced = results.filter(pl.col("cost_usd").is_null() & used_tokens).height
    run_costs = [r.cost_usd for r in runs if r.cost_usd is not None]
    return Headline(
        documents=results.height, ok=counts.get("ok", 0), failed=counts.get("failed", 0),
        skipped=counts.get("skipped", 0), results_cost_usd=float(priced.sum()) if len(priced) else None,
        unpriced_documents=unpriced, runs=len(runs), spent_usd=sum(run_costs) if run_costs else None,
        unpriced_runs=sum(1 for r in runs if r.cost_usd is None))


def _doc_rows(frame: pl.DataFrame) -> list[DocRow]:
    return [DocRow(doc_id=r["doc_id"], status=r["status"], cost_usd=r["cost_usd"],
                   prompt_tokens=r["prompt_tokens"] or 0, completion_tokens=r["completion_tokens"] or 0,
                   error_type=r["error_type"], error_message=r["error_message"])
            for r in frame.iter_rows(named=True)]


def _agreement(path: Path) -> tuple[dict[str, float], int]:
    if not path.exists():
        return {}, 0
    frame = pl.read_parquet(path)
    out: dict[str, float] = {}
    for name in frame.columns:
        if name.startswith("agree_"):
            mean = frame[name].drop_nulls().mean()
            if isinstance(mean, int | float):
                out[name.removeprefix("agree_")] = float(mean)
    return out, frame.height


def _latest_eval(history: list[dict[str, Any]]) -> EvalSnapshot | None:
    if not history:
        return None
    last = max(r["evaluated_at"] for r in history)
    version = [r for r in history if r["evaluated_at"] == last][-1]["schema_version"]
    # evaluated_at has whole seconds: two evaluations in one second are told apart by their version
    rows = [r for r in history if r["evaluated_at"] == last and r["schema_version"] == version]
    return EvalSnapshot(evaluated_at=last, schema_version=rows[-1]["schema_version"], model=rows[-1]["model"],
                        documents=max(r["documents"] for r in rows),
                        accuracy={r["field"]: r["accuracy"] for r in rows if r["accuracy"] is not None})


def _quality_history(history: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """Per schema version (ordered by its first evaluation), the accuracies of its latest evaluation."""
    first: dict[str, str] = {}
    latest: dict[str, str] = {}
    for r in history:
        first.setdefault(r["schema_version"], r["evaluated_at"])
        latest[r["schema_version"]] = max(latest.get(r["schema_version"], ""), r["evaluated_at"])
    out = []
    for version in sorted(first, key=lambda v: first[v]):
        scores = {r["field"]: r["accuracy"] for r in history if r["schema_version"] == version
                  and r["evaluated_at"] == latest[version] and r["accuracy"] is not None}
        out.append((version, scores))
    return out


def _drift(summaries: list[dict[str, Any]]) -> list[DriftRow]:
    totals: dict[str, tuple[int, dict[str, int]]] = {}
    for summary in summaries:
        for label, item in (summary.get("drift") or {}).items():
            docs, changed = totals.get(label, (0, {}))
            for name, count in (item.get("changed") or {}).items():
                changed[name] = changed.get(name, 0) + int(count)
            totals[label] = (docs + int(item.get("documents") or 0), changed)
    rows: list[DriftRow] = []
    for label, (docs, changed) in totals.items():
        if not changed:
            rows.append(DriftRow(transition=label, field=None, documents=docs, changed=0))
        for name, count in sorted(changed.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(DriftRow(transition=label, field=name, documents=docs, changed=count))
    return rows


def _sentence(message: str) -> str:
    """An error message as a note: capitalized, ending with a full stop."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")



# -- shared by the views -------------------------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def escape(value: object) -> str:
    """HTML-escaped text, with any URL scheme removed: the report carries no link or address to follow."""
    return html.escape(_SCHEME.sub("", str(value)))


def when(iso: str) -> str:
    """An ISO timestamp as `2025-06-01 02:00:13 UTC` (as given when it does not parse)."""
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo is not None else "")

