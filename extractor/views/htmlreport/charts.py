"""The report's charts: matplotlib (Agg) figures as inline SVG strings, with no URL and stable ids.

matplotlib is imported inside the functions, so importing this module (and `extractor --help`) stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from extractor.formatting import number, pct, usd
from extractor.ladder.costmodel import BreakEven
from extractor.views.htmlreport.data import RunPoint, escape

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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

    with matplotlib.rc_context(_STYLE):  # type: ignore[arg-type]  # its stubs list every rc key as a literal
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
    return text.replace("<svg", f'<svg role="img" aria-label="{escape(label)}"', 1).strip()


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

    ax_axis.set_major_formatter(FuncFormatter(lambda v, _: pct(v)))


def cost_histogram_svg(costs: Sequence[float]) -> str:
    """Histogram of what each document's extraction cost."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        bins = max(5, min(40, round(2 * math.sqrt(len(costs)))))
        ax.hist(costs, bins=bins, color=_BLUE, alpha=0.85, edgecolor="white")
        ordered = sorted(costs)
        mean, median = sum(costs) / len(costs), ordered[len(ordered) // 2]
        ax.axvline(mean, color=_AMBER, linewidth=2, label=f"mean {usd(mean)}")
        ax.axvline(median, color=_GREY, linewidth=2, linestyle="--", label=f"median {usd(median)}")
        ax.set_xlabel("cost of one document (USD)")
        ax.set_ylabel("documents")
        _usd_axis(ax.xaxis)
        ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # a MaxNLocator
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
            ax.annotate(pct(v), (v, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
        if threshold is not None:
            ax.axvline(threshold, color=_GREY, linestyle="--", linewidth=1.2)
            ax.annotate(f"threshold {pct(threshold)}", (threshold, 1.0), xycoords=("data", "axes fraction"),
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
        lines = [
            ("prompting", _BLUE, f"prompting {o.model}: {usd(result.prompting_per_doc)} a document"),
            ("fine-tuned", _GREEN, f"fine-tuned {a.target_model}: {usd(result.training_usd)} training, then "
                                   f"{usd(result.finetuned_per_doc)} a document"),
        ]
        if "batch" in curves:  # only a model with a Batch API
            lines.append(("batch", _PURPLE, f"Batch API, answers within 24 h: {usd(result.batch_per_doc)} a document"))
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
        per_night = result.docs_per_night
        if per_night > 0:
            limit = a.max_payback_nights * per_night
            if limit <= horizon:
                ax.axvline(limit, color=_GREY, linestyle=":", linewidth=1.2)
                ax.annotate(f"payback limit: {a.max_payback_nights:g} nights", (limit, 0.97),
                            xycoords=("data", "axes fraction"), xytext=(4, 0), textcoords="offset points",
                            fontsize=9, color=_GREY, rotation=90, va="top", bbox=_LABEL_BOX)
            import numpy as np

            top = ax.secondary_xaxis("top", functions=(lambda d: np.divide(d, per_night),
                                                       lambda n: np.multiply(n, per_night)))
            top.set_xlabel(f"nights at {number(per_night)} documents a night")
            _count_axis(top.xaxis)
        ax.set_xlim(0, horizon)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("documents extracted")
        ax.set_ylabel("cumulative cost (USD)")
        _count_axis(ax.xaxis)
        _usd_axis(ax.yaxis)
        ax.legend(loc="upper left", fontsize=10)

    title = "Cumulative cost of prompting, a fine-tuned model" + (
        " and the Batch API" if result.batch_per_doc is not None else "")
    return _chart(title, 10, 4.8, draw)


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

