"""The report in a few lines for the terminal, ending with the recommendation."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape as markup_escape

from extractor.formatting import pct, usd
from extractor.ladder import verdict
from extractor.views.htmlreport.data import ReportData, when


def print_report_summary(data: ReportData, console: Console) -> None:
    """A few lines of the same, for the terminal, ending with the recommendation."""
    h = data.headline
    console.print(f"[bold]{markup_escape(data.schema_name)}[/] (schema version {markup_escape(data.schema_version)}):"
                  f" {h.documents:,} documents, [green]{h.ok:,} ok[/], [red]{h.failed:,} failed[/], "
                  f"{h.skipped:,} skipped")
    console.print(f"cost: {usd(h.results_cost_usd)} for the current results, {usd(h.cost_per_ok_usd)} per ok "
                  f"document; {usd(h.spent_usd)} spent across {h.runs} run(s)")
    if (run := data.latest_run) is not None:
        console.print(f"latest run {markup_escape(run.run_id)} ({markup_escape(when(run.started_at))}, "
                      f"{markup_escape(run.model)}): {run.ok:,} ok, {run.failed:,} failed, "
                      f"cost {usd(run.cost_usd)}")

    def lowest(scores: dict[str, float]) -> str:
        return ", ".join(f"{markup_escape(k)} {pct(v)}" for k, v in sorted(scores.items(), key=lambda kv: kv[1])[:3])

    if data.agreement:
        console.print(f"lowest agreement: {lowest(data.agreement)}")
    if data.accuracy is not None and data.accuracy.accuracy:
        console.print(f"lowest accuracy: {lowest(data.accuracy.accuracy)}")
    if data.drift:
        top = max(data.drift, key=lambda d: d.share)
        console.print(f"drift: {len({d.transition for d in data.drift})} transition(s); most changed: "
                      f"{markup_escape(top.field or 'no field')} on {pct(top.share)} "
                      f"({markup_escape(top.transition)})")
    if data.quality_wall:
        console.print(f"[yellow]quality wall:[/] {markup_escape(', '.join(data.quality_wall))}")
    if (c := data.experiments) is not None:
        line = f"experiments: {len(c.variants)} variant(s) measured"
        if c.leaders():
            line += f"; {markup_escape(verdict.leaders_sentence(c))}"
        console.print(line)
    elif "experiments" in data.notes:
        console.print(f"experiments: {markup_escape(data.notes['experiments'])}")
    if data.breakeven is None:
        console.print(f"break-even: {markup_escape(data.notes.get('breakeven', 'not available'))}")
    if data.verdict is not None:
        console.print(f"[bold]Verdict:[/] [bold]{markup_escape(verdict.render_verdict(data.verdict))}[/]")
