"""The words of the break-even: every sentence `extractor breakeven` and the report say, built from the numbers.

The cost model (`ladder.costmodel`) and the comparison of measured variants (`ladder.compare`) return numbers
and choices, and `compare.choose` the one verdict; this module says them: the cost block and the table of
measured options (figures only), every assumption behind them spelled out, one plain sentence each, and the one
verdict: which rung, when it pays back, what it needs in labelled documents and labelling time, every accuracy
with its count and 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from extractor.formatting import number, pct, usd, usd_as_given
from extractor.ladder.compare import (
    FINETUNE,
    KEEP,
    RETRIEVE,
    STRONGER,
    Comparison,
    Labelling,
    Option,
    VariantMeasure,
    Verdict,
    rung_of,
)
from extractor.ladder.costmodel import BreakEven, Observed
from extractor.table import OVERALL

# -- accuracies, with what they were measured on ---------------------------------------------------------


def interval_text(interval: tuple[float, float] | None) -> str:
    """`57.4-76.0%`, the 95% interval of a share; "" when there is none."""
    if interval is None:
        return ""
    return f"{interval[0] * 100:.1f}-{interval[1]:.1%}"


def measured(v: VariantMeasure) -> str:
    """`67.3% of 96 fields over 8 documents (95% interval 57.4-76.0%)`: an accuracy with its count and interval."""
    if v.accuracy is None:
        return "no overall accuracy"
    if v.labeled_values <= 0:
        return f"{pct(v.accuracy, 1)} of the fields over {v.documents:,} documents (count of fields not recorded)"
    return (f"{pct(v.accuracy, 1)} of {v.labeled_values:,} fields over {v.documents:,} documents "
            f"(95% interval {interval_text(v.interval)})")


def _option(o: Option) -> str:
    return f"{o.label}, {measured(o.variant)}" if o.variant is not None else o.label


def leaders_sentence(c: Comparison) -> str:
    """The most accurate measured option, or the options tied with it (their intervals overlap)."""
    leaders = c.leaders()
    if not leaders:
        return "No measured variant has an overall accuracy."
    if len(leaders) == 1:
        return f"The most accurate is {_option(leaders[0])}."
    return ("No clear winner: " + "; ".join(_option(o) for o in leaders)
            + " (their 95% intervals overlap: the difference may be chance).")


# -- the cost-only break-even -----------------------------------------------------------------------------


def _strategy_words(o: Observed) -> str:
    if o.strategy == "fields":
        return "field by field: one short question a request, each carrying the document first"
    return "one call for the whole schema, validation re-asks included"


def volume_words(r: BreakEven) -> str:
    """Where the monthly volume comes from."""
    o, a = r.observed, r.assumptions
    observed = (f"{number(o.docs_per_night)} new documents a night over {o.nights} production night(s) (runs that "
                f"extracted documents no earlier run had; {o.other_runs} other run(s), consistency re-runs, "
                "re-extractions and reruns that reused their results, are not nights)")
    if r.volume_given:
        return (f"Volume: {number(r.docs_per_month)} documents a month, as given (--docs-per-month), "
                f"{number(r.docs_per_night)} a night at {number(a.nights_per_month)} nights a month; the journal "
                f"observed {observed}.")
    return (f"Volume: {number(r.docs_per_month)} documents a month: {observed}, times "
            f"{number(a.nights_per_month)} nights a month.")


def cost_assumptions(r: BreakEven) -> list[str]:
    """Every assumption behind the numbers, one plain sentence each."""
    o, a, p, f = r.observed, r.assumptions, r.current_price, r.finetune_price
    ex = o.finetuned
    left = (f"; {o.left_out:,} billed row(s) of {o.model} left out: documents answered K times for "
            "self-consistency, or asked another way in earlier runs" if o.left_out else "")
    read = (f", {ex.approximated} of them no longer readable and sized from the characters the journal kept"
            if ex.approximated else "")
    lines = [
        volume_words(r),
        f"Prompting today ({_strategy_words(o)}): a document of {o.model} took {o.requests_per_doc:.2f} billed "
        f"requests (transient retries that billed nothing excluded), {number(o.prompt_tokens)} prompt tokens, "
        f"{number(o.cached_tokens)} of them ({pct(o.cached_fraction)}) billed at the cached-input price, and "
        f"{number(o.completion_tokens)} completion tokens: the mean over {o.documents:,} billed documents in the "
        f"journal{left}.",
        f"{o.model} costs {usd_as_given(p.input_per_mtok)} per Mtok of input, "
        f"{usd_as_given(p.cached_input_per_mtok)} cached and {usd_as_given(p.output_per_mtok)} of output "
        f"({r.current_price_source}).",
        f"Fine-tuned {f.model} costs {usd_as_given(f.input_per_mtok)} per Mtok of input, "
        f"{usd_as_given(f.cached_input_per_mtok)} cached and {usd_as_given(f.output_per_mtok)} of output, and "
        f"training {usd_as_given(f.training_per_mtok)} per Mtok, from the "
        f"price table dated {r.table.as_of} ({r.table.source}); prices change, verify them.",
        f"A fine-tuned model is sent what `extractor export finetune` writes for the same documents: one call with "
        f"the system prompt without few-shot examples (they are learnt), the fenced document and the tool schema, "
        f"{number(ex.prompt_tokens)} prompt tokens, answered with {number(ex.answer_tokens)} tokens; counted over "
        f"{ex.examples:,} production document(s){read}, at {ex.basis}.",
        f"The fine-tuned model needs {1 + a.reask_rate_finetuned:.2f} requests a document "
        f"({pct(a.reask_rate_finetuned)} re-asks).",
        f"{pct(a.finetuned_cached_fraction)} of the fine-tuned model's prompt tokens are billed as cached"
        + (" (without the examples the static prefix is usually under the 1,024 tokens OpenAI caches)."
           if a.finetuned_cached_fraction == 0 else "."),
        f"Training: {a.training_examples:,} examples of {number(r.training_example_tokens)} tokens (the examples "
        f"above) for {a.epochs} epoch(s), {number(r.training_tokens)} training tokens billed once; labelling them "
        "is counted in the verdict, the engineering time is not.",
        "A fine-tuned model has no hosting fee: it is billed per token like the base model.",
    ]
    if r.batch_per_doc is not None:
        lines.append(f"The Batch API bills {pct(r.table.batch_discount)} of the normal price and answers within 24 "
                     "hours instead of seconds; the fine-tuned model is priced at the normal, immediate rate.")
    else:
        lines.append(f"{o.model} has no Batch API (it is not an OpenAI model): no batch price is shown.")
    lines += [
        "Quality is taken as equal for every option here: this block compares cost only.",
        f"Fine-tuning pays back when its training is saved within {number(a.max_payback_nights)} nights.",
    ]
    return lines


def breakeven_words(r: BreakEven) -> str:
    """The break-even as a figure: `12,345 documents (18 nights)` or `never on cost`."""
    if r.breakeven_docs is None:
        return "never on cost"
    return f"{r.breakeven_docs:,} documents" + (f" ({r.breakeven_nights:,} nights)" if r.breakeven_nights else "")


def render_text(result: BreakEven) -> str:
    """The cost block: today, fine-tuned, batch (where the model has one), break-even, assumptions. No verdict:
    that is `render_verdict`'s, once, for the whole output."""
    r, o = result, result.observed
    month = f"{number(r.docs_per_month)} documents"
    lines = [
        f"Cost: prompting {o.model} ({o.strategy} strategy) vs fine-tuned {r.assumptions.target_model}, {month} "
        "a month",
        f"  today (prompting)  {usd(r.prompting_per_doc):>12} a document  {usd(r.prompting_per_month):>10} a month",
        f"  fine-tuned         {usd(r.finetuned_per_doc):>12} a document  {usd(r.finetuned_per_month):>10} a month"
        f" + {usd(r.training_usd)} training once",
    ]
    if r.batch_per_doc is not None:
        lines.append(f"  Batch API (24 h)   {usd(r.batch_per_doc):>12} a document  {usd(r.batch_per_month):>10} a "
                     "month, no training")
    if o.cost_per_doc is not None:
        lines.append(f"  billed (journal)   {usd(o.cost_per_doc):>12} a document over {o.documents:,} documents")
    lines.append(f"  break-even         {breakeven_words(r)}"
                 + (f"; against the Batch API: {_vs_batch(r)}" if r.batch_per_doc is not None else ""))
    lines += ["Assumptions:", *(f"  - {line}" for line in cost_assumptions(r))]
    return "\n".join(lines)


def _vs_batch(r: BreakEven) -> str:
    if r.breakeven_vs_batch_docs is None:
        return "never on cost"
    return (f"{r.breakeven_vs_batch_docs:,} documents"
            + (f" ({r.breakeven_vs_batch_nights:,} nights)" if r.breakeven_vs_batch_nights else ""))


# -- the measured comparison ---------------------------------------------------------------------------


def volume_sentence(c: Comparison) -> str:
    """Where the comparison's monthly volume comes from."""
    a, observed = c.assumptions, c.observed
    if c.volume_given:
        return (f"Volume: {number(c.docs_per_month)} documents a month, as given (--docs-per-month)"
                + (f"; the journal observed {number(observed.docs_per_night * a.nights_per_month)}."
                   if observed is not None else ": the journal has no production run to observe it from."))
    assert observed is not None
    return (f"Volume: {number(c.docs_per_month)} documents a month, {number(observed.docs_per_night)} new documents "
            f"a night over {observed.nights} production night(s) in the journal times "
            f"{number(a.nights_per_month)} nights a month.")


def finetuned_pricing_sentence(c: Comparison) -> str:
    """How the fine-tuned option no experiment measured is priced ("" when one was measured)."""
    pricing, a = c.finetuned_pricing, c.assumptions
    if pricing is None:
        return ""
    if pricing.cost is not None:
        return (f"Fine-tuned {pricing.price.model} is priced as the cost block above prices it, from the fine-tuning "
                f"examples of the production documents, with {usd(pricing.training_usd)} of training.")
    ft = pricing.price
    prices = (f"{1 + a.reask_rate_finetuned:.2f} requests a document, at {usd_as_given(ft.input_per_mtok)} / "
              f"{usd_as_given(ft.output_per_mtok)} per Mtok of input / output, and {a.training_examples:,} examples "
              f"x {a.epochs} epoch(s) of training at {usd_as_given(ft.training_per_mtok)} per Mtok "
              f"({usd(pricing.training_usd)}), from the price table dated {c.table.as_of}.")
    if pricing.examples is not None:
        ex = pricing.examples
        return (f"Without a production run, fine-tuned {ft.model} is priced from the fine-tuning examples "
                f"`extractor export finetune` would write for the experiment's {ex.examples:,} document(s): "
                f"{number(ex.prompt_tokens)} prompt and {number(ex.answer_tokens)} answer tokens, at {ex.basis}; "
                + prices)
    base = pricing.base
    assert base is not None
    bound = ("" if base.examples == "none" else
             " (its prompt carries examples a fine-tuned model would not need: an upper bound)")
    return (f"Without a production run or the experiment's documents, fine-tuned {ft.model} is priced from the "
            f"tokens of {base.variant}{bound}, {number(pricing.prompt_tokens)} prompt and "
            f"{number(pricing.output_tokens)} completion tokens a request, " + prices)


def comparison_assumptions(c: Comparison) -> list[str]:
    """Every assumption behind the comparison, one plain sentence each."""
    a = c.assumptions
    measured_on = ", ".join(f"{v.variant} (experiment {v.experiment_id}, {v.finished_at or 'time unknown'})"
                            for v in c.variants)
    lines = [
        f"Accuracy is the share of labeled field values right (the row with field '{OVERALL}') in each "
        f"variant's newest experiment in {c.source.name}: {measured_on or 'no variant'}; the 95% interval is "
        "Wilson's over the fields scored, and options whose intervals overlap are a tie, not a ranking.",
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
    elif finetuned.variant is not None and finetuned.variant.finetuned:
        lines.append(local_finetune_sentence(finetuned.variant))
    else:
        lines.append(f"The fine-tuned model {finetuned.label} exists and was measured: its training is spent "
                     "and is not counted again.")
    no_batch = [o.label for o in c.options if o.per_doc is not None and o.batch_per_doc is None]
    lines += [
        f"A month is the documents at the immediate price; training is paid once. Options are ranked by what they "
        f"cost over the {number(c.horizon_nights)}-night payback horizon, training included.",
        f"The Batch API bills {pct(c.table.batch_discount)} of the normal price and answers within 24 hours instead "
        "of seconds" + (f"; {', '.join(no_batch)} {'has' if len(no_batch) == 1 else 'have'} none (not an OpenAI "
                        "model)" if no_batch else "") + ".",
    ]
    if c.target is not None:
        lines.append(f"The target ({pct(c.target, 1)}) is the overall share of labeled field values right, "
                     "not a minimum for each field.")
    return lines


def local_finetune_sentence(v: VariantMeasure) -> str:
    """A locally fine-tuned variant: what it was trained on, what training took, what serving it costs."""
    trained = f"{v.trained_documents:,} labeled document(s)" if v.trained_documents is not None else "its labels"
    took = (f"{number(v.training_s)} s of training ({number(v.training_compute_s or 0.0)} CPU s)"
            if v.training_s is not None else "an unrecorded training time")
    serving = (f"{number(v.compute_s_per_doc)} CPU s a document on the local model server, no API price"
               if v.compute_s_per_doc is not None else "no API price")
    return (f"The fine-tuned model {v.finetuned} was trained locally (extractor finetune-local) on {trained} in "
            f"{took}, and measured on {v.documents:,} held-back document(s) it was never trained on; serving it "
            f"costs {serving}. Its training is spent and is not counted again.")


def render_comparison(comparison: Comparison) -> str:
    """The measured options as a table (figures only) and their assumptions; the verdict is `render_verdict`'s."""
    c = comparison
    width = max(len("option"), *(len(o.label) for o in c.options))
    batch = any(o.batch_per_doc is not None for o in c.options)
    head = (f"  {'option':<{width}}  {'accuracy':>8}  {'95% interval':>12}  {'fields/docs':>11}  {'a document':>10}"
            f"  {'a month':>10}  {'once':>8}" + (f"  {'Batch, doc':>10} {'Batch, month':>12}" if batch else ""))
    lines = [f"Measured options ({c.source.name}, the newest experiment of each variant), "
             f"{number(c.docs_per_month)} documents a month"
             + (" (Batch: the Batch API, answers within 24 h)" if batch else ""), head]
    for o in c.options:
        v = o.variant
        accuracy = pct(o.accuracy, 1) if o.accuracy is not None else "UNKNOWN"
        counts = f"{v.labeled_values:,}/{v.documents:,}" if v is not None and v.labeled_values else (
            f"?/{v.documents:,}" if v is not None else "-")
        row = (f"  {o.label:<{width}}  {accuracy:>8}  {interval_text(o.interval) or '-':>12}  {counts:>11}  "
               f"{usd(o.per_doc):>10}  {usd(c.per_month(o)):>10}  {usd(o.training_usd) if o.training_usd else '-':>8}"
               + (f"  {usd(o.batch_per_doc, '-'):>10} {usd(c.batch_per_month(o), '-'):>12}" if batch else ""))
        lines.append(row)
    lines += ["Assumptions:", *(f"  - {line}" for line in comparison_assumptions(c))]
    return "\n".join(lines)


# -- the one verdict -----------------------------------------------------------------------------------------

TRAINING_SET_WHY = ("an assumption, --training-examples: a few hundred labelled documents is a common training set "
                    "for fine-tuning a small model to extract; OpenAI accepts 10 and suggests starting with 50, so a "
                    "first fine-tune on what you have, measured as a variant, tells whether labelling the rest pays")


def labelling_sentence(need: Labelling, target_model: str) -> str:
    """What fine-tuning needs in labelled documents and what labelling them takes."""
    head = f"Fine-tuning {target_model} needs {need.need:,} labelled documents ({TRAINING_SET_WHY})"
    if need.more == 0:
        return head + f"; you have {need.have:,}: enough, no labelling left."
    cost = f", {usd(need.usd)} at {usd_as_given(need.hourly_usd)} an hour" if need.usd is not None else (
        " (set label_hourly_usd in the config file to price it)")
    return (head + f"; you have {need.have:,}: label {need.more:,} more, about {number(need.hours)} hours at "
            f"{number(need.minutes_per_doc)} minutes a document (label_minutes){cost}.")


def payback_sentence(v: Verdict, subject: str = "it") -> str:
    """When fine-tuning (`subject`) pays back on cost, from the cost-only analysis, else the comparison's priced
    option; lower-case, to follow a colon."""
    r = v.cost
    if r is not None:
        o, target = r.observed, r.assumptions.target_model
        if r.breakeven_docs is None:
            free = " (free: it runs on this machine)" if r.prompting_per_doc == 0 else ""
            return (f"on cost {subject} never pays back: a fine-tuned {target} costs {usd(r.finetuned_per_doc)} a "
                    f"document against {usd(r.prompting_per_doc)} prompting {o.model} today{free}, so its "
                    f"{usd(r.training_usd)} of training and the labelling buy accuracy, not savings.")
        payback = f"{r.breakeven_docs:,} documents" + (
            f" ({r.breakeven_nights:,} nights at {number(r.docs_per_night)} a night)" if r.breakeven_nights else "")
        if r.pays_back:
            text = (f"on cost {subject} pays back its {usd(r.training_usd)} of training after {payback}, then saves "
                    f"{usd(r.saving_per_month)} a month over prompting {o.model}")
            if r.batch_per_doc is not None and r.batch_per_doc <= r.finetuned_per_doc:
                text += (f"; if answers may wait 24 h, the Batch API ({usd(r.batch_per_doc)} a document) is cheaper "
                         "still, with no training")
            elif r.breakeven_vs_batch_docs is not None:
                text += f"; it beats the Batch API too after {r.breakeven_vs_batch_docs:,} documents"
            return text + "."
        return (f"on cost {subject} pays back its {usd(r.training_usd)} of training only after {payback}, beyond "
                f"the {number(r.assumptions.max_payback_nights)}-night horizon: not worth it for cost alone.")
    ft, c = v.finetuned, v.comparison
    if ft is None or c is None or ft.per_doc is None:
        return ""
    return (f"on cost (no production run to compare with) a fine-tuned {c.assumptions.target_model} is priced at "
            f"{usd(ft.per_doc)} a document, {usd(c.per_month(ft))} a month, plus {usd(ft.training_usd)} of training "
            "once.")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _batch(c: Comparison, o: Option) -> str:
    if o.batch_per_doc is None:
        return ""
    return (f" If answers may wait 24 h, the Batch API runs it for {usd(o.batch_per_doc)} a document, "
            f"{usd(c.batch_per_month(o))} a month.")


def _use(v: Verdict, o: Option) -> str:
    """The option to use: it reaches the target, the cheapest that does."""
    c = v.comparison
    assert c is not None and v.target is not None
    heads = {KEEP: f"Keep prompting with {o.label}", RETRIEVE: f"Use retrieved examples, {o.label}",
             STRONGER: f"Use a stronger model with the same prompt, {o.label}",
             FINETUNE: f"Use the fine-tuned model, {o.label}"}
    text = (f"{heads[rung_of(o, c.base_model)]}: {measured(o.variant) if o.variant else pct(o.accuracy, 1)} "
            f"reaches the target {pct(v.target, 1)} for {usd(o.per_doc)} a document, {usd(c.per_month(o))} a month "
            f"({number(c.docs_per_month)} documents)"
            + (f" plus {usd(o.training_usd)} of training once" if o.training_usd else "")
            + f": the cheapest measured option that does, over the {number(c.horizon_nights)}-night horizon.")
    if o.interval is not None and o.interval[0] < v.target:
        text += (f" Its interval reaches down to {pct(o.interval[0], 1)}: measure it on more labelled documents to "
                 "be sure it holds.")
    text += _batch(c, o)
    for other in c.cheaper_unmeasured(o):
        text += (f" {other.label[:1].upper() + other.label[1:]} would cost {usd(c.per_month(other))} a month, but its "
                 "accuracy is unknown until an experiment measures it.")
    unpriced = [x.label for x in c.unpriced_reaching()]
    if unpriced:
        text += (f" ({', '.join(unpriced)} also reach{'es' if len(unpriced) == 1 else ''} it but no price is known "
                 "for its model.)")
    return text


MEASURE = "extractor experiment INPUT_DIR --labels FILE --variant "


def render_verdict(v: Verdict) -> str:
    """The one verdict, in words: the rung, when it pays back, what it needs, with every accuracy's count and
    interval."""
    c, need = v.comparison, v.labelling
    target_model = (v.cost.assumptions.target_model if v.cost is not None
                    else c.assumptions.target_model if c is not None else "")
    if v.use is not None:
        return _use(v, v.use)
    if c is not None and v.target is not None:
        goal = pct(v.target, 1)
        missed = f"none of the measured options reaches {goal} of fields right. {leaders_sentence(c)}"
        if v.rung == RETRIEVE:
            return (f"Use retrieved examples next: {missed} Measure `--variant {v.measure}` ({MEASURE}{v.measure}): it "
                    f"needs no training, only the {need.have:,} labelled documents you have. If it does not reach the "
                    "target, the rungs after it are a stronger model with the same prompt, then fine-tuning "
                    f"({need.need:,} labelled documents).")
        if v.rung == STRONGER:
            local = (" or a larger local model (`--variant model_path=FILE.gguf`)"
                     if c.observed is not None and not c.observed.batch_api else "")
            price = (f" At today's prompt's tokens it would cost about {usd(v.measure_per_doc)} a document, "
                     f"{usd(v.measure_per_doc * c.docs_per_month)} a month, at its list price."
                     if v.measure_per_doc is not None else "")
            payback = payback_sentence(v)
            return (f"Try a stronger model with the same prompt: {missed} Retrieved examples were measured and do "
                    f"not reach it either. Measure `--variant {v.measure}`{local}: it needs no labels.{price} If no "
                    f"model reaches the target, the rung after is fine-tuning. "
                    f"{labelling_sentence(need, target_model)}" + (f" {_capital(payback)}" if payback else ""))
        measured_ft = c.finetuned_measured()
        if measured_ft is not None:
            return (f"Fine-tune again, on more and better labels: {missed} The fine-tuned {measured_ft.label} was "
                    f"measured too. You have {need.have:,} labelled documents; label more, fine-tune again and measure "
                    "it as a variant.")
        tried = "Retrieved examples and a stronger model were measured and do not reach it either."
        return (f"Fine-tune: {missed} {tried} {labelling_sentence(need, target_model)} "
                f"{_capital(payback_sentence(v))} Then `extractor export finetune`, fine-tune, and measure it: "
                f"`{MEASURE}model=ft:...`.").replace("  ", " ")
    # No target, or nothing measured: on cost alone.
    r = v.cost
    if r is None:
        assert c is not None
        return (f"No verdict on cost (no production run to price) and no target: {leaders_sentence(c)} Give "
                "--target 0.95 (a share of fields right) for the cheapest option that reaches it.")
    o = r.observed
    quality = (" Quality is taken as equal: measure it against labelled documents with `extractor experiment` and "
               "give --target to weigh it.")
    if v.rung == FINETUNE:
        return (f"Fine-tune {r.assumptions.target_model}: {payback_sentence(v)} "
                f"{labelling_sentence(need, r.assumptions.target_model)} Measure the fine-tuned model as a variant "
                f"(`{MEASURE}model=ft:...`) before switching." + quality)
    batch = ""
    if r.batch_per_doc is not None and r.prompting_per_doc > 0:
        share = r.table.batch_discount
        cut = "halves today's cost" if share == 0.5 else f"cuts today's cost by {pct(1 - share)}"
        batch = (f" If answers may wait 24 h, the Batch API {cut} with no training: {usd(r.batch_per_doc)} a "
                 "document.")
    return f"Keep prompting {o.model}: {payback_sentence(v, 'fine-tuning')}{batch}" + quality


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


def render_decision(cost: BreakEven | None, comparison: Comparison | None, notes: Sequence[str],
                    verdict: Verdict) -> str:
    """`extractor breakeven`'s output: the cost block, the notes, the measured comparison, and the one verdict."""
    parts = [render_text(cost)] if cost is not None else []
    parts += list(notes)
    if comparison is not None:
        parts.append(render_comparison(comparison))
    parts.append(f"Verdict: {render_verdict(verdict)}")
    return "\n\n".join(parts)
