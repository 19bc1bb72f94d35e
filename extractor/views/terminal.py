"""Human-readable output of a run: the summary table printed after `extractor run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from extractor.errors import ConfigError
from extractor.extraction.plan import Plan
from extractor.extraction.recorder import RunSummary
from extractor.extraction.routing import RoutedPlan, RoutedSummary
from extractor.formatting import pct, usd, usd_as_given
from extractor.layout import Layout
from extractor.quality.evaluation import EvalReport
from extractor.quality.routing import RoutingReport
from extractor.values.metrics import RecordScore, best_by_field, wilson

if TYPE_CHECKING:
    from extractor.ladder.experiment import ExperimentPlan, ExperimentReport

FAILURES_SHOWN = 5  # in the printed summary; the rest are named by a count and where to look


def print_summary(summary: RunSummary, console: Console) -> None:
    table = Table(title=f"run {summary.run_id}", show_header=False, title_justify="left")
    cost = usd(summary.cost_usd, unknown="unknown (no price for this model)")
    sent = summary.ok - summary.cached
    reused = (f" ({summary.cached} reused without a request" + (
        f", {summary.deduplicated} of them copies answered once in this run" if summary.deduplicated else "")
              + ")") if summary.cached else ""
    speed = f" ({summary.docs_per_s:.2f} documents/s)" if summary.requests else " (nothing was sent)"
    rows = [
        ("schema", f"{summary.schema_name} (version {summary.schema_version})"),
        ("model", f"{summary.model} @ {summary.endpoint}"),
        ("documents", f"{summary.documents}: {summary.ok} ok{reused}, {summary.failed} failed, "
                      f"{summary.skipped} skipped" + (f"; {sent} extracted now" if summary.cached else "")),
        ("tokens", f"{summary.prompt_tokens:,} prompt ({summary.cached_tokens:,} cached), "
                   f"{summary.completion_tokens:,} completion"
                   + (f"; {summary.embedding_tokens:,} embedding (choosing examples: "
                      f"{usd(summary.embedding_cost_usd, unknown='price unknown')}, in the cost)"
                      if summary.embedding_tokens else "")),
        ("requests", f"{summary.requests} ({summary.transport_retries} transport retries"
                     + (f", {summary.timeouts} timed out" if summary.timeouts else "")
                     + (f", {summary.throttled} rate-limited; in flight lowered to {summary.lowest_concurrency}"
                        if summary.lowest_concurrency is not None else "") + ")"),
        ("cost", cost + (f" + {summary.compute_s:.1f} CPU-s of local compute" if summary.compute_s else "")),
        ("wall time", f"{summary.wall_s:.2f} s{speed}"),
        *([("batch", f"{summary.submitted} document(s) submitted ({', '.join(summary.batches) or 'no new batch'}), "
                     f"{summary.pending} waiting in earlier batches; a later run collects the answers")]
          if summary.submitted or summary.pending else []),
        *([("evidence", f"{summary.not_found_values} value(s) not found in their document, in "
                        f"{summary.not_found_documents} document(s): needs_review is set on those rows "
                        "(evidence.parquet says where every value was found)")]
          if summary.not_found_values else []),
        *([("flags", f"{summary.flagged_documents} document(s) flagged for review by the schema's checks or by "
                     "line items whose values stand apart (review_flags says why)")]
          if summary.flagged_documents else []),
        ("results", summary.results_path),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))  # document names and messages are not rich markup
    console.print(table)
    if summary.failures:
        console.print(f"[red]failed:[/] {summary.failed} document(s)")
        for doc_id, error_type, message in summary.failures[:FAILURES_SHOWN]:
            console.print(f"  {escape(doc_id)}: {escape(error_type)}: {escape(message)}", soft_wrap=True)
        if summary.failed > FAILURES_SHOWN:
            console.print(f"  and {summary.failed - FAILURES_SHOWN} more; see {escape(summary.results_path)} "
                          "(status = failed, error_message)")
    if summary.skips:
        # Named, like failures: a scan or an unsupported file skipped every night should be seen, not counted.
        console.print(f"[yellow]skipped:[/] {summary.skipped} file(s)")
        for doc_id, why in summary.skips[:FAILURES_SHOWN]:
            console.print(f"  {escape(doc_id)}: {escape(why)}", soft_wrap=True)
        if summary.skipped > FAILURES_SHOWN:
            console.print(f"  and {summary.skipped - FAILURES_SHOWN} more; see {escape(summary.results_path)} "
                          "(status = skipped, error_message)")
    if summary.sampled:
        low = sorted(summary.mean_agreement.items(), key=lambda kv: kv[1])[:5]
        console.print(f"self-consistency over {summary.sampled} sampled document(s); lowest agreement: "
                      + ", ".join(f"{k} {pct(v)}" for k, v in low))
    for label, drift in summary.drift.items():
        changed = sorted(drift["changed"].items(), key=lambda kv: -kv[1])
        text = ", ".join(f"{k} on {pct(n / drift['documents'])}" for k, n in changed) or "no field"
        console.print(f"drift {escape(label)}: changed {text} of {drift['documents']} document(s)")
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def load_runs(layout: Layout) -> pl.DataFrame:
    if not layout.runs.exists():
        raise ConfigError(f"no runs recorded yet: {layout.runs} does not exist (run `extractor run` first)")
    return pl.read_parquet(layout.runs)


def print_runs(runs: pl.DataFrame, console: Console) -> None:
    table = Table("run", "model", "schema", "docs", "ok", "cached", "failed", "skipped", "tokens", "cost",
                  "wall s", "note", title="runs", title_justify="left")
    for r in runs.iter_rows(named=True):
        cost = usd(r["cost_usd"], unknown="?")
        tokens = (r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0)
        note = r["aborted"] or r["interrupted"] or ""
        if r.get("submitted") or r.get("pending"):  # --batch runs
            note = "; ".join(filter(None, [note, f"batch: {r['submitted']} submitted, {r['pending']} waiting"]))
        if r.get("cost_limited"):  # runs recorded before the column existed lack it
            note = "; ".join(filter(None, [note, f"{r['cost_limited']}, {r['deferred']} left"]))
        if r.get("lowest_concurrency") is not None:  # runs recorded before the column existed lack it
            note = "; ".join(filter(None, [note, f"rate-limited: in flight down to {r['lowest_concurrency']}"]))
        table.add_row(r["run_id"], r["model"], r["schema_version"], str(r["documents"]), str(r["ok"]),
                      str(r["cached"]), str(r["failed"]), str(r["skipped"]), f"{tokens:,}", cost,
                      f"{r['wall_s']:.1f}", note)
    console.print(table)


def print_plan(plan: Plan, console: Console) -> None:
    table = Table("document", "why", "prompt chars", "chunks", "est. prompt tokens", "est. completion tokens",
                  title=f"dry run: {len(plan.to_send)} of {plan.documents} document(s) would be sent",
                  title_justify="left")
    for d in plan.to_send:
        table.add_row(escape(d.doc_id), d.reason, f"{d.prompt_chars:,}", f"{d.chunks:,}", f"{d.prompt_tokens:,}",
                      f"{d.completion_tokens:,}")
    console.print(table)
    for doc_id, status, message in plan.not_sendable:
        console.print(f"  {escape(doc_id)}: would be {status}: {escape(message)}")
    cost = usd(plan.cost_usd, unknown="unknown (no price for this model)")
    console.print(f"already extracted (reused): {plan.cached}; estimated tokens: {plan.prompt_tokens:,} prompt + "
                  f"{plan.completion_tokens:,} completion; estimated cost for {plan.model}: {cost}")
    if (pictured := plan.images)[0]:
        console.print(f"page images: {pictured[0]:,} page(s) sent as images, ~{pictured[1]:,} of the prompt tokens "
                      "(the provider's image-token rule for this model)")
    if plan.pending:
        console.print(f"waiting in a batch an earlier `run --batch` submitted (not sent again): {plan.pending}")
    console.print(f"estimate {plan.calibration}")
    if plan.fit_under_limit is not None and plan.fit_under_limit < len(plan.to_send):
        console.print(f"cost limit {usd_as_given(plan.max_cost_usd)}: about {plan.fit_under_limit} of "
                      f"{len(plan.to_send)} document(s) fit; the rest would wait for the next run")
    if over := plan.over_context:
        # Say before anything is paid that a document is asked in parts: its cost is every chunk's.
        console.print(f"[yellow]over the context window:[/] {len(over)} document(s) would not fit the "
                      f"{plan.context_tokens:,} tokens {escape(plan.model)} reads in one request; each is asked in "
                      "chunks whose answers are merged (priced above, every chunk counted): "
                      + ", ".join(f"{escape(d.doc_id)} (~{d.prompt_tokens + d.completion_tokens:,} tokens, "
                                  f"{d.chunks} chunks)" for d in over[:5])
                      + (f" and {len(over) - 5} more" if len(over) > 5 else ""))


def print_eval(report: EvalReport, console: Console) -> None:
    right, total = report.fields_right
    table = Table("field", "labeled docs", "accuracy", "precision", "recall", "F1", "confidence AUROC",
                  title=f"accuracy of schema {report.schema_version} ({', '.join(report.models) or '-'}) on "
                        f"{report.scored_documents} labeled document(s)", title_justify="left")
    per_field = report.calibration.per_field if report.calibration is not None else {}
    for s in report.scores:
        aurocs = [v["auroc"] for k, v in per_field.items() if k == s.field or k.startswith(s.field + ".")]
        known = [a for a in aurocs if a is not None]
        table.add_row(s.field, str(s.documents),
                      *(pct(score, 1) for score in (s.accuracy, s.precision, s.recall, s.f1)),
                      f"{min(known):.2f}" if known else "-")
        for name, sub in (s.sub_fields if isinstance(s, RecordScore) else {}).items():  # each item field, matched items
            table.add_row(f"  {s.field}.{name}", f"{sub.values} items", pct(sub.accuracy, 1), "", "", "", "")
    console.print(table)
    if total:
        console.print(f"fields right / total: {right:.1f}/{total} = {pct(right / total, 1)}")
    calibration = report.calibration
    if calibration is not None and calibration.values:
        auroc = (f"{calibration.auroc:.3f}" if calibration.auroc is not None
                 else "- (every value right, or every one wrong)")
        console.print(f"confidence without labels vs correctness over {calibration.values} extracted value(s): "
                      f"AUROC {auroc}")
        for band in calibration.bands:
            if band.values:
                console.print(f"  confidence {band.low:.2f}-{min(band.high, 1.0):.2f}: {band.values} value(s), "
                              f"{pct(band.accuracy, 1)} right")
        if calibration.uninformative:
            console.print(f"[yellow]confidence is uninformative for {', '.join(report.models) or 'this model'}:[/] "
                          f"AUROC {calibration.auroc:.2f} is near a coin's 0.5, so needs_review and the review "
                          "page's badges do not tell right values from wrong ones; the review page and the sheet "
                          "now say so (re-run eval after a change of model or prompt)")
    if report.imported:
        console.print(f"{report.imported} label value(s) imported into the labels store")
    if report.shared_labels:
        agree = report.shared_labels - len(report.conflicts)
        console.print(f"labels files vs people's corrections: {agree}/{report.shared_labels} shared value(s) agree "
                      f"({pct(report.label_agreement, 1)}); where they differ the person's correction counts")
        for c in report.conflicts[:10]:
            console.print(f"  {c.doc_id} / {c.field}: person {c.person!r} ({c.person_source}), "
                          f"labels file {c.file!r} ({c.file_source})", markup=False, highlight=False)
        if len(report.conflicts) > 10:
            console.print(f"  ... {len(report.conflicts) - 10} more")
    for message in report.rejected:
        console.print(f"[yellow]label skipped:[/] {escape(message)}")


def print_experiment(report: ExperimentReport, console: Console) -> None:
    """The variants side by side (overall), then accuracy per field and variant, the best marked."""
    table = Table("variant", "model", "examples", "strategy", "ok", "failed", "fields right", "USD / doc",
                  "prompt tok / doc", "compl. tok / doc", "s / doc", "agreement", "not found",
                  title=f"experiment {report.experiment_id}: {report.sample} labeled document(s), each variant",
                  title_justify="left")
    for v in report.variants:
        o = v.overall
        table.add_row(escape(v.spec), escape(o["model"]), escape(o["examples"]), o["strategy"], str(o["ok"]),
                      str(o["failed"]), pct(o["accuracy"], 1), usd(o["cost_usd_per_doc"]),
                      f"{o['prompt_tokens_per_doc']:,.0f}", f"{o['completion_tokens_per_doc']:,.0f}",
                      f"{o['latency_s_per_doc']:.2f}" if o["latency_s_per_doc"] is not None else "-",
                      pct(o["agreement"], 1), pct(o["not_found_share"], 1))
    console.print(table)
    fields: dict[str, dict[str, tuple[float, int] | None]] = {}
    for v in report.variants:
        for row in v.rows[1:]:
            scored = None if row["accuracy"] is None else (row["accuracy"], row.get("labeled_values") or 0)
            fields.setdefault(row["field"], {})[v.spec] = scored
    if fields:
        best = best_by_field(fields)
        per_field = Table("field", *(escape(v.spec) for v in report.variants), "",
                          title="accuracy per field (* a clear winner: its 95% interval above every other "
                                "variant's; a tie otherwise)", title_justify="left")
        for name, by_variant in fields.items():
            tied = best.get(name, set())
            per_field.add_row(escape(name), *(
                pct(score[0] if (score := by_variant.get(v.spec)) is not None else None, 1)
                + ("*" if tied == {v.spec} else "") for v in report.variants),
                "tie" if len(tied) > 1 else "")
        console.print(per_field)
    if report.variants:
        console.print("fields right with its 95% interval: " + "; ".join(
            f"{escape(v.spec)} {escape(_fields_right(v.overall))}" for v in report.variants))
    spent = [v.summary.cost_usd for v in report.variants]
    reused = sum(v.summary.cached for v in report.variants)
    console.print(f"spent now: {usd(sum(s for s in spent if s is not None)) if None not in spent else 'unknown'}"
                  + (f"; {reused} result(s) reused from an earlier experiment cost nothing again (the per-document "
                     "figures are what each variant costs)" if reused else "") + f"; wrote {report.path}")
    if report.imported:
        console.print(f"{report.imported} label value(s) imported into the labels store")
    if report.unmatched:
        console.print(f"[yellow]{len(report.unmatched)} labeled document(s) are not in the input folder[/] "
                      f"(e.g. {escape(report.unmatched[0])}); they can still be examples only if their text is found")
    for message in report.rejected:
        console.print(f"[yellow]label skipped:[/] {escape(message)}")


def _fields_right(overall: dict) -> str:
    """`67.3% of 96 fields over 8 documents (95% interval 57.4-76.0%)` from an OVERALL row."""
    from extractor.ladder.verdict import interval_text

    accuracy, n = overall.get("accuracy"), overall.get("labeled_values") or 0
    if accuracy is None:
        return "no accuracy"
    return (f"{pct(accuracy, 1)} of {n:,} fields over {overall.get('documents') or 0:,} documents "
            f"(95% interval {interval_text(wilson(accuracy, n))})")


def print_experiment_plan(plan: ExperimentPlan, console: Console) -> None:
    """Each variant's dry run over the sample, then the experiment's estimated total."""
    console.print(f"experiment dry run: {plan.sample} labeled document(s) in the folder, of {plan.labeled} labeled")
    for spec, variant in plan.variants:
        console.rule(f"variant {escape(spec)}", align="left")
        print_plan(variant, console)
    total = usd(plan.cost_usd, unknown="unknown (a model without a known price)")
    console.print(f"estimated cost of the experiment: {total}")
    for message in plan.rejected:
        console.print(f"[yellow]label skipped:[/] {escape(message)}")


def print_routed_summary(summary: RoutedSummary, console: Console) -> None:
    """`run --schema auto`: where the documents went, what routing cost, then each schema's own summary."""
    for run in summary.runs:
        print_summary(run, console)
    table = Table(title=f"routed run {summary.run_id}", show_header=False, title_justify="left")
    routed = ", ".join(f"{name} {n}" for name, n in summary.routed.items()) or "none"
    methods = ", ".join(f"{name} {n}" for name, n in sorted(summary.methods.items()))
    # A question asked just before its document's extraction counts the document's reading, which the extraction
    # then skips: the share is a bound, not what routing added.
    bound = "at most " if summary.asked_in_run else ""
    share = (f", {bound}{pct(summary.routing_share, 1)} of the run, {pct(summary.routing_share_after_start, 1)} "
             f"without the model server's start ({summary.startup_s:.2f} s, paid by any run)" if summary.startup_s else
             f", {bound}{pct(summary.routing_share, 1)} of the run") if summary.wall_s else ""
    rows = [
        ("candidates", ", ".join(summary.candidates) + f" (version {summary.candidates_version})"),
        ("documents", f"{summary.documents}: routed {routed}; {summary.skipped} of no known kind or unreadable, "
                      f"{summary.failed} failed" + (f", {summary.deferred} deferred (--max-cost)"
                                                     if summary.deferred else "")
                      + (f", {summary.stopped} not asked (stopped)" if summary.stopped else "")),
        ("decided by", (methods or "-")
         + (f" ({summary.cached} reused from an earlier run)" if summary.cached else "")),
        ("routing", f"{summary.routing_prompt_tokens:,} prompt + {summary.routing_completion_tokens:,} completion "
                    f"tokens, {usd(summary.routing_cost_usd, unknown='price unknown')}, {summary.routing_s:.2f} s"
                    + share + (f"; {summary.asked_in_run} question(s) asked just before their document's "
                               "extraction: their tokens and seconds include reading the document, which the "
                               "extraction then reuses" if summary.asked_in_run else "")),
        ("cost", usd(summary.cost_usd, unknown="unknown (no price for this model)") + " (routing and every schema)"),
        ("wall time", f"{summary.wall_s:.2f} s"),
        ("routes", summary.routes_path),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))
    console.print(table)
    for doc_id, old, new in summary.moved[:FAILURES_SHOWN]:
        # Only a candidate's run retires rows: a schema left out of `schemas` keeps its results as they were.
        kept = (f"{escape(old)} is not a candidate of this run: its row there stays" if old not in summary.candidates
                else f"its {escape(old)} row is retired")
        console.print(f"moved: {escape(doc_id)} from {escape(old)} to {escape(new)} ({kept})")
    if summary.skips:
        console.print(f"[yellow]not extracted:[/] {summary.skipped} document(s) of no known kind or unreadable")
        for doc_id, why in summary.skips[:FAILURES_SHOWN]:
            console.print(f"  {escape(doc_id)}: {escape(why)}", soft_wrap=True)
        if summary.skipped > FAILURES_SHOWN:
            console.print(f"  and {summary.skipped - FAILURES_SHOWN} more; see {escape(summary.routes_path)}")
    for doc_id, why in summary.failures[:FAILURES_SHOWN]:
        console.print(f"[red]routing failed:[/] {escape(doc_id)}: {escape(why)}", soft_wrap=True)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def print_routed_plan(plan: RoutedPlan, console: Console) -> None:
    """`run --schema auto --dry-run`: each document's planned route, the questions' cost, each schema's plan."""
    table = Table("document", "schema", "decided by", "why", title=f"dry run: routing {plan.documents} document(s)",
                  title_justify="left")
    for r in plan.routes:
        shown = r.schema or ("?" if r.method == "model" else "none (skipped)")
        table.add_row(escape(r.doc_id), escape(shown), r.method, escape(r.reason))
    console.print(table)
    console.print(f"routing questions to ask: {plan.questions} (~{plan.question_tokens:,} prompt tokens, "
                  f"{usd(plan.question_cost_usd, unknown='price unknown')}); their documents' extraction is "
                  "planned once they are routed")
    if plan.deferred:
        console.print(f"[yellow]deferred by --max-cost:[/] {plan.deferred} document(s) whose routing question and "
                      "extraction would not fit (the next run routes them)")
    for name, schema_plan in plan.plans.items():
        console.print(f"[bold]{escape(name)}[/]")
        print_plan(schema_plan, console)
    console.print(f"estimated cost of what is known now: {usd(plan.cost_usd, unknown='unknown')}")


def print_routing_eval(report: RoutingReport, console: Console) -> None:
    """`eval --routing`: routing accuracy, by method, and where the wrong ones went."""
    if not report.scored:
        console.print(f"no route to score: {report.labeled} document(s) have a known kind, none of them a route "
                      "decided by the signals yet (run --schema auto, then re-route what is wrong: extractor route)")
        return
    low, high = report.interval or (0.0, 1.0)
    console.print(f"routing accuracy: {report.right}/{report.scored} = {pct(report.accuracy, 1)} "
                  f"(95% interval {pct(low, 1)}-{pct(high, 1)}) on the documents whose kind is known")
    for method, (right, n) in sorted(report.by_method.items()):
        console.print(f"  decided by {escape(method)}: {right}/{n} right")
    table = Table("truth", "routed to", "documents", title="the wrong ones", title_justify="left")
    for (truth, routed), n in sorted(report.confusion.items()):
        if truth != routed:
            table.add_row(escape(truth), escape(routed), str(n))
    if table.row_count:
        console.print(table)
    if report.unscored:
        console.print(f"not scored: {len(report.unscored)} document(s) without a decided route")
