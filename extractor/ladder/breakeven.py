"""Would fine-tuning pay for itself? Prompting today versus a fine-tuned model, from a team's own journal.

Everything is priced per document from what the journal observed (tokens, requests, cache hits, volume),
so the answer follows the team's documents rather than a vendor's example. Nothing here sends a request:
prices come from genai-prices (inference of known models) and the dated fine-tuning table in
`extractor/data/finetune_prices.toml`. Every number that is assumed rather than observed is an
`Assumptions` field and is spelled out by `BreakEven.assumptions_text()`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from extractor.config import ModelPrice, RunConfig
from extractor.errors import ConfigError
from extractor.extraction.prompts import system_prompt
from extractor.formatting import number, pct, usd, usd_as_given
from extractor.llm.pricing import (
    DEFAULT_FINETUNE_TARGET,
    MTOK,
    FinetunePrice,
    FinetunePriceTable,
    finetune_prices,
    unit_prices,
)
from extractor.llm.tokens import TokenRate, request_rate
from extractor.schemas import Schema
from extractor.store import Journal
from extractor.table import OVERALL
from extractor.values.metrics import best_by_field

# -- what the journal observed ------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """One model's observed workload: volume and mean tokens per document and per billed request."""

    model: str
    documents: int  # documents sent to the model and billed (carried-over cached rows excluded)
    nights: int  # runs of this model in the journal, including runs that found nothing new
    docs_per_night: float
    prefix_tokens: float  # static system prompt (instructions + few-shot examples), per request
    prefix_tokens_short: float  # the same without the examples, as a fine-tuned model would be prompted
    document_tokens: float  # per request, beyond the prefix (the document, its fence, tool schema, re-ask turns)
    output_tokens: float  # completion tokens per request
    requests_per_doc: float  # billed requests, validation re-asks included, transient retries excluded
    cached_fraction: float  # share of prompt tokens billed at the cached-input price
    cost_per_doc: float | None = None  # mean cost_usd actually recorded; None if any row was unpriced
    # How prefix tokens were derived: a per-character rate fitted across single-request documents of
    # different lengths, with the fixed per-request tokens (tool schema, message framing) apart; or,
    # when the documents do not allow a fit, the whole prompt's tokens per character.
    fitted_from: int = 0  # documents the fit used; 0: averaged rate
    overhead_tokens: float | None = None  # fitted fixed tokens per request, not proportional to characters


def observed_from_journal(journal_path: Path, schema: Schema, model: str) -> Observed | None:
    """Derive `Observed` from the journal's paid ok/failed rows of `model`; None when there are none."""
    if not journal_path.is_file():
        return None  # no journal yet: looking must not create one
    with Journal.open_readonly(journal_path) as journal:
        calibration = journal.tokens_per_char(model)
        if calibration is None:
            return None
        rows = journal.paid_extractions(model)
        runs = journal.runs_with_summaries()
    observed = TokenRate.observed(calibration)

    # results has PRIMARY KEY (run_id, doc_id) and paid_extractions keeps only rows stored under their own run_id:
    # each row is one paid extraction of one document, counted once.
    attempts = prompt = completion = cached = 0
    cost: float | None = 0.0
    run_ids: set[str] = set()
    single: list[tuple[int, int]] = []  # (prompt characters, prompt tokens) of one-request documents
    for run_id, row_attempts, row_prompt, row_completion, row_cached, row_cost, chars in rows:
        if (row_attempts or 1) == 1:
            single.append((chars, row_prompt))
        run_ids.add(run_id)
        attempts += row_attempts or 1
        prompt += row_prompt
        completion += row_completion or 0
        cached += row_cached or 0
        cost = None if cost is None or row_cost is None else cost + row_cost
    documents = len(rows)
    if documents == 0:
        return None

    # Transient retries (429, 5xx, timeouts) are HTTP requests that bill nothing; counting them as requests
    # would shrink the per-request token means and understate what a fine-tuned request costs. Rows do not
    # carry them, run summaries do (a killed run has no summary: its retries stay counted, a small excess).
    retries = 0
    for run_id, summary in runs:
        if summary is not None and summary.get("model") == model:
            run_ids.add(run_id)  # a night that found nothing new is still a night
            retries += int(summary.get("transport_retries") or 0)
    requests = max(documents, attempts - retries)

    per_request = request_rate(observed, single, documents, requests)
    prefix = per_request.tokens(len(system_prompt(schema)))
    prefix_short = per_request.tokens(len(system_prompt(schema, examples=False)))
    nights = len(run_ids)
    return Observed(
        model=model, documents=documents, nights=nights, docs_per_night=documents / nights,
        prefix_tokens=prefix, prefix_tokens_short=prefix_short,
        document_tokens=max(0.0, prompt / requests - prefix), output_tokens=completion / requests,
        requests_per_doc=requests / documents, cached_fraction=cached / prompt,
        cost_per_doc=None if cost is None else cost / documents,
        fitted_from=per_request.fitted_from, overhead_tokens=per_request.overhead_tokens)


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


current_prices = unit_prices
"""USD per Mtok of `model` (input, cached input, output), looked up as the cost recorded on each row is:
`extractor.llm.pricing.unit_prices`."""


@dataclass(frozen=True)
class Assumptions:
    """What the comparison assumes rather than observes; every field is listed by `assumptions_text()`."""

    target_model: str = DEFAULT_FINETUNE_TARGET
    """Model to fine-tune; it must be in the fine-tuning price table."""

    training_examples: int = 500
    """Labelled documents in the training file, each one prompt (without examples) plus its answer."""

    epochs: int = 3
    """Passes over the training file; training is billed per token per epoch."""

    reask_rate_finetuned: float = 0.02
    """Extra requests per document after fine-tuning (validation re-asks); 0.02 = 1.02 requests a document."""

    nights_per_month: float = 30
    """Runs a month, to turn the observed documents per night into a monthly volume."""

    current_price: ModelPrice | None = None
    """USD per Mtok (input, cached input, output) of the model used today; None: the observed model's price
    in the config's [prices], else from genai-prices (`current_prices()`)."""

    finetuned_cached_fraction: float = 0.0
    """Share of the fine-tuned model's prompt tokens billed as cached. 0: without the examples the static
    prefix is usually under the 1,024 tokens OpenAI starts caching at."""

    max_payback_nights: float = 90
    """Fine-tuning is recommended only if it pays back within this many nights: prices, models and the
    documents themselves change within months, and a slower payback may never come."""

    horizon_docs: int | None = None
    """Document volume the cost curves run to; None: twice the break-even volume, or a year of documents."""

    docs_per_month: float | None = None
    """Documents a month for the comparison of measured variants (`--docs-per-month`); None: the journal's
    observed production volume (documents a night times `nights_per_month`). Needed when there is no
    production run to observe."""

    def __post_init__(self) -> None:
        if self.training_examples < 0 or self.epochs < 0:
            raise ConfigError("training_examples and epochs must not be negative")
        if self.reask_rate_finetuned < 0 or self.nights_per_month <= 0 or self.max_payback_nights < 0:
            raise ConfigError("reask_rate_finetuned and max_payback_nights must not be negative, "
                             "nights_per_month must be positive")
        if not 0.0 <= self.finetuned_cached_fraction <= 1.0:
            raise ConfigError("finetuned_cached_fraction must be between 0 and 1")
        if self.horizon_docs is not None and self.horizon_docs <= 0:
            raise ConfigError("horizon_docs must be positive")
        if self.docs_per_month is not None and self.docs_per_month <= 0:
            raise ConfigError("docs_per_month must be positive")


# -- the comparison -----------------------------------------------------------------------------------


def _per_request_usd(prompt_tokens: float, cached_fraction: float, output_tokens: float, input_per_mtok: float,
                     cached_per_mtok: float, output_per_mtok: float) -> float:
    """USD of one request: prompt tokens split between the input and cached-input prices, plus the answer."""
    prompt_rate = (1.0 - cached_fraction) * input_per_mtok + cached_fraction * cached_per_mtok
    return (prompt_tokens * prompt_rate + output_tokens * output_per_mtok) / MTOK


def _ceil(value: float) -> int:
    # Rounded first so float noise (29.999999999999996 or 30.000000000000004) does not move the answer by one.
    return math.ceil(round(value, 6))


def _breakeven_docs(one_time: float, per_doc_new: float, per_doc_old: float) -> int | None:
    """Smallest volume n with one_time + n*new <= n*old; None when the new option never saves per document."""
    saving = per_doc_old - per_doc_new
    if saving <= 0:
        return None
    return _ceil(one_time / saving)


@dataclass(frozen=True)
class BreakEven:
    """Per-document and monthly cost of prompting, a fine-tuned model and the Batch API, and when fine-tuning
    has paid for its training."""

    observed: Observed
    assumptions: Assumptions
    table: FinetunePriceTable
    current_price: ModelPrice  # cached_input_per_mtok is always set
    current_price_source: str
    finetune_price: FinetunePrice
    prompting_per_doc: float
    finetuned_per_doc: float
    batch_per_doc: float
    training_tokens: float
    training_usd: float
    breakeven_docs: int | None  # None: never on cost
    breakeven_nights: int | None
    breakeven_vs_batch_docs: int | None  # the same against the Batch API
    breakeven_vs_batch_nights: int | None

    @property
    def docs_per_month(self) -> float:
        return self.observed.docs_per_night * self.assumptions.nights_per_month

    @property
    def prompting_per_month(self) -> float:
        return self.prompting_per_doc * self.docs_per_month

    @property
    def finetuned_per_month(self) -> float:
        return self.finetuned_per_doc * self.docs_per_month

    @property
    def batch_per_month(self) -> float:
        return self.batch_per_doc * self.docs_per_month

    def _horizon(self) -> int:
        if self.assumptions.horizon_docs is not None:
            return self.assumptions.horizon_docs
        if self.breakeven_docs:
            return 2 * self.breakeven_docs
        return max(1, round(12 * self.docs_per_month))

    def curves(self, points: int = 50) -> dict[str, list[tuple[int, float]]]:
        """Cumulative USD per option at `points` document volumes from 0 to the horizon, for a chart."""
        if points < 2:
            raise ValueError("a curve needs at least 2 points")
        horizon = self._horizon()
        volumes = sorted({round(horizon * i / (points - 1)) for i in range(points)})
        return {
            "prompting": [(n, n * self.prompting_per_doc) for n in volumes],
            "fine-tuned": [(n, self.training_usd + n * self.finetuned_per_doc) for n in volumes],
            "batch": [(n, n * self.batch_per_doc) for n in volumes],
        }

    def assumptions_text(self) -> list[str]:
        """Every assumption behind the numbers, one plain sentence each."""
        o, a, p, f = self.observed, self.assumptions, self.current_price, self.finetune_price
        ft_prompt = o.prefix_tokens_short + o.document_tokens
        per_example = ft_prompt + o.output_tokens
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
            f"({self.current_price_source}).",
            f"Fine-tuned {f.model} costs {usd_as_given(f.input_per_mtok)} per Mtok of input, "
            f"{usd_as_given(f.cached_input_per_mtok)} cached and {usd_as_given(f.output_per_mtok)} of output, and "
            f"training {usd_as_given(f.training_per_mtok)} per Mtok, from the "
            f"price table dated {self.table.as_of} ({self.table.source}); prices change, verify them.",
            f"The fine-tuned model is prompted without the few-shot examples: {number(o.prefix_tokens_short)} static "
            f"tokens instead of {number(o.prefix_tokens)}; documents and answers stay the same length.",
            f"The fine-tuned model needs {1 + a.reask_rate_finetuned:.2f} requests a document "
            f"({pct(a.reask_rate_finetuned)} re-asks).",
            f"{pct(a.finetuned_cached_fraction)} of the fine-tuned model's prompt tokens are billed as cached"
            + (" (without the examples the static prefix is usually under the 1,024 tokens OpenAI caches)."
               if a.finetuned_cached_fraction == 0 else "."),
            f"Training: {a.training_examples:,} examples of {number(per_example)} tokens (prompt without examples, "
            f"document, answer) for {a.epochs} epoch(s), {number(self.training_tokens)} training tokens billed "
            "once; labelling the examples and the engineering time are not counted.",
            "A fine-tuned model has no hosting fee: it is billed per token like the base model.",
            f"The Batch API bills {pct(self.table.batch_discount)} of the normal price and answers within 24 hours "
            "instead of seconds; the fine-tuned model is priced at the normal, immediate rate.",
            "Quality is taken as equal for every option: this compares cost only.",
            f"Fine-tuning is recommended only if it pays back within {number(a.max_payback_nights)} nights.",
        ]
        return lines

    @property
    def recommendation(self) -> str:
        """One plain sentence: fine-tune, keep prompting, or never on cost, with the Batch API alternative."""
        o, a = self.observed, self.assumptions
        target = a.target_model
        batch = self._batch_clause()
        if self.breakeven_docs is None:
            head = (f"Never on cost: a fine-tuned {target} costs {usd(self.finetuned_per_doc)} a document against "
                    f"{usd(self.prompting_per_doc)} prompting {o.model} today, so its "
                    f"{usd(self.training_usd)} of training never pays back")
            return head + (f"; {batch}." if batch else ".")
        payback = (f"{self.breakeven_docs:,} documents"
                   + (f" ({self.breakeven_nights:,} nights at {number(o.docs_per_night)} a night)"
                      if self.breakeven_nights is not None else ""))
        if self.breakeven_nights is not None and self.breakeven_nights <= a.max_payback_nights:
            saving = self.prompting_per_month - self.finetuned_per_month
            head = (f"Fine-tune: {target} pays back its {usd(self.training_usd)} of training after {payback}, "
                    f"then saves {usd(saving)} a month over prompting {o.model}")
            if self.batch_per_doc <= self.finetuned_per_doc:
                tail = (f"; if answers may wait 24 h, the Batch API ({usd(self.batch_per_doc)} a document) is "
                        "cheaper still, with no training.")
            elif self.breakeven_vs_batch_docs is not None:
                tail = f"; it beats the Batch API too after {self.breakeven_vs_batch_docs:,} documents."
            else:
                tail = "."
            return head + tail
        head = f"Keep prompting: fine-tuning {target} pays back after {payback}"
        return head + (f"; {batch}." if batch else ".")

    def _batch_clause(self) -> str:
        share = self.table.batch_discount
        if share >= 1 or self.prompting_per_doc == 0:  # nothing to halve (the embedded model is free)
            return ""
        cut = "halves today's cost" if share == 0.5 else f"cuts today's cost by {pct(1 - share)}"
        return f"the Batch API {cut} with no training, if answers may take up to 24 h"


def analyze(observed: Observed, assumptions: Assumptions, table: FinetunePriceTable, *,
            prices: Mapping[str, ModelPrice] | None = None, base_url: str | None = None) -> BreakEven:
    """Price prompting, the fine-tuned target and the Batch API per document, and find the break-even volume.

    Today's model is priced by `assumptions.current_price` if given, else as the cost recorded on each row is:
    its entry in `prices` (the config's [prices]), else genai-prices (matched on `base_url`'s provider first).
    Raises KeyError when the target has no fine-tuning price, ValueError when today's model has no price.
    """
    o, a = observed, assumptions
    if a.current_price is not None:
        given = a.current_price
        current: ModelPrice | None = ModelPrice(
            input_per_mtok=given.input_per_mtok, output_per_mtok=given.output_per_mtok,
            cached_input_per_mtok=(given.cached_input_per_mtok if given.cached_input_per_mtok is not None
                                   else given.input_per_mtok))
        source = "price given in the assumptions"
    elif o.cost_per_doc == 0 and not (prices and o.model in prices):
        # Billed tokens at $0 on every row: how pricing.Pricer records a local model (the embedded one, any GGUF
        # it runs). Priced as the rows were, not looked up by name; the CPU time is not priced.
        current = ModelPrice(input_per_mtok=0.0, output_per_mtok=0.0, cached_input_per_mtok=0.0)
        source = ("every billed row of it recorded $0: a model that runs on this machine, its CPU time not "
                  f"counted; set [prices.{o.model!r}] to put a price on it")
    else:
        current = current_prices(o.model, base_url=base_url, overrides=prices)
        source = (f"[prices.{o.model!r}] in the config file" if prices and o.model in prices
                  else f"genai-prices {_genai_prices_version()}")
    if current is None:
        raise ValueError(f"no price known for model {o.model!r}: set [prices.{o.model!r}] in the config file "
                         "(or give Assumptions.current_price)")
    assert current.cached_input_per_mtok is not None
    ft = table.get(a.target_model)

    # Prompting: every request carries the full prefix; the observed cached share applies to the whole prompt.
    prompting = o.requests_per_doc * _per_request_usd(
        o.prefix_tokens + o.document_tokens, o.cached_fraction, o.output_tokens,
        current.input_per_mtok, current.cached_input_per_mtok, current.output_per_mtok)
    # Fine-tuned: the examples are learnt, so only the short prefix is sent, and re-asks become rare.
    finetuned = (1.0 + a.reask_rate_finetuned) * _per_request_usd(
        o.prefix_tokens_short + o.document_tokens, a.finetuned_cached_fraction, o.output_tokens,
        ft.input_per_mtok, ft.cached_input_per_mtok, ft.output_per_mtok)
    batch = prompting * table.batch_discount
    training_tokens = a.training_examples * (o.prefix_tokens_short + o.document_tokens + o.output_tokens) * a.epochs
    training = training_tokens * ft.training_per_mtok / MTOK

    def nights(docs: int | None) -> int | None:
        # The night by whose end the cumulative volume reaches `docs`.
        if docs is None or o.docs_per_night <= 0:
            return None
        return _ceil(docs / o.docs_per_night)

    docs = _breakeven_docs(training, finetuned, prompting)
    docs_vs_batch = _breakeven_docs(training, finetuned, batch)
    return BreakEven(
        observed=o, assumptions=a, table=table, current_price=current, current_price_source=source,
        finetune_price=ft, prompting_per_doc=prompting, finetuned_per_doc=finetuned, batch_per_doc=batch,
        training_tokens=training_tokens, training_usd=training, breakeven_docs=docs,
        breakeven_nights=nights(docs), breakeven_vs_batch_docs=docs_vs_batch,
        breakeven_vs_batch_nights=nights(docs_vs_batch))


def _genai_prices_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:
        return "(version unknown)"


# -- the quality wall ---------------------------------------------------------------------------------


def quality_wall(history: list[tuple[str, dict[str, float]]], threshold: float = 0.9, last: int = 3) -> list[str]:
    """Fields still below `threshold` in each of the last `last` prompt versions that scored them.

    `history` is (version label, {field: score 0..1}), oldest first. A field needs scores from at least two
    versions: one low score is a starting point, not a wall prompt work has failed to move. These are the
    fields where fine-tuning, rather than more prompt work, may be the way forward. Order: first appearance.
    """
    if last < 1:
        raise ValueError("last must be at least 1")
    scores: dict[str, list[float]] = {}
    for _, by_field in history:
        for name, score in by_field.items():
            scores.setdefault(name, []).append(score)
    return [name for name, series in scores.items()
            if len(series) >= 2 and all(s < threshold for s in series[-last:])]


# -- text ---------------------------------------------------------------------------------------------


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
        *(f"  - {line}" for line in r.assumptions_text()),
        f"Recommendation: {r.recommendation}",
    ]
    return "\n".join(lines)


# -- library entry point for `extractor breakeven` ------------------------------------------------------

@dataclass(frozen=True)
class BreakEvenConfig:
    """What `extractor breakeven` analyzes: a schema's journal, today's model, the fine-tune assumptions.

    From `settings`: the schema and its folders, [prices] (today's model, if self-hosted), base_url (to match
    its provider's prices) and [finetune_prices]."""

    settings: RunConfig
    model: str | None = None  # None: the model of the latest run
    assumptions: Assumptions = field(default_factory=Assumptions)
    target: float | None = None
    """Share of labeled field values right (the OVERALL accuracy of experiments.parquet) an option must reach
    to be recommended; None: compare the measured variants without recommending one for a target."""

    def __post_init__(self) -> None:
        if self.target is not None and not 0.0 < self.target <= 1.0:
            raise ConfigError(f"the target is a share of fields right between 0 and 1 (0.95 for 95%), "
                              f"not {self.target:g}")


def observed_workload(config: BreakEvenConfig) -> Observed:
    """The production workload `breakeven` prices: the journal's billed extractions by `config.model` (default:
    the latest run's model). Raises ConfigError when there is none; its message says why."""
    from extractor.schemas import load_schema

    settings = config.settings
    schema = load_schema(settings.schemas_dir, settings.schema)
    path = settings.layout.journal
    if not path.exists():
        raise ConfigError(f"no runs yet: {path} does not exist (run `extractor run` first)")
    model = config.model
    if model is None:
        with Journal.open_readonly(path) as journal:
            summaries = journal.run_summaries()
        if not summaries:
            raise ConfigError("no finished run in the journal yet")
        model = summaries[-1]["model"]
    observed = observed_from_journal(path, schema, model)
    if observed is None:
        raise ConfigError(f"the journal has no billed extraction by {model!r} (documents that reached the model "
                          "and used tokens): no observed workload to price")
    return observed


def breakeven_analysis(config: BreakEvenConfig) -> BreakEven:
    """Observed volume and tokens from the journal, priced today vs fine-tuned vs the Batch API.

    Raises ConfigError when there is nothing to analyze or something cannot be priced; its message says why.
    """
    settings = config.settings
    observed = observed_workload(config)
    try:
        return analyze(observed, config.assumptions, finetune_prices(settings.finetune_prices),
                       prices=settings.prices, base_url=settings.base_url)
    except ValueError as exc:  # no price for today's model
        raise ConfigError(f"cannot price today's model: {exc}") from None
    except KeyError as exc:  # no fine-tuning price for the target
        raise ConfigError(f"cannot price the fine-tuned model: {exc.args[0] if exc.args else exc}") from None


# -- measured accuracy against cost: experiments.parquet ------------------------------------------------

STATIC, RETRIEVED, FINETUNED, OTHER = "static prompt", "retrieved examples", "fine-tuned", "other"
"""The rungs an option is on: the schema's fixed prompt (examples=static or none), examples retrieved per
document (examples=similar:K), a fine-tuned model (a model name starting with `ft:`); OTHER: anything else."""

EXPERIMENT_COLUMNS = ("experiment_id", "finished_at", "variant", "model", "examples", "field", "documents",
                      "accuracy", "prompt_tokens_per_doc", "completion_tokens_per_doc", "cached_tokens_per_doc",
                      "requests_per_doc", "cost_usd_per_doc", "latency_s_per_doc", "agreement", "not_found_share")
"""The columns of experiments.parquet (`extractor.table.experiments_schema()`) the comparison reads."""


@dataclass(frozen=True)
class VariantMeasure:
    """One variant as its newest experiment measured it: accuracy against labels, per-document figures."""

    variant: str  # the SPEC as given: "examples=similar:3"
    experiment_id: str
    finished_at: str
    model: str
    examples: str
    documents: int  # labeled documents in the sample
    accuracy: float | None  # OVERALL: labeled field values right / labeled field values
    field_accuracy: dict[str, float]
    prompt_tokens_per_doc: float
    completion_tokens_per_doc: float
    cached_tokens_per_doc: float
    requests_per_doc: float
    cost_usd_per_doc: float | None  # what the experiment recorded; None: unpriced
    latency_s_per_doc: float | None
    agreement: float | None  # self-consistency (OVERALL row, else the mean over fields); None: not measured
    not_found_share: float | None  # values not found in their document (likewise); None: not measured

    @property
    def kind(self) -> str:
        if self.model.startswith("ft:"):
            return FINETUNED
        if self.examples.startswith("similar"):
            return RETRIEVED
        if self.examples in ("static", "none"):
            return STATIC
        return OTHER


def _spec_examples(variant: str) -> str:
    """`examples=` of a SPEC; "static" (the default) when it names none."""
    for part in variant.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "examples":
            return value.strip()
    return "static"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def read_experiments(path: Path) -> list[VariantMeasure]:
    """Each variant's rows of its newest experiment (latest `finished_at`, then `experiment_id`), in the order
    variants first appear in the file; [] when the file does not exist. Raises ConfigError when it lacks a
    column the comparison needs."""
    import polars as pl

    if not path.is_file():
        return []
    try:
        frame = pl.read_parquet(path, columns=list(EXPERIMENT_COLUMNS))
    except (pl.exceptions.ColumnNotFoundError, pl.exceptions.SchemaError) as exc:
        raise ConfigError(f"{path} lacks a column the comparison reads ({', '.join(EXPERIMENT_COLUMNS)}): "
                          f"{exc}") from None
    rows = list(frame.iter_rows(named=True))
    newest: dict[str, tuple[str, str]] = {}
    for r in rows:
        key = (r["finished_at"] or "", r["experiment_id"] or "")
        if r["variant"] is not None and key > newest.get(r["variant"], ("", "")):
            newest[r["variant"]] = key
    out: list[VariantMeasure] = []
    for variant, (_, experiment_id) in newest.items():
        mine = [r for r in rows if r["variant"] == variant and (r["experiment_id"] or "") == experiment_id]
        overall = next((r for r in mine if r["field"] == OVERALL), None)
        fields = [r for r in mine if r["field"] != OVERALL]
        head = overall or mine[0]

        def measured(column: str, overall: dict | None = overall, fields: list[dict] = fields) -> float | None:
            if overall is not None and overall[column] is not None:
                return float(overall[column])
            return _mean([float(r[column]) for r in fields if r[column] is not None])

        out.append(VariantMeasure(
            variant=variant, experiment_id=experiment_id, finished_at=head["finished_at"] or "",
            model=head["model"] or "", examples=head["examples"] or _spec_examples(variant),
            documents=int(head["documents"] or 0),
            accuracy=None if overall is None or overall["accuracy"] is None else float(overall["accuracy"]),
            field_accuracy={r["field"]: float(r["accuracy"]) for r in fields if r["accuracy"] is not None},
            prompt_tokens_per_doc=float(head["prompt_tokens_per_doc"] or 0.0),
            completion_tokens_per_doc=float(head["completion_tokens_per_doc"] or 0.0),
            cached_tokens_per_doc=float(head["cached_tokens_per_doc"] or 0.0),
            requests_per_doc=float(head["requests_per_doc"] or 1.0),
            cost_usd_per_doc=head["cost_usd_per_doc"], latency_s_per_doc=head["latency_s_per_doc"],
            agreement=measured("agreement"), not_found_share=measured("not_found_share")))
    return out


def labeled_documents(journal: Path) -> int:
    """Documents with at least one label in the labels store (`Labels.latest()`); 0 without a journal."""
    from extractor.store import Labels

    if not journal.is_file():
        return 0
    with Labels.open_readonly(journal) as labels:
        return sum(1 for fields in labels.latest().values() if fields)


@dataclass(frozen=True)
class Option:
    """One way to run extraction: a measured variant, or the fine-tuned model as priced but not measured."""

    label: str  # the variant's SPEC, or "fine-tuned <model> (not measured)"
    kind: str  # STATIC, RETRIEVED, FINETUNED or OTHER
    accuracy: float | None  # None: UNKNOWN, no experiment measured it
    per_doc: float | None  # USD a document at the immediate price; None: no price known
    batch_per_doc: float | None  # the same through the Batch API (answers within 24 h)
    training_usd: float = 0.0  # one-time; the monthly figures spread it over the payback horizon
    variant: VariantMeasure | None = None  # None: not measured
    priced_from_tokens: bool = False  # the experiment recorded no cost: priced from its tokens


def _variant_per_doc(v: VariantMeasure, table: FinetunePriceTable, prices: Mapping[str, ModelPrice] | None,
                     base_url: str | None) -> tuple[float | None, bool]:
    """(USD a document, priced from tokens): the recorded cost, else the variant's tokens at its model's list
    price ([prices], genai-prices, then the fine-tuning table for an `ft:BASE:...` model); None: unknown."""
    if v.cost_usd_per_doc is not None:
        return float(v.cost_usd_per_doc), False
    price = unit_prices(v.model, base_url=base_url, overrides=prices) if v.model else None
    if price is None and v.model.startswith("ft:"):
        base = v.model.split(":")[1]
        if base in table.models:
            ft = table.models[base]
            price = ModelPrice(input_per_mtok=ft.input_per_mtok, output_per_mtok=ft.output_per_mtok,
                               cached_input_per_mtok=ft.cached_input_per_mtok)
    if price is None:
        return None, False
    cached_rate = price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
    cached = min(v.cached_tokens_per_doc, v.prompt_tokens_per_doc)
    usd_per_doc = ((v.prompt_tokens_per_doc - cached) * price.input_per_mtok + cached * cached_rate
                   + v.completion_tokens_per_doc * price.output_per_mtok) / MTOK
    return usd_per_doc, True


@dataclass(frozen=True)
class Comparison:
    """The measured variants (newest experiment each) and the fine-tuned model, with their accuracy, cost a
    document and a month, immediate and through the Batch API, and the recommendation for a target."""

    options: tuple[Option, ...]
    docs_per_month: float
    volume: str  # where docs_per_month comes from, a sentence
    finetune_pricing: str  # how the fine-tuned option is priced, a sentence
    target: float | None
    labeled: int  # documents in the labels store
    assumptions: Assumptions
    table: FinetunePriceTable
    source: Path  # experiments.parquet

    @property
    def variants(self) -> list[VariantMeasure]:
        return [o.variant for o in self.options if o.variant is not None]

    @property
    def amortize_months(self) -> float:
        """Months the training cost is spread over: the payback horizon (at least one night)."""
        a = self.assumptions
        return max(a.max_payback_nights, 1.0) / a.nights_per_month

    def per_month(self, option: Option) -> float | None:
        """USD a month: the documents at the immediate price plus the training spread over the horizon."""
        if option.per_doc is None:
            return None
        return option.per_doc * self.docs_per_month + option.training_usd / self.amortize_months

    def batch_per_month(self, option: Option) -> float | None:
        if option.batch_per_doc is None:
            return None
        return option.batch_per_doc * self.docs_per_month + option.training_usd / self.amortize_months

    def best_per_field(self) -> dict[str, set[str]]:
        """{field: the variants with the highest accuracy of that field} (ties: all of them)."""
        scores: dict[str, dict[str, float | None]] = {}
        for v in self.variants:
            for name, score in v.field_accuracy.items():
                scores.setdefault(name, {})[v.variant] = score
        return best_by_field(scores)

    def _finetuned_measured(self) -> Option | None:
        return next((o for o in self.options if o.kind == FINETUNED and o.accuracy is not None), None)

    @property
    def recommendation(self) -> str | None:
        """The cheapest option a month that reaches the target, with the Batch API alternative; or the closest
        one and what to label next. None without a target."""
        target = self.target
        if target is None:
            return None
        goal = f"{pct(target, 1)} of fields right"
        reaching = [o for o in self.options if o.accuracy is not None and o.accuracy >= target - 1e-12]
        priced = [o for o in reaching if self.per_month(o) is not None]
        unpriced = [o.label for o in reaching if self.per_month(o) is None]
        unpriced_note = (f" ({', '.join(unpriced)} also reach{'es' if len(unpriced) == 1 else ''} it but "
                         "no price is known for its model.)" if unpriced else "")
        if priced:
            best = min(priced, key=lambda o: (self.per_month(o) or 0.0))
            text = (f"Use {best.label}: {pct(best.accuracy, 1)} of fields right (target {pct(target, 1)}) for "
                    f"{usd(best.per_doc)} a document, {usd(self.per_month(best))} a month"
                    + (f" with its {usd(best.training_usd)} of training spread over "
                       f"{number(self.amortize_months)} months" if best.training_usd else "")
                    + ", the cheapest measured option that reaches the target")
            text += self._batch_alternative(best, priced)
            cheaper_unknown = [o for o in self.options if o.accuracy is None and self.per_month(o) is not None
                               and (self.per_month(o) or 0.0) < (self.per_month(best) or 0.0)]
            for o in cheaper_unknown:
                text += (f" {o.label[:1].upper() + o.label[1:]} would cost {usd(self.per_month(o))} a month, but its "
                         "accuracy is unknown until an experiment measures it.")
            return text + unpriced_note
        rated = [o for o in self.options if o.accuracy is not None]
        if not rated:
            text = f"No measured variant has an overall accuracy, so none can be checked against {goal}."
        else:
            closest = max(rated, key=lambda o: o.accuracy or 0.0)
            text = (f"None of the measured options reaches {goal}: the closest is {closest.label} at "
                    f"{pct(closest.accuracy, 1)} ({usd(closest.per_doc)} a document, "
                    f"{usd(self.per_month(closest))} a month).")
        return text + unpriced_note + " " + self._next_rung()

    def _batch_alternative(self, best: Option, priced: list[Option]) -> str:
        if self.table.batch_discount >= 1:
            return "."
        batch = min(priced, key=lambda o: (self.batch_per_month(o) or 0.0))
        if batch is best:
            return (f"; if answers may wait 24 h, the Batch API runs it for {usd(best.batch_per_doc)} a document, "
                    f"{usd(self.batch_per_month(best))} a month.")
        return (f"; if answers may wait 24 h, {batch.label} through the Batch API reaches it too for "
                f"{usd(batch.batch_per_doc)} a document, {usd(self.batch_per_month(batch))} a month.")

    def _next_rung(self) -> str:
        a, labeled = self.assumptions, self.labeled
        need = a.training_examples
        measured = self._finetuned_measured()
        if measured is not None:
            return (f"The fine-tuned {measured.label} was measured too ({pct(measured.accuracy, 1)}): what is left "
                    f"is more and better labels (you have {labeled:,} labeled documents; label more, fine-tune "
                    "again and measure it as a variant) or a larger model, measured as a variant `model=...`.")
        text = ""
        if not any(o.kind == RETRIEVED and o.accuracy is not None for o in self.options):
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

    def assumptions_text(self) -> list[str]:
        """Every assumption behind the comparison, one plain sentence each."""
        a = self.assumptions
        measured = ", ".join(f"{v.variant} on {v.documents:,} labeled documents (experiment {v.experiment_id}, "
                             f"{v.finished_at or 'time unknown'})" for v in self.variants)
        lines = [
            f"Accuracy is the share of labeled field values right (the row with field '{OVERALL}') in each "
            f"variant's newest experiment in {self.source.name}: {measured or 'no variant'}.",
            "The labeled sample is taken to be like the production documents: its per-document tokens and cost "
            "are multiplied by the production volume.",
            self.volume,
        ]
        from_tokens = [o.label for o in self.options if o.priced_from_tokens]
        unpriced = [o.label for o in self.options if o.variant is not None and o.per_doc is None]
        lines.append("A variant's cost a document is what its experiment recorded (cost_usd_per_doc)"
                     + (f"; {', '.join(from_tokens)} recorded none and {'is' if len(from_tokens) == 1 else 'are'} "
                        "priced from its tokens at the model's list price (the fine-tuning table for ft: models)"
                        if from_tokens else "")
                     + (f"; no price is known for {', '.join(unpriced)}" if unpriced else "") + ".")
        finetuned = self._finetuned_measured()
        if finetuned is None:
            lines.append(f"The fine-tuned model's accuracy is UNKNOWN: no experiment measured a fine-tuned variant "
                         f"(model=ft:...), so fine-tuned {a.target_model} is priced but never taken to reach a "
                         "target.")
            lines.append(self.finetune_pricing)
        else:
            lines.append(f"The fine-tuned model {finetuned.label} exists and was measured: its training is spent "
                         "and is not counted again.")
        lines += [
            f"Training is spread over the {number(a.max_payback_nights)}-night payback horizon "
            f"({number(self.amortize_months)} months at {number(a.nights_per_month)} nights a month) in the monthly "
            "figures.",
            f"The Batch API bills {pct(self.table.batch_discount)} of the normal price for every option, the "
            "fine-tuned one included, and answers within 24 hours instead of seconds.",
            f"Fine-tuning needs {a.training_examples:,} labeled training documents (an assumption); the labels store "
            f"has {self.labeled:,} labeled documents.",
        ]
        if self.target is not None:
            lines.append(f"The target ({pct(self.target, 1)}) is the overall share of labeled field values right, "
                         "not a minimum for each field.")
        return lines


def _finetuned_option(variants: list[VariantMeasure], cost: BreakEven | None, assumptions: Assumptions,
                      table: FinetunePriceTable) -> tuple[Option, str]:
    """The fine-tuned target as `analyze` prices it (from production documents) when there is a cost analysis;
    otherwise from the tokens of the measured prompt without examples (examples=none), else the static one."""
    a = assumptions
    if cost is not None:
        label = f"fine-tuned {cost.finetune_price.model} (not measured)"
        how = (f"Fine-tuned {cost.finetune_price.model} is priced as the cost-only break-even above prices it, from "
               "the production documents in the journal (prompted without the few-shot examples), with "
               f"{usd(cost.training_usd)} of training.")
        return Option(label=label, kind=FINETUNED, accuracy=None, per_doc=cost.finetuned_per_doc,
                      batch_per_doc=cost.finetuned_per_doc * table.batch_discount,
                      training_usd=cost.training_usd), how
    try:
        ft = table.get(a.target_model)
    except KeyError as exc:
        raise ConfigError(f"cannot price the fine-tuned model: {exc.args[0] if exc.args else exc}") from None
    plain = [v for v in variants if v.kind == STATIC]
    base = (next((v for v in plain if v.examples == "none"), None) or next(iter(plain), None)
            or next(iter(variants), None))
    if base is None:
        raise ConfigError("experiments.parquet holds no variant")
    requests = base.requests_per_doc or 1.0
    prompt, output = base.prompt_tokens_per_doc / requests, base.completion_tokens_per_doc / requests
    per_doc = (1.0 + a.reask_rate_finetuned) * _per_request_usd(
        prompt, a.finetuned_cached_fraction, output, ft.input_per_mtok, ft.cached_input_per_mtok, ft.output_per_mtok)
    training = a.training_examples * (prompt + output) * a.epochs * ft.training_per_mtok / MTOK
    bound = ("" if base.examples == "none" else
             " (its prompt carries examples a fine-tuned model would not need: an upper bound)")
    how = (f"Without a cost-only analysis of production runs (above), fine-tuned {ft.model} is priced from the "
           f"tokens of {base.variant}"
           f"{bound}, {number(prompt)} prompt and {number(output)} completion tokens a request, "
           f"{1 + a.reask_rate_finetuned:.2f} requests a document, at {usd_as_given(ft.input_per_mtok)} / "
           f"{usd_as_given(ft.output_per_mtok)} per Mtok of input / output, and {a.training_examples:,} examples "
           f"x {a.epochs} epoch(s) of training at {usd_as_given(ft.training_per_mtok)} per Mtok "
           f"({usd(training)}), from the price table dated {table.as_of}.")
    return Option(label=f"fine-tuned {ft.model} (not measured)", kind=FINETUNED, accuracy=None, per_doc=per_doc,
                  batch_per_doc=per_doc * table.batch_discount, training_usd=training), how


def compare_experiments(config: BreakEvenConfig, cost: BreakEven | None = None) -> Comparison | None:
    """Measured variants of experiments.parquet against the fine-tuned model; None without that file.

    `cost` is the cost-only analysis of the production journal when there is one (its volume and fine-tuned
    pricing are reused). The monthly volume is `assumptions.docs_per_month` if given, else the journal's.
    Raises ConfigError when no volume is known or the file cannot be read; the message says why.
    """
    settings, a = config.settings, config.assumptions
    path = settings.layout.experiments
    if not path.is_file():
        return None
    variants = read_experiments(path)
    if not variants:
        raise ConfigError(f"{path} holds no experiment yet")
    observed: Observed | None = cost.observed if cost is not None else None
    if observed is None:
        try:
            observed = observed_workload(config)
        except ConfigError:
            observed = None
    if a.docs_per_month is not None:
        docs_per_month = a.docs_per_month
        volume = (f"Volume: {number(docs_per_month)} documents a month, as given (--docs-per-month)"
                  + (f"; the journal observed {number(observed.docs_per_night * a.nights_per_month)}."
                     if observed is not None else ": the journal has no production run to observe it from."))
    elif observed is not None:
        docs_per_month = observed.docs_per_night * a.nights_per_month
        volume = (f"Volume: {number(docs_per_month)} documents a month, {number(observed.docs_per_night)} a night "
                  f"over {observed.nights} production run(s) of {observed.model} in the journal times "
                  f"{number(a.nights_per_month)} nights a month.")
    else:
        raise ConfigError("the experiments measured accuracy and cost a document, but the journal has no production "
                          "run (`extractor run`) to take a monthly volume from: give the documents you expect a "
                          "month with --docs-per-month N")
    table = cost.table if cost is not None else finetune_prices(settings.finetune_prices)
    options: list[Option] = []
    for v in variants:
        per_doc, from_tokens = _variant_per_doc(v, table, settings.prices, settings.base_url)
        options.append(Option(label=v.variant, kind=v.kind, accuracy=v.accuracy, per_doc=per_doc,
                              batch_per_doc=None if per_doc is None else per_doc * table.batch_discount,
                              variant=v, priced_from_tokens=from_tokens))
    how = ""
    if not any(o.kind == FINETUNED for o in options):
        finetuned, how = _finetuned_option(variants, cost, a, table)
        options.append(finetuned)
    return Comparison(options=tuple(options), docs_per_month=docs_per_month, volume=volume, finetune_pricing=how,
                      target=config.target, labeled=labeled_documents(settings.layout.journal), assumptions=a,
                      table=table, source=path)


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
    lines += ["Assumptions:", *(f"  - {line}" for line in c.assumptions_text())]
    if c.recommendation is not None:
        lines.append(f"Recommendation for {pct(c.target, 1)} of fields right: {c.recommendation}")
    else:
        lines.append("Give --target 0.95 (a share of fields right) to recommend the cheapest option that reaches it.")
    return "\n".join(lines)


def no_experiment_note(settings: RunConfig, target: float) -> str:
    """What `--target` says when no experiment measured accuracy, and how to run one."""
    return (f"Target {pct(target, 1)} of fields right: no experiment measured accuracy ({settings.layout.experiments} "
            "does not exist), so the cost comparison above takes quality as equal. Measure each option against "
            "labeled documents with `extractor experiment INPUT_DIR --labels FILE --variant examples=static "
            "--variant examples=similar:3`, then run `extractor breakeven --target "
            f"{target:g}` again.")


@dataclass(frozen=True)
class Decision:
    """What `extractor breakeven` reports: the cost-only break-even of the production journal and, when
    experiments.parquet exists, the comparison of measured variants; `notes` say why a part is missing."""

    cost: BreakEven | None
    comparison: Comparison | None
    target: float | None
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        parts = [render_text(self.cost)] if self.cost is not None else []
        parts += list(self.notes)
        if self.comparison is not None:
            parts.append(render_comparison(self.comparison))
        return "\n\n".join(parts)


def decide(config: BreakEvenConfig) -> Decision:
    """`extractor breakeven`: the cost-only analysis as `breakeven_analysis`, plus the measured comparison.

    Without experiments.parquet this is `breakeven_analysis` (its errors raised as they are), with a note on
    how to measure accuracy when a target is given. With it, a cost-only analysis that cannot be made (no
    production run, no price) becomes a note and the comparison is still made.
    """
    if not config.settings.layout.experiments.is_file():
        cost = breakeven_analysis(config)
        told = (no_experiment_note(config.settings, config.target),) if config.target is not None else ()
        return Decision(cost=cost, comparison=None, target=config.target, notes=told)
    notes: list[str] = []
    cost_only: BreakEven | None = None
    try:
        cost_only = breakeven_analysis(config)
    except ConfigError as exc:
        notes.append(f"No cost-only break-even from the journal: {exc}.")
    comparison = compare_experiments(config, cost_only)
    return Decision(cost=cost_only, comparison=comparison, target=config.target, notes=tuple(notes))
