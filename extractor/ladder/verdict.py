"""The words of the break-even: every sentence `extractor breakeven` and the report say, built from the numbers.

The cost model (`ladder.costmodel`) and the comparison of measured variants (`ladder.compare`) return numbers
and choices; this module says them: the compact text blocks, the recommendations, and every assumption behind
them spelled out, one plain sentence each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from extractor.formatting import number, pct, usd, usd_as_given
from extractor.ladder.compare import Comparison, Option
from extractor.ladder.costmodel import BreakEven, Observed
from extractor.table import OVERALL

# -- the cost-only break-even -----------------------------------------------------------------------------


def _prefix_method(o: Observed) -> str:
    if o.fitted_from:
        return (f"Static prompt tokens are the system prompt's characters times the tokens per character fitted "
                f"across {o.fitted_from} one-request documents of different lengths; the fit puts "
                f"{number(o.overhead_tokens or 0.0)} tokens per request (tool schema, message framing) apart, and "
                "they stay in the fine-tuned prompt. Document tokens are the rest of each request's prompt tokens.")
    return ("Static prompt tokens are the system prompt's characters times the tokens per character the journal "
            "observed for this model over whole prompts (the documents' lengths did not allow separating the "
            "tool schema's tokens, which inflate the rate: what dropping the examples saves is an upper bound); "
            "document tokens are the rest of each request's prompt tokens.")


def cost_assumptions(r: BreakEven) -> list[str]:
    """Every assumption behind the numbers, one plain sentence each."""
    o, a, p, f = r.observed, r.assumptions, r.current_price, r.finetune_price
    lines = [
        f"Volume: {number(o.docs_per_night)} documents a night, the mean of {o.nights} run(s) of {o.model} in the "
        f"journal ({o.documents:,} documents billed; results reused from earlier runs are not counted), "
        f"and {number(a.nights_per_month)} nights a month.",
        f"Prompting today: {o.requests_per_doc:.2f} billed requests a document (validation re-asks included, "
        f"transient retries that billed nothing excluded), each of {number(o.prefix_tokens)} static prompt "
        f"tokens (instructions and few-shot examples) plus {number(o.document_tokens)} document tokens, "
        f"answered with {number(o.output_tokens)} completion tokens.",
        _prefix_method(o),
        f"{pct(o.cached_fraction)} of today's prompt tokens are billed at the cached-input price, as observed.",
        f"{o.model} costs {usd_as_given(p.input_per_mtok)} per Mtok of input, "
        f"{usd_as_given(p.cached_input_per_mtok)} cached and {usd_as_given(p.output_per_mtok)} of output "
        f"({r.current_price_source}).",
        f"Fine-tuned {f.model} costs {usd_as_given(f.input_per_mtok)} per Mtok of input, "
        f"{usd_as_given(f.cached_input_per_mtok)} cached and {usd_as_given(f.output_per_mtok)} of output, and "
        f"training {usd_as_given(f.training_per_mtok)} per Mtok, from the "
        f"price table dated {r.table.as_of} ({r.table.source}); prices change, verify them.",
        f"The fine-tuned model is prompted without the few-shot examples: {number(o.prefix_tokens_short)} static "
        f"tokens instead of {number(o.prefix_tokens)}; documents and answers stay the same length.",
        f"The fine-tuned model needs {1 + a.reask_rate_finetuned:.2f} requests a document "
        f"({pct(a.reask_rate_finetuned)} re-asks).",
        f"{pct(a.finetuned_cached_fraction)} of the fine-tuned model's prompt tokens are billed as cached"
        + (" (without the examples the static prefix is usually under the 1,024 tokens OpenAI caches)."
           if a.finetuned_cached_fraction == 0 else "."),
        f"Training: {a.training_examples:,} examples of {number(r.training_example_tokens)} tokens (prompt without "
        f"examples, document, answer) for {a.epochs} epoch(s), {number(r.training_tokens)} training tokens billed "
        "once; labelling the examples and the engineering time are not counted.",
        "A fine-tuned model has no hosting fee: it is billed per token like the base model.",
        f"The Batch API bills {pct(r.table.batch_discount)} of the normal price and answers within 24 hours "
        "instead of seconds; the fine-tuned model is priced at the normal, immediate rate.",
        "Quality is taken as equal for every option: this compares cost only.",
        f"Fine-tuning is recommended only if it pays back within {number(a.max_payback_nights)} nights.",
    ]
    return lines


def cost_recommendation(r: BreakEven) -> str:
    """One plain sentence: fine-tune, keep prompting, or never on cost, with the Batch API alternative."""
    o, a = r.observed, r.assumptions
    target = a.target_model
    batch = _batch_clause(r)
    if r.breakeven_docs is None:
        head = (f"Never on cost: a fine-tuned {target} costs {usd(r.finetuned_per_doc)} a document against "
                f"{usd(r.prompting_per_doc)} prompting {o.model} today, so its "
                f"{usd(r.training_usd)} of training never pays back")
        return head + (f"; {batch}." if batch else ".")
    payback = (f"{r.breakeven_docs:,} documents"
               + (f" ({r.breakeven_nights:,} nights at {number(o.docs_per_night)} a night)"
                  if r.breakeven_nights is not None else ""))
    if r.pays_back:
        head = (f"Fine-tune: {target} pays back its {usd(r.training_usd)} of training after {payback}, "
                f"then saves {usd(r.saving_per_month)} a month over prompting {o.model}")
        if r.batch_per_doc <= r.finetuned_per_doc:
            tail = (f"; if answers may wait 24 h, the Batch API ({usd(r.batch_per_doc)} a document) is "
                    "cheaper still, with no training.")
        elif r.breakeven_vs_batch_docs is not None:
            tail = f"; it beats the Batch API too after {r.breakeven_vs_batch_docs:,} documents."
        else:
            tail = "."
        return head + tail
    head = f"Keep prompting: fine-tuning {target} pays back after {payback}"
    return head + (f"; {batch}." if batch else ".")


def _batch_clause(r: BreakEven) -> str:
    share = r.table.batch_discount
    if share >= 1 or r.prompting_per_doc == 0:  # nothing to halve (the embedded model is free)
        return ""
    cut = "halves today's cost" if share == 0.5 else f"cuts today's cost by {pct(1 - share)}"
    return f"the Batch API {cut} with no training, if answers may take up to 24 h"


def render_text(result: BreakEven) -> str:
    """A compact block: today, fine-tuned, batch, break-even, assumptions, recommendation."""
    r, o = result, result.observed
    month = f"{number(r.docs_per_month)} documents"

    def nights(docs: int | None, n: int | None) -> str:
        if docs is None:
            return "never on cost"
        return f"{docs:,} documents" + (f" ({n:,} nights)" if n is not None else "")

    lines = [
        f"Fine-tuning {r.assumptions.target_model} vs prompting {o.model}",
        f"  today (prompting)  {usd(r.prompting_per_doc):>12} a document  {usd(r.prompting_per_month):>10} a month"
        f" ({month})",
        f"  fine-tuned         {usd(r.finetuned_per_doc):>12} a document  {usd(r.finetuned_per_month):>10} a month"
        f" + {usd(r.training_usd)} training once",
        f"  Batch API (24 h)   {usd(r.batch_per_doc):>12} a document  {usd(r.batch_per_month):>10} a month,"
        " no training",
    ]
    if o.cost_per_doc is not None:
        lines.append(f"  billed (journal)   {usd(o.cost_per_doc):>12} a document over {o.documents:,} documents")
    lines += [
        f"  break-even         {nights(r.breakeven_docs, r.breakeven_nights)}; "
        f"against the Batch API: {nights(r.breakeven_vs_batch_docs, r.breakeven_vs_batch_nights)}",
        "Assumptions:",
        *(f"  - {line}" for line in cost_assumptions(r)),
        f"Recommendation: {cost_recommendation(r)}",
    ]
    return "\n".join(lines)


# -- the measured comparison ---------------------------------------------------------------------------


def volume_sentence(c: Comparison) -> str:
    """Where the comparison's monthly volume comes from."""
    a, observed = c.assumptions, c.observed
    if c.volume_given:
        return (f"Volume: {number(c.docs_per_month)} documents a month, as given (--docs-per-month)"
                + (f"; the journal observed {number(observed.docs_per_night * a.nights_per_month)}."
                   if observed is not None else ": the journal has no production run to observe it from."))
    assert observed is not None
    return (f"Volume: {number(c.docs_per_month)} documents a month, {number(observed.docs_per_night)} a night "
            f"over {observed.nights} production run(s) of {observed.model} in the journal times "
            f"{number(a.nights_per_month)} nights a month.")


def finetuned_pricing_sentence(c: Comparison) -> str:
    """How the fine-tuned option no experiment measured is priced ("" when one was measured)."""
    pricing, a = c.finetuned_pricing, c.assumptions
    if pricing is None:
        return ""
    if pricing.cost is not None:
        return (f"Fine-tuned {pricing.price.model} is priced as the cost-only break-even above prices it, from "
                "the production documents in the journal (prompted without the few-shot examples), with "
                f"{usd(pricing.training_usd)} of training.")
    ft, base = pricing.price, pricing.base
    assert base is not None
    bound = ("" if base.examples == "none" else
             " (its prompt carries examples a fine-tuned model would not need: an upper bound)")
    return (f"Without a cost-only analysis of production runs (above), fine-tuned {ft.model} is priced from the "
            f"tokens of {base.variant}"
            f"{bound}, {number(pricing.prompt_tokens)} prompt and {number(pricing.output_tokens)} completion tokens "
            f"a request, {1 + a.reask_rate_finetuned:.2f} requests a document, at {usd_as_given(ft.input_per_mtok)} / "
            f"{usd_as_given(ft.output_per_mtok)} per Mtok of input / output, and {a.training_examples:,} examples "
            f"x {a.epochs} epoch(s) of training at {usd_as_given(ft.training_per_mtok)} per Mtok "
            f"({usd(pricing.training_usd)}), from the price table dated {c.table.as_of}.")


def target_recommendation(c: Comparison) -> str | None:
    """The cheapest option a month that reaches the target, with the Batch API alternative; or the closest
    one and what to label next. None without a target."""
    target = c.target
    if target is None:
        return None
    goal = f"{pct(target, 1)} of fields right"
    unpriced = [o.label for o in c.unpriced_reaching()]
    unpriced_note = (f" ({', '.join(unpriced)} also reach{'es' if len(unpriced) == 1 else ''} it but "
                     "no price is known for its model.)" if unpriced else "")
    best = c.cheapest()
    if best is not None:
        text = (f"Use {best.label}: {pct(best.accuracy, 1)} of fields right (target {pct(target, 1)}) for "
                f"{usd(best.per_doc)} a document, {usd(c.per_month(best))} a month"
                + (f" with its {usd(best.training_usd)} of training spread over "
                   f"{number(c.amortize_months)} months" if best.training_usd else "")
                + ", the cheapest measured option that reaches the target")
        text += _batch_alternative(c, best)
        for o in c.cheaper_unmeasured(best):
            text += (f" {o.label[:1].upper() + o.label[1:]} would cost {usd(c.per_month(o))} a month, but its "
                     "accuracy is unknown until an experiment measures it.")
        return text + unpriced_note
    closest = c.closest()
    if closest is None:
        text = f"No measured variant has an overall accuracy, so none can be checked against {goal}."
    else:
        text = (f"None of the measured options reaches {goal}: the closest is {closest.label} at "
                f"{pct(closest.accuracy, 1)} ({usd(closest.per_doc)} a document, "
                f"{usd(c.per_month(closest))} a month).")
    return text + unpriced_note + " " + _next_rung(c)


def _batch_alternative(c: Comparison, best: Option) -> str:
    batch = c.cheapest_batch()
    if c.table.batch_discount >= 1 or batch is None:
        return "."
    if batch is best:
        return (f"; if answers may wait 24 h, the Batch API runs it for {usd(best.batch_per_doc)} a document, "
                f"{usd(c.batch_per_month(best))} a month.")
    return (f"; if answers may wait 24 h, {batch.label} through the Batch API reaches it too for "
            f"{usd(batch.batch_per_doc)} a document, {usd(c.batch_per_month(batch))} a month.")


def _next_rung(c: Comparison) -> str:
    a, labeled = c.assumptions, c.labeled
    need = a.training_examples
    measured = c.finetuned_measured()
    if measured is not None:
        return (f"The fine-tuned {measured.label} was measured too ({pct(measured.accuracy, 1)}): what is left "
                f"is more and better labels (you have {labeled:,} labeled documents; label more, fine-tune "
                "again and measure it as a variant) or a larger model, measured as a variant `model=...`.")
    text = ""
    if not c.retrieved_measured:
        text = ("Retrieved examples were not measured: `--variant examples=similar:3` needs no training, "
                "only the labels you have. ")
    measure = ("and measure it as a variant: `extractor experiment INPUT_DIR --labels FILE "
               "--variant model=ft:...`.")
    if labeled < need:
        return text + (f"Fine-tuning is the next rung: it needs {need:,} labeled training documents (an "
                       f"assumption), you have {labeled:,} labeled; label {need - labeled:,} more, fine-tune "
                       f"{a.target_model} on them (`extractor export finetune`), {measure}")
    return text + (f"Fine-tuning is the next rung: it needs {need:,} labeled training documents (an "
                   f"assumption) and you have {labeled:,}; fine-tune {a.target_model} on them "
                   f"(`extractor export finetune`), keeping the documents the experiment scores out of "
                   f"training, {measure}")


def comparison_assumptions(c: Comparison) -> list[str]:
    """Every assumption behind the comparison, one plain sentence each."""
    a = c.assumptions
    measured = ", ".join(f"{v.variant} on {v.documents:,} labeled documents (experiment {v.experiment_id}, "
                         f"{v.finished_at or 'time unknown'})" for v in c.variants)
    lines = [
        f"Accuracy is the share of labeled field values right (the row with field '{OVERALL}') in each "
        f"variant's newest experiment in {c.source.name}: {measured or 'no variant'}.",
        "The labeled sample is taken to be like the production documents: its per-document tokens and cost "
        "are multiplied by the production volume.",
        volume_sentence(c),
    ]
    from_tokens = [o.label for o in c.options if o.priced_from_tokens]
    unpriced = [o.label for o in c.options if o.variant is not None and o.per_doc is None]
    lines.append("A variant's cost a document is what its experiment recorded (cost_usd_per_doc)"
                 + (f"; {', '.join(from_tokens)} recorded none and {'is' if len(from_tokens) == 1 else 'are'} "
                    "priced from its tokens at the model's list price (the fine-tuning table for ft: models)"
                    if from_tokens else "")
                 + (f"; no price is known for {', '.join(unpriced)}" if unpriced else "") + ".")
    finetuned = c.finetuned_measured()
    if finetuned is None:
        lines.append(f"The fine-tuned model's accuracy is UNKNOWN: no experiment measured a fine-tuned variant "
                     f"(model=ft:...), so fine-tuned {a.target_model} is priced but never taken to reach a "
                     "target.")
        lines.append(finetuned_pricing_sentence(c))
    else:
        lines.append(f"The fine-tuned model {finetuned.label} exists and was measured: its training is spent "
                     "and is not counted again.")
    lines += [
        f"Training is spread over the {number(a.max_payback_nights)}-night payback horizon "
        f"({number(c.amortize_months)} months at {number(a.nights_per_month)} nights a month) in the monthly "
        "figures.",
        f"The Batch API bills {pct(c.table.batch_discount)} of the normal price for every option, the "
        "fine-tuned one included, and answers within 24 hours instead of seconds.",
        f"Fine-tuning needs {a.training_examples:,} labeled training documents (an assumption); the labels store "
        f"has {c.labeled:,} labeled documents.",
    ]
    if c.target is not None:
        lines.append(f"The target ({pct(c.target, 1)}) is the overall share of labeled field values right, "
                     "not a minimum for each field.")
    return lines


def render_comparison(comparison: Comparison) -> str:
    """The measured options as a table, their assumptions and, with a target, the recommendation."""
    c = comparison
    width = max(len("option"), *(len(o.label) for o in c.options))
    batch = c.table.batch_discount < 1
    head = (f"  {'option':<{width}}  {'accuracy':>8}  {'a document':>10}  {'a month':>10}"
            + (f"  {'Batch, doc':>10} {'Batch, month':>12}" if batch else ""))
    lines = [f"Measured options ({c.source.name}, the newest experiment of each variant), "
             f"{number(c.docs_per_month)} documents a month"
             + (" (Batch: the Batch API, answers within 24 h)" if batch else ""), head]
    for o in c.options:
        accuracy = pct(o.accuracy, 1) if o.accuracy is not None else "UNKNOWN"
        row = (f"  {o.label:<{width}}  {accuracy:>8}  {usd(o.per_doc):>10}  {usd(c.per_month(o)):>10}"
               + (f"  {usd(o.batch_per_doc):>10} {usd(c.batch_per_month(o)):>12}" if batch else ""))
        if o.training_usd and o.variant is None:
            row += f"  (+ {usd(o.training_usd)} training once, spread over {number(c.amortize_months)} months)"
        lines.append(row)
    lines += ["Assumptions:", *(f"  - {line}" for line in comparison_assumptions(c))]
    recommendation = target_recommendation(c)
    if recommendation is not None:
        lines.append(f"Recommendation for {pct(c.target, 1)} of fields right: {recommendation}")
    else:
        lines.append("Give --target 0.95 (a share of fields right) to recommend the cheapest option that reaches it.")
    return "\n".join(lines)


# -- what `extractor breakeven` prints ----------------------------------------------------------------------


def no_experiment_note(experiments: Path, target: float) -> str:
    """What `--target` says when no experiment measured accuracy (`experiments`: where one would be), and how to
    run one."""
    return (f"Target {pct(target, 1)} of fields right: no experiment measured accuracy ({experiments} "
            "does not exist), so the cost comparison above takes quality as equal. Measure each option against "
            "labeled documents with `extractor experiment INPUT_DIR --labels FILE --variant examples=static "
            "--variant examples=similar:3`, then run `extractor breakeven --target "
            f"{target:g}` again.")


def no_cost_note(error: Exception) -> str:
    """Why there is no cost-only break-even beside the measured comparison."""
    return f"No cost-only break-even from the journal: {error}."


def render_decision(cost: BreakEven | None, comparison: Comparison | None, notes: Sequence[str]) -> str:
    """`extractor breakeven`'s output: the cost-only block, the notes, the measured comparison."""
    parts = [render_text(cost)] if cost is not None else []
    parts += list(notes)
    if comparison is not None:
        parts.append(render_comparison(comparison))
    return "\n\n".join(parts)
