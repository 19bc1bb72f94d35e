"""One self-contained HTML report of a schema's outputs: volume, cost, quality, drift and fine-tuning break-even.

The file stands alone: inline CSS, charts as inline SVG drawn by matplotlib (Agg), no JavaScript and no
URL of any kind, so it can be mailed or archived and opened offline. Every piece of text taken from
documents, the journal or the configuration is escaped. Optional inputs may be missing (no
self-consistency metrics, no evals, no drift, no price for the model): their section then says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import html
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Console
from rich.markup import escape as markup_escape

from extractor.breakeven import (
    Assumptions,
    BreakEven,
    BreakEvenConfig,
    _num,
    _usd,
    breakeven_analysis,
    quality_wall,
)
from extractor.config import ModelPrice
from extractor.errors import ConfigError
from extractor.schemas import load_schema
from extractor.store import JOURNAL_FILE, Journal, write_atomic_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SECTION_TITLES: dict[str, str] = {
    "headline": "Headline numbers",
    "cost": "Cost per document",
    "runs": "Cost per run",
    "agreement": "Per-field agreement",
    "accuracy": "Per-field accuracy",
    "drift": "Drift across versions",
    "breakeven": "Fine-tuning break-even",
    "quality": "Quality wall",
}
"""Section id -> heading, in report order."""


@dataclass(frozen=True)
class ReportConfig:
    """What to report on, where to write it, and the break-even assumptions that are not observed."""

    schema: str
    schemas_dir: Path = Path("schemas")
    output_dir: Path = Path("outputs")
    out: Path | None = None
    """The HTML file; None: `<output_dir>/<schema>/report.html` (filled in on construction)."""
    assumptions: Assumptions = field(default_factory=Assumptions)
    """What the break-even assumes rather than observes (target model, training examples, ...)."""
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    """`[prices."<model>"]` tables of the config file: today's model, when genai-prices does not know it."""
    base_url: str | None = None
    """The server today's model is called on, to match its provider's prices."""
    quality_threshold: float = 0.9
    quality_versions: int = 3
    price_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """`[finetune_prices."<model>"]` tables of the config file."""
    target_model: InitVar[str | None] = None
    """Shorthand: replaces `assumptions.target_model` (folded into `assumptions` on construction)."""
    current_price: InitVar[ModelPrice | None] = None
    """Shorthand: replaces `assumptions.current_price` (folded into `assumptions` on construction)."""

    def __post_init__(self, target_model: str | None, current_price: ModelPrice | None) -> None:
        if self.out is None:
            object.__setattr__(self, "out", self.output_dir / self.schema / "report.html")
        shorthands = {"target_model": target_model, "current_price": current_price}
        given = {name: value for name, value in shorthands.items() if value is not None}
        if given:
            object.__setattr__(self, "assumptions", dataclasses.replace(self.assumptions, **given))

    @property
    def schema_dir(self) -> Path:
        return self.output_dir / self.schema

    @property
    def report_path(self) -> Path:
        assert self.out is not None
        return self.out

    def breakeven_config(self) -> BreakEvenConfig:
        """The break-even the report shows: `extractor breakeven`'s analysis of the latest run's model."""
        return BreakEvenConfig(schema=self.schema, schemas_dir=self.schemas_dir, output_dir=self.output_dir,
                               assumptions=self.assumptions, prices=self.prices, base_url=self.base_url,
                               price_overrides=self.price_overrides)


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

    @property
    def latest_run(self) -> RunPoint | None:
        return self.runs[-1] if self.runs else None


# -- gathering -----------------------------------------------------------------------------------------


def build_report(config: ReportConfig) -> ReportData:
    """Read results, runs, metrics and the journal of `config.schema`; raises ConfigError without results."""
    schema = load_schema(config.schemas_dir, config.schema)
    schema_dir = config.schema_dir
    results_path = schema_dir / "results.parquet"
    if not results_path.exists():
        raise ConfigError(f"no results yet: {results_path} does not exist (run `extractor run` first)")
    results = pl.read_parquet(results_path).with_columns(pl.col("status").cast(pl.String))
    notes: dict[str, str] = {}

    runs = _runs(schema_dir / "runs.parquet")
    if not runs:
        notes["runs"] = f"No run history: {schema_dir / 'runs.parquet'} does not exist."
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

    agreement, sampled = _agreement(schema_dir / "metrics.parquet")
    if not agreement:
        notes["agreement"] = ("No self-consistency metrics: no run sampled documents more than once "
                              "(run with --samples K to measure how often the model agrees with itself).")

    journal_path = schema_dir / JOURNAL_FILE
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

    return ReportData(
        config=config, schema_name=schema.name, schema_version=schema.version,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), headline=headline, runs=runs,
        doc_costs=doc_costs, costliest=costliest, problems=problems, problem_count=not_ok.height,
        agreement=agreement, sampled=sampled, accuracy=accuracy, drift=drift, breakeven=breakeven,
        quality_history=versions, quality_wall=wall, notes=notes)


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


# -- charts --------------------------------------------------------------------------------------------

_BLUE, _GREEN, _PURPLE, _AMBER, _GREY = "#2563eb", "#16a34a", "#7c3aed", "#d97706", "#6b7280"
_PALETTE = (_BLUE, _AMBER, _GREEN, _PURPLE, "#db2777", "#0891b2", "#65a30d", "#9f1239")
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: small, sharp, selectable
    "svg.hashsalt": "extractor-report",  # stable ids from one report to the next
    "text.parse_math": False,  # "$" in a label is a dollar, not TeX
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9ca3af",
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
}
_LABEL_BOX = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_IDS = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


@contextlib.contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _svg(fig: Figure, label: str) -> str:
    """The figure as inline SVG: no XML prolog, no namespace URLs, ids made unique to this chart."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = _NAMESPACES.sub("", _PROLOG.sub("", buffer.getvalue(), count=1))
    # Charts share the page's id space: prefix each chart's ids with a digest of the chart (stable, and
    # distinct unless two charts are identical, when their definitions are too).
    prefix = "c" + hashlib.sha256(text.encode()).hexdigest()[:10]
    text = _IDS.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    return text.replace("<svg", f'<svg role="img" aria-label="{_e(label)}"', 1).strip()


def _chart(label: str, width: float, height: float, draw: Callable[[Figure], None]) -> str:
    with _figure(width, height) as fig:
        draw(fig)
        return _svg(fig, label)


def _usd_axis(ax_axis: Any) -> None:
    """Dollar ticks with as many decimals as the ticks need, the same for all (cents shown in pairs)."""
    from matplotlib.ticker import Formatter

    class Usd(Formatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return self.format_ticks([x])[0]

        def format_ticks(self, values: Any) -> list[str]:
            span = max((abs(v) for v in values), default=0.0) or 1.0
            decimals = next((d for d in range(10) if all(abs(round(v, d) - v) <= span * 1e-9 for v in values)), 9)
            decimals = 2 if decimals == 1 else decimals
            return [f"${v:,.{decimals}f}" if v >= 0 else "" for v in values]

    ax_axis.set_major_formatter(Usd())


def _count_axis(ax_axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax_axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))


def _pct_axis(ax_axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax_axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))


def cost_histogram_svg(costs: Sequence[float]) -> str:
    """Histogram of what each document's extraction cost."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        bins = max(5, min(40, round(2 * math.sqrt(len(costs)))))
        ax.hist(costs, bins=bins, color=_BLUE, alpha=0.85, edgecolor="white")
        ordered = sorted(costs)
        mean, median = sum(costs) / len(costs), ordered[len(ordered) // 2]
        ax.axvline(mean, color=_AMBER, linewidth=2, label=f"mean {_usd(mean)}")
        ax.axvline(median, color=_GREY, linewidth=2, linestyle="--", label=f"median {_usd(median)}")
        ax.set_xlabel("cost of one document (USD)")
        ax.set_ylabel("documents")
        _usd_axis(ax.xaxis)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper right")

    return _chart("Histogram of the cost per document", 10, 3.4, draw)


def cost_per_run_svg(runs: Sequence[RunPoint]) -> str:
    """Bars: cost of each run by start time, coloured by model; unpriced runs are marked."""

    def draw(fig: Figure) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        ax = fig.add_subplot()
        models = list(dict.fromkeys(r.model for r in runs))
        colors = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}
        xs = list(range(len(runs)))
        heights = [r.cost_usd or 0.0 for r in runs]
        ax.bar(xs, heights, color=[colors[r.model] for r in runs], width=0.7)
        unpriced = [x for x, r in zip(xs, runs, strict=True) if r.cost_usd is None]
        if unpriced:  # a run with no price has no bar: mark it on the axis so it is not read as free
            ax.scatter(unpriced, [0.0] * len(unpriced), marker="x", s=40, clip_on=False, zorder=4,
                       color=[colors[runs[x].model] for x in unpriced])
        top = max(heights, default=0.0) or 1.0
        if len(runs) <= 24:
            for x, r in zip(xs, runs, strict=True):
                note = "no price" if r.cost_usd is None else f"{r.documents - r.cached:,} new"
                ax.annotate(note, (x, r.cost_usd or 0.0), xytext=(0, 6 if r.cost_usd is None else 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=9, color=_GREY)
        ax.set_ylim(0, top * 1.15)
        step = max(1, math.ceil(len(runs) / 12))
        ticks = list(range(0, len(runs), step))
        ax.set_xticks(ticks, [_short_time(runs[i].started_at) for i in ticks], fontsize=9)
        ax.set_xlim(-0.6, len(runs) - 0.4)
        ax.set_ylabel("cost of the run (USD)")
        ax.set_xlabel("run start (UTC)" + ("; above each bar: documents sent to the model, not reused"
                                           if len(runs) <= 24 else ""))
        ax.grid(axis="x", visible=False)
        _usd_axis(ax.yaxis)
        handles: list[Any] = [Patch(color=colors[m], label=m) for m in models]
        if unpriced:
            handles.append(Line2D([], [], marker="x", linestyle="none", color=_GREY, label="no price known"))
        fig.legend(handles=handles, loc="outside upper right", title="model", ncols=min(6, len(handles)),
                   fontsize=10, title_fontsize=10)

    return _chart("Cost per run over time", 10, 3.6, draw)


def field_bars_svg(values: dict[str, float], *, label: str, xlabel: str, threshold: float | None) -> str:
    """Horizontal bars of a 0..1 score per field, lowest at the top; bars below `threshold` in amber."""
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))  # barh draws the first at the bottom

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        names = [k for k, _ in ordered]
        scores = [v for _, v in ordered]
        colors = [_AMBER if threshold is not None and v < threshold else _BLUE for v in scores]
        ax.barh(range(len(names)), scores, color=colors, height=0.7)
        ax.set_yticks(range(len(names)), names)
        for y, v in enumerate(scores):
            ax.annotate(f"{v:.0%}", (v, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
        if threshold is not None:
            ax.axvline(threshold, color=_GREY, linestyle="--", linewidth=1.2)
            ax.annotate(f"threshold {threshold:.0%}", (threshold, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(-4, 2), textcoords="offset points", ha="right", va="bottom", fontsize=9,
                        color=_GREY)
        ax.set_xlim(0, 1.08)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        _pct_axis(ax.xaxis)

    return _chart(label, 10, 0.32 * len(ordered) + 1.1, draw)


def breakeven_svg(result: BreakEven) -> str:
    """Cumulative cost of prompting, fine-tuning (from its training bill) and the Batch API by volume."""
    o, a = result.observed, result.assumptions

    chart = result
    if a.horizon_docs is None and result.breakeven_docs and result.breakeven_vs_batch_docs:
        # Show the crossing with the Batch API too, unless it is so far out that it would squash the other.
        horizon = min(max(2 * result.breakeven_docs, round(1.25 * result.breakeven_vs_batch_docs)),
                      4 * result.breakeven_docs)
        chart = dataclasses.replace(result, assumptions=dataclasses.replace(a, horizon_docs=horizon))

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        curves = chart.curves(points=80)
        lines = (
            ("prompting", _BLUE, f"prompting {o.model}: {_usd(result.prompting_per_doc)} a document"),
            ("fine-tuned", _GREEN, f"fine-tuned {a.target_model}: {_usd(result.training_usd)} training, then "
                                   f"{_usd(result.finetuned_per_doc)} a document"),
            ("batch", _PURPLE, f"Batch API, answers within 24 h: {_usd(result.batch_per_doc)} a document"),
        )
        for key, color, text in lines:
            xs, ys = zip(*curves[key], strict=True)
            ax.plot(xs, ys, color=color, linewidth=2.2, label=text, linestyle="--" if key == "batch" else "-")
        horizon = curves["prompting"][-1][0]
        _mark(ax, result, result.breakeven_docs, result.breakeven_nights, "break-even with prompting",
              (-12, 28), horizon)
        _mark(ax, result, result.breakeven_vs_batch_docs, result.breakeven_vs_batch_nights,
              "break-even with the Batch API", (12, -34), horizon)
        if result.breakeven_docs is None:
            ax.text(0.5, 0.5, "no crossing: the fine-tuned model costs more per document,\n"
                              "so its training never pays back", transform=ax.transAxes, ha="center",
                    va="center", fontsize=11, color=_GREY)
        per_night = o.docs_per_night
        if per_night > 0:
            limit = a.max_payback_nights * per_night
            if limit <= horizon:
                ax.axvline(limit, color=_GREY, linestyle=":", linewidth=1.2)
                ax.annotate(f"payback limit: {a.max_payback_nights:g} nights", (limit, 0.97),
                            xycoords=("data", "axes fraction"), xytext=(4, 0), textcoords="offset points",
                            fontsize=9, color=_GREY, rotation=90, va="top", bbox=_LABEL_BOX)
            top = ax.secondary_xaxis("top", functions=(lambda d: d / per_night, lambda n: n * per_night))
            top.set_xlabel(f"nights at {_num(per_night)} documents a night")
            _count_axis(top.xaxis)
        ax.set_xlim(0, horizon)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("documents extracted")
        ax.set_ylabel("cumulative cost (USD)")
        _count_axis(ax.xaxis)
        _usd_axis(ax.yaxis)
        ax.legend(loc="upper left", fontsize=10)

    return _chart("Cumulative cost of prompting, a fine-tuned model and the Batch API", 10, 4.8, draw)


def _mark(ax: Axes, result: BreakEven, docs: int | None, nights: int | None, text: str, offset: tuple[int, int],
          horizon: int) -> None:
    """A dot where the fine-tuned curve crosses another, labeled with the volume and the nights."""
    if docs is None or docs > horizon:
        return
    y = result.training_usd + docs * result.finetuned_per_doc
    ax.plot([docs], [y], marker="o", markersize=8, color="#111827", zorder=5)
    label = f"{text}:\n{docs:,} documents" + (f" ({nights:,} nights)" if nights else "")
    dx, dy = offset
    if dx > 0 and docs > 0.6 * horizon:  # too close to the right edge for a label on its right
        dx = -dx
    ax.annotate(label, (docs, y), xytext=(dx, dy), textcoords="offset points", fontsize=10, fontweight="bold",
                ha="right" if dx < 0 else "left", va="bottom" if dy > 0 else "top", bbox=_LABEL_BOX,
                arrowprops={"arrowstyle": "-", "color": "#111827", "linewidth": 0.8})


def _short_time(iso: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16]
    return moment.strftime("%Y-%m-%d\n%H:%M:%S")


def _when(iso: str) -> str:
    """An ISO timestamp as `2025-06-01 02:00:13 UTC` (as given when it does not parse)."""
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo is not None else "")


# -- HTML ----------------------------------------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")

_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f3f4f6;--card:#fff;--accent:#2563eb;--warn:#b45309}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1060px;margin:0 auto;padding:20px 24px 40px}
h1{margin:0 0 4px;font-size:26px}
h2{font-size:19px;margin:0 0 10px}
.meta{color:var(--muted);margin:0}
nav{margin:12px 0 0;font-size:14px}
nav a{margin-right:14px;color:var(--accent);text-decoration:none}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin-bottom:10px}
@media (max-width:700px){.tiles{grid-template-columns:repeat(2,1fr)}}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.tile .value{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.tile .label{color:var(--muted);font-size:13px}
.chart{margin:6px 0}
.chart svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:14px;margin:8px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:#374151}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.id{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px;word-break:break-all}
td:first-child{min-width:12em}
.empty{color:var(--muted);font-style:italic}
.recommendation{font-size:17px;border-left:4px solid var(--accent);padding:10px 14px;background:#eff6ff;margin:10px 0}
.assumptions li{margin:2px 0;font-size:14px}
tr.wall td{background:#fef3c7}
.below{color:var(--warn);font-weight:600}
h3{font-size:15px;margin:14px 0 4px}
@media print{body{background:#fff}section{break-inside:avoid}}
"""


def _e(value: object) -> str:
    """Escaped text, with any URL scheme removed: the report carries no link or address to follow."""
    return html.escape(_SCHEME.sub("", str(value)))


def _money(value: float | None, unknown: str = "unknown") -> str:
    return unknown if value is None else _usd(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _tile(value: str, label: str) -> str:
    return f'<div class="tile"><div class="value">{_e(value)}</div><div class="label">{_e(label)}</div></div>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int] | None = None,
           row_classes: Sequence[str] | None = None) -> str:
    """A table from already-escaped cells; `numeric` column indexes are right-aligned."""
    numeric = numeric or set()

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    out = ["<table><thead><tr>", *(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(head)), "</tr></thead><tbody>"]
    for n, row in enumerate(rows):
        extra = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        out.append(f"<tr{extra}>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _section(key: str, body: str) -> str:
    return f'<section id="{key}"><h2>{_e(SECTION_TITLES[key])}</h2>\n{body}\n</section>'


def _headline_html(data: ReportData) -> str:
    h = data.headline
    cost_note = f"{h.unpriced_documents} document(s) unpriced" if h.unpriced_documents else "failures included"
    spent = _money(h.spent_usd, "unknown" if h.runs else "no run history")
    run = data.latest_run
    counts = [
        _tile(f"{h.documents:,}", "documents"),
        _tile(f"{h.ok:,}", "ok"),
        _tile(f"{h.failed:,}", "failed"),
        _tile(f"{h.skipped:,}", "skipped"),
    ]
    costs = [
        _tile(_money(h.results_cost_usd), "cost of the current results"),
        _tile(_money(h.cost_per_ok_usd), f"per ok document ({cost_note})"),
        _tile(spent, f"spent across {h.runs} run(s)" + (f", {h.unpriced_runs} unpriced" if h.unpriced_runs else "")),
        _tile(_money(run.cost_usd) if run else "-", "latest run"),
    ]
    body = f'<div class="tiles">{"".join(counts)}</div><div class="tiles">{"".join(costs)}</div>'
    if run is None:
        body += _empty("No run recorded in runs.parquet, so there is no latest run to describe.")
    else:
        body += (f"<p><strong>Latest run</strong> <span class=\"id\">{_e(run.run_id)}</span>, started "
                 f"{_e(_when(run.started_at))} with {_e(run.model)} on schema version {_e(run.schema_version)}: "
                 f"{run.documents:,} documents, {run.ok:,} ok ({run.cached:,} reused from earlier runs), "
                 f"{run.failed:,} failed, {run.skipped:,} skipped; cost {_e(_money(run.cost_usd))}"
                 + (f" in {run.wall_s:,.1f} s" if run.wall_s is not None else "") + ".</p>")
    if data.problems:
        rows = [[f'<span class="id">{_e(p.doc_id)}</span>', _e(p.status), _e(p.error_type or ""),
                 _e((p.error_message or "")[:200])] for p in data.problems]
        more = data.problem_count - len(data.problems)
        body += ("<h3>Documents not extracted</h3>" + _table(["document", "status", "error", "message"], rows)
                 + (f"<p>… and {more:,} more.</p>" if more > 0 else ""))
    return _section("headline", body)


def _cost_html(data: ReportData) -> str:
    if not data.doc_costs:
        return _section("cost", _empty(data.notes.get("cost", "No priced document.")))
    body = f'<div class="chart">{cost_histogram_svg(data.doc_costs)}</div>'
    if data.costliest:
        rows = [[f'<span class="id">{_e(d.doc_id)}</span>', _e(d.status), _e(_money(d.cost_usd)),
                 f"{d.prompt_tokens:,}", f"{d.completion_tokens:,}"] for d in data.costliest]
        body += "<h3>Costliest documents</h3>" + _table(
            ["document", "status", "cost", "prompt tokens", "completion tokens"], rows, numeric={2, 3, 4})
    return _section("cost", body)


def _runs_html(data: ReportData) -> str:
    if "runs" in data.notes:
        return _section("runs", _empty(data.notes["runs"]))
    return _section("runs", f'<div class="chart">{cost_per_run_svg(data.runs)}</div>')


def _agreement_html(data: ReportData) -> str:
    if not data.agreement:
        return _section("agreement", _empty(data.notes.get("agreement", "No self-consistency metrics.")))
    chart = field_bars_svg(data.agreement, label="Per-field agreement between samples",
                           xlabel="share of samples agreeing with the majority answer", threshold=None)
    intro = (f"<p>How often repeated answers for the same document agree, per field, over {data.sampled:,} sampled "
             "document(s). Low agreement marks fields the model is unsure of.</p>")
    return _section("agreement", intro + f'<div class="chart">{chart}</div>')


def _accuracy_html(data: ReportData) -> str:
    snap = data.accuracy
    if snap is None or not snap.accuracy:
        return _section("accuracy", _empty(data.notes.get("accuracy", "The latest evaluation scored no field.")))
    threshold = data.config.quality_threshold
    chart = field_bars_svg(snap.accuracy, label="Per-field accuracy against labels",
                           xlabel="accuracy against labeled documents (latest evaluation)", threshold=threshold)
    intro = (f"<p>Latest evaluation, {_e(_when(snap.evaluated_at))}: schema version {_e(snap.schema_version)}, model "
             f"{_e(snap.model or '-')}, up to {snap.documents:,} labeled document(s) a field. Fields below "
             f"{threshold:.0%} are amber.</p>")
    return _section("accuracy", intro + f'<div class="chart">{chart}</div>')


def _drift_html(data: ReportData) -> str:
    if not data.drift:
        return _section("drift", _empty(data.notes.get("drift", "No drift recorded.")))
    rows = [[_e(d.transition), _e(d.field or "no field changed"), _pct(d.share),
             f"{d.changed:,} of {d.documents:,}"] for d in data.drift]
    intro = ("<p>Documents extracted again under another schema version or model, and how many of them got a "
             "different value per field.</p>")
    return _section("drift", intro + _table(["transition", "field", "changed", "documents"], rows, numeric={2, 3}))


def _breakeven_html(data: ReportData) -> str:
    result = data.breakeven
    if result is None:
        return _section("breakeven", _empty(data.notes.get("breakeven", "No break-even analysis.")))
    rows = [
        ["prompting today", _e(_usd(result.prompting_per_doc)), _e(_usd(result.prompting_per_month)), "-"],
        ["fine-tuned", _e(_usd(result.finetuned_per_doc)), _e(_usd(result.finetuned_per_month)),
         _e(_usd(result.training_usd))],
        ["Batch API (24 h)", _e(_usd(result.batch_per_doc)), _e(_usd(result.batch_per_month)), "-"],
    ]
    body = (f'<p class="recommendation"><strong>{_e(result.recommendation)}</strong></p>'
            f'<div class="chart">{breakeven_svg(result)}</div>'
            + _table(["option", "per document", f"a month ({result.docs_per_month:,.0f} documents)", "once"],
                     rows, numeric={1, 2, 3})
            + '<h3>Assumptions</h3><ul class="assumptions">'
            + "".join(f"<li>{_e(line)}</li>" for line in result.assumptions_text()) + "</ul>")
    return _section("breakeven", body)


def _quality_html(data: ReportData) -> str:
    config = data.config
    versions = data.quality_history[-config.quality_versions:]
    if len(data.quality_history) < 2:
        return _section("quality", _empty(data.notes.get("quality", "Not enough evaluations.")))
    names = list(dict.fromkeys(name for _, scores in versions for name in scores))
    threshold = config.quality_threshold
    if data.quality_wall:
        verdict = (f"<p><strong>{len(data.quality_wall)} field(s) stay below {threshold:.0%} accuracy in each of "
                   f"the last {len(versions)} evaluated schema version(s): "
                   f"{_e(', '.join(data.quality_wall))}.</strong> Prompt work has not moved them; fine-tuning, "
                   "better labels or a different model may.</p>")
    else:
        verdict = (f"<p>No field stays below {threshold:.0%} accuracy across the last {len(versions)} evaluated "
                   "schema versions: prompt work is still moving the scores.</p>")

    def cell(score: float | None) -> str:
        if score is None:
            return "-"
        return f'<span class="below">{score:.0%}</span>' if score < threshold else f"{score:.0%}"

    rows = [[_e(name), *(cell(scores.get(name)) for _, scores in versions),
             "wall" if name in data.quality_wall else ""] for name in names]
    classes = ["wall" if name in data.quality_wall else "" for name in names]
    head = ["field", *(f"version {_e(v)}" for v, _ in versions), ""]
    return _section("quality", verdict + _table(head, rows, numeric=set(range(1, len(versions) + 1)),
                                                row_classes=classes))


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (no script, no external resource)."""
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTION_TITLES.items())
    sections = [_headline_html(data), _cost_html(data), _runs_html(data), _agreement_html(data),
                _accuracy_html(data), _drift_html(data), _breakeven_html(data), _quality_html(data)]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Defence in depth: even a missed escape could not run a script or fetch anything.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>extractor report: {_e(data.schema_name)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<header><h1>Extraction report: {_e(data.schema_name)}</h1>",
        f'<p class="meta">schema version {_e(data.schema_version)} · outputs in '
        f'<span class="id">{_e(data.config.schema_dir)}</span> · generated {_e(_when(data.generated_at))}</p>',
        f"<nav>{nav}</nav></header>",
        *sections,
        "</main></body></html>",
        "",
    ])


def write_report(config: ReportConfig, data: ReportData | None = None) -> Path:
    """Build (unless given) and write the report atomically; returns its path."""
    data = data or build_report(config)
    path = config.report_path
    write_atomic_bytes(path, render_html(data).encode("utf-8"))
    return path


# -- terminal ------------------------------------------------------------------------------------------


def print_report_summary(data: ReportData, console: Console) -> None:
    """A few lines of the same, for the terminal, ending with the recommendation."""
    h = data.headline
    console.print(f"[bold]{markup_escape(data.schema_name)}[/] (schema version {markup_escape(data.schema_version)}):"
                  f" {h.documents:,} documents, [green]{h.ok:,} ok[/], [red]{h.failed:,} failed[/], "
                  f"{h.skipped:,} skipped")
    console.print(f"cost: {_money(h.results_cost_usd)} for the current results, {_money(h.cost_per_ok_usd)} per ok "
                  f"document; {_money(h.spent_usd, 'unknown')} spent across {h.runs} run(s)")
    if (run := data.latest_run) is not None:
        console.print(f"latest run {markup_escape(run.run_id)} ({markup_escape(_when(run.started_at))}, "
                      f"{markup_escape(run.model)}): {run.ok:,} ok, {run.failed:,} failed, "
                      f"cost {_money(run.cost_usd)}")

    def lowest(scores: dict[str, float]) -> str:
        return ", ".join(f"{markup_escape(k)} {v:.0%}" for k, v in sorted(scores.items(), key=lambda kv: kv[1])[:3])

    if data.agreement:
        console.print(f"lowest agreement: {lowest(data.agreement)}")
    if data.accuracy is not None and data.accuracy.accuracy:
        console.print(f"lowest accuracy: {lowest(data.accuracy.accuracy)}")
    if data.drift:
        top = max(data.drift, key=lambda d: d.share)
        console.print(f"drift: {len({d.transition for d in data.drift})} transition(s); most changed: "
                      f"{markup_escape(top.field or 'no field')} on {top.share:.0%} "
                      f"({markup_escape(top.transition)})")
    if data.quality_wall:
        console.print(f"[yellow]quality wall:[/] {markup_escape(', '.join(data.quality_wall))}")
    if data.breakeven is not None:
        console.print(f"[bold]Recommendation:[/] [bold]{markup_escape(data.breakeven.recommendation)}[/]")
    else:
        console.print(f"break-even: {markup_escape(data.notes.get('breakeven', 'not available'))}")
