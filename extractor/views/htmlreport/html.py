"""The report as one self-contained HTML page: inline CSS, the charts as inline SVG, no JavaScript, no URL.

The page can be mailed or archived and opened offline. Every piece of text taken from documents, the
journal or the configuration is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from extractor.formatting import pct, usd
from extractor.ladder import verdict
from extractor.store import write_atomic_bytes
from extractor.views.htmlreport.charts import breakeven_svg, cost_histogram_svg, cost_per_run_svg, field_bars_svg
from extractor.views.htmlreport.data import ReportConfig, ReportData, build_report, when
from extractor.views.htmlreport.data import escape as _e

SECTION_TITLES: dict[str, str] = {
    "headline": "Headline numbers",
    "cost": "Cost per document",
    "runs": "Cost per run",
    "agreement": "Per-field agreement",
    "accuracy": "Per-field accuracy",
    "drift": "Drift across versions",
    "verdict": "Verdict: prompting or fine-tuning?",
    "breakeven": "Fine-tuning break-even",
    "experiments": "Experiments",
    "quality": "Quality wall",
}
"""Section id -> heading, in report order. "experiments" is shown only when experiments.parquet exists, "verdict"
only when there is a break-even or an experiment to read it off."""


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
.best{color:#15803d;font-weight:700}
.wide{overflow-x:auto}
.wide table{font-size:13px}
.wide th,.wide td{padding:4px 5px}
.wide th{white-space:normal;vertical-align:bottom}
.wide td:first-child{min-width:9em}
.unknown{color:var(--warn)}
.spec{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
@media print{body{background:#fff}section{break-inside:avoid}}
"""




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
    spent = usd(h.spent_usd, "unknown" if h.runs else "no run history")
    run = data.latest_run
    counts = [
        _tile(f"{h.documents:,}", "documents"),
        _tile(f"{h.ok:,}", "ok"),
        _tile(f"{h.failed:,}", "failed"),
        _tile(f"{h.skipped:,}", "skipped"),
    ]
    costs = [
        _tile(usd(h.results_cost_usd), "cost of the current results"),
        _tile(usd(h.cost_per_ok_usd), f"per ok document ({cost_note})"),
        _tile(spent, f"spent across {h.runs} run(s)" + (f", {h.unpriced_runs} unpriced" if h.unpriced_runs else "")),
        _tile(usd(run.cost_usd) if run else "-", "latest run"),
    ]
    body = f'<div class="tiles">{"".join(counts)}</div><div class="tiles">{"".join(costs)}</div>'
    if run is None:
        body += _empty("No run recorded in runs.parquet, so there is no latest run to describe.")
    else:
        body += (f"<p><strong>Latest run</strong> <span class=\"id\">{_e(run.run_id)}</span>, started "
                 f"{_e(when(run.started_at))} with {_e(run.model)} on schema version {_e(run.schema_version)}: "
                 f"{run.documents:,} documents, {run.ok:,} ok ({run.cached:,} reused from earlier runs), "
                 f"{run.failed:,} failed, {run.skipped:,} skipped; cost {_e(usd(run.cost_usd))}"
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
        rows = [[f'<span class="id">{_e(d.doc_id)}</span>', _e(d.status), _e(usd(d.cost_usd)),
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
    intro = (f"<p>Latest evaluation, {_e(when(snap.evaluated_at))}: schema version {_e(snap.schema_version)}, model "
             f"{_e(snap.model or '-')}, up to {snap.documents:,} labeled document(s) a field. Fields below "
             f"{pct(threshold)} are amber.</p>")
    return _section("accuracy", intro + f'<div class="chart">{chart}</div>')


def _drift_html(data: ReportData) -> str:
    if not data.drift:
        return _section("drift", _empty(data.notes.get("drift", "No drift recorded.")))
    rows = [[_e(d.transition), _e(d.field or "no field changed"), pct(d.share),
             f"{d.changed:,} of {d.documents:,}"] for d in data.drift]
    intro = ("<p>Documents extracted again under another schema version or model, and how many of them got a "
             "different value per field.</p>")
    return _section("drift", intro + _table(["transition", "field", "changed", "documents"], rows, numeric={2, 3}))


def _verdict_html(data: ReportData) -> str | None:
    """The one verdict (`extractor breakeven`'s); None (no section) when there is nothing to read it off."""
    if data.verdict is None:
        return None
    return _section("verdict", f'<p class="recommendation"><strong>{_e(verdict.render_verdict(data.verdict))}'
                               "</strong></p>")


def _breakeven_html(data: ReportData) -> str:
    result = data.breakeven
    if result is None:
        return _section("breakeven", _empty(data.notes.get("breakeven", "No break-even analysis.")))
    rows = [
        ["prompting today", _e(usd(result.prompting_per_doc)), _e(usd(result.prompting_per_month)), "-"],
        ["fine-tuned", _e(usd(result.finetuned_per_doc)), _e(usd(result.finetuned_per_month)),
         _e(usd(result.training_usd))],
    ]
    if result.batch_per_doc is not None:
        rows.append(["Batch API (24 h)", _e(usd(result.batch_per_doc)), _e(usd(result.batch_per_month)), "-"])
    body = (f"<p>Break-even: {_e(verdict.breakeven_words(result))}.</p>"
            f'<div class="chart">{breakeven_svg(result)}</div>'
            + _table(["option", "a document", f"a month ({result.docs_per_month:,.0f} documents)", "training once"],
                     rows, numeric={1, 2, 3})
            + '<h3>Assumptions</h3><ul class="assumptions">'
            + "".join(f"<li>{_e(line)}</li>" for line in verdict.cost_assumptions(result)) + "</ul>")
    return _section("breakeven", body)


def _experiments_html(data: ReportData) -> str | None:
    """The measured variants against the fine-tuned model; None (no section) without experiments.parquet."""
    c = data.experiments
    if c is None:
        note = data.notes.get("experiments")
        return None if note is None else _section("experiments", _empty(note))

    def figure(value: float | None, fmt: str = "{:,.0f}") -> str:
        return "-" if value is None else _e(fmt.format(value))

    def spec(label: str) -> str:  # a SPEC breaks after its commas, never inside a setting
        return f'<span class="spec">{_e(label).replace(",", ",<wbr>")}</span>'

    # Two tables, so that each fits a printed page: what each option gets and costs, then what it takes.
    costs, takes = [], []
    for o in c.options:
        v = o.variant
        accuracy = (_e(pct(o.accuracy, 1)) if o.accuracy is not None
                    else '<span class="unknown">unknown</span>')
        counts = f"{v.labeled_values:,} / {v.documents:,}" if v is not None and v.labeled_values else "-"
        costs.append([spec(o.label), _e(o.kind), accuracy, _e(verdict.interval_text(o.interval) or "-"), counts,
                      _e(usd(o.per_doc)), _e(usd(c.per_month(o))), _e(usd(o.training_usd) if o.training_usd else "-"),
                      _e(usd(o.batch_per_doc, "-")), _e(usd(c.batch_per_month(o), "-"))])
        if v is not None:
            takes.append([spec(o.label), figure(v.prompt_tokens_per_doc), figure(v.completion_tokens_per_doc),
                          figure(v.latency_s_per_doc, "{:,.2f} s"),
                          _e(pct(v.agreement)) if v.agreement is not None else "-",
                          _e(pct(v.not_found_share)) if v.not_found_share is not None else "-",
                          f"{v.documents:,}"])
    cost_head = ["variant", "kind", "overall accuracy", "95% interval", "fields / documents", "a document",
                 f"a month ({c.docs_per_month:,.0f} documents)", "training once", "Batch API (24 h) a document",
                 "Batch API a month"]
    take_head = ["variant", "prompt tokens a document", "completion tokens a document", "latency a document",
                 "agreement", "not found", "labeled docs"]
    body = ("<p>Each variant as its newest experiment measured it against labeled documents, with the 95% interval "
            "of its accuracy over the fields scored (overlapping intervals are a tie); a month is its documents at "
            "the production volume, training is paid once. The verdict above weighs them.</p>")
    body += f'<div class="wide">{_table(cost_head, costs, numeric=set(range(2, 10)))}</div>'
    body += ("<h3>What each variant takes</h3>"
             f'<div class="wide">{_table(take_head, takes, numeric=set(range(1, 7)))}</div>')

    best = c.best_per_field()
    variants = [v for v in c.variants if v.field_accuracy]
    if best and variants:
        def cell(name: str, variant: str, score: float | None) -> str:
            if score is None:
                return "-"
            text = _e(pct(score, 1))
            return f'<strong class="best">{text}</strong>' if best[name] == {variant} else text

        field_rows = [[_e(name), *(cell(name, v.variant, v.field_accuracy.get(name)) for v in variants),
                       "clear winner" if len(best[name]) == 1 else "tie"] for name in best]
        body += ("<h3>Accuracy per field</h3><p>In green bold: a clear winner, its 95% interval above every other "
                 "variant's; a field whose best intervals overlap is a tie.</p>"
                 + '<div class="wide">'
                 + _table(["field", *(spec(v.variant) for v in variants), ""], field_rows,
                          numeric=set(range(1, len(variants) + 1))) + "</div>")
    body += ('<h3>Assumptions</h3><ul class="assumptions">'
             + "".join(f"<li>{_e(line)}</li>" for line in verdict.comparison_assumptions(c)) + "</ul>")
    return _section("experiments", body)


def _quality_html(data: ReportData) -> str:
    config = data.config
    versions = data.quality_history[-config.quality_versions:]
    if len(data.quality_history) < 2:
        return _section("quality", _empty(data.notes.get("quality", "Not enough evaluations.")))
    names = list(dict.fromkeys(name for _, scores in versions for name in scores))
    threshold = config.quality_threshold
    if data.quality_wall:
        verdict = (f"<p><strong>{len(data.quality_wall)} field(s) stay below {pct(threshold)} accuracy in each of "
                   f"the last {len(versions)} evaluated schema version(s): "
                   f"{_e(', '.join(data.quality_wall))}.</strong> Prompt work has not moved them; fine-tuning, "
                   "better labels or a different model may.</p>")
    else:
        verdict = (f"<p>No field stays below {pct(threshold)} accuracy across the last {len(versions)} evaluated "
                   "schema versions: prompt work is still moving the scores.</p>")

    def cell(score: float | None) -> str:
        if score is None:
            return "-"
        return f'<span class="below">{pct(score)}</span>' if score < threshold else pct(score)

    rows = [[_e(name), *(cell(scores.get(name)) for _, scores in versions),
             "wall" if name in data.quality_wall else ""] for name in names]
    classes = ["wall" if name in data.quality_wall else "" for name in names]
    head = ["field", *(f"version {_e(v)}" for v, _ in versions), ""]
    return _section("quality", verdict + _table(head, rows, numeric=set(range(1, len(versions) + 1)),
                                                row_classes=classes))


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (no script, no external resource)."""
    shown = {"headline": _headline_html(data), "cost": _cost_html(data), "runs": _runs_html(data),
             "agreement": _agreement_html(data), "accuracy": _accuracy_html(data), "drift": _drift_html(data),
             "verdict": _verdict_html(data), "breakeven": _breakeven_html(data),
             "experiments": _experiments_html(data),
             "quality": _quality_html(data)}
    sections = [section for key in SECTION_TITLES if (section := shown[key]) is not None]
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTION_TITLES.items()
                  if shown[key] is not None)
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
        f'<span class="id">{_e(data.config.settings.layout.root)}</span> · generated {_e(when(data.generated_at))}</p>',
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

