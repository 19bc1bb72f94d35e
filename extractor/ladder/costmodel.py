"""The cost model of fine-tuning versus prompting: what the journal observed, what is assumed, and the numbers.

Everything is priced per document from what the journal observed (tokens, requests, cache hits, volume),
so the answer follows the team's documents rather than a vendor's example. Nothing here sends a request:
prices come from genai-prices (inference of known models) and the dated fine-tuning table in
`extractor/data/finetune_prices.toml`. Every number that is assumed rather than observed is an
`Assumptions` field. The numbers are here (`analyze` -> `BreakEven`); the sentences that say them, the
recommendation and every assumption spelled out, are `ladder.verdict`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from extractor.config import ModelPrice
from extractor.errors import ConfigError
from extractor.extraction.prompts import system_prompt
from extractor.ladder import assumed
from extractor.llm.pricing import (
    MTOK,
    FinetunePrice,
    FinetunePriceTable,
    unit_prices,
)
from extractor.llm.tokens import TokenRate, request_rate
from extractor.schemas import Schema
from extractor.store import Journal

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


current_prices = unit_prices
"""USD per Mtok of `model` (input, cached input, output), looked up as the cost recorded on each row is:
`extractor.llm.pricing.unit_prices`."""


@dataclass(frozen=True)
class Assumptions:
    """What the comparison assumes rather than observes; every field is spelled out by `verdict.cost_assumptions`."""

    target_model: str = assumed.FINETUNE_TARGET
    """Model to fine-tune; it must be in the fine-tuning price table."""

    training_examples: int = assumed.TRAINING_EXAMPLES
    """Labelled documents in the training file, each one prompt (without examples) plus its answer."""

    epochs: int = assumed.EPOCHS
    """Passes over the training file; training is billed per token per epoch."""

    reask_rate_finetuned: float = assumed.REASK_RATE_FINETUNED
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


# -- the numbers ----------------------------------------------------------------------------------------


def per_request_usd(prompt_tokens: float, cached_fraction: float, output_tokens: float, input_per_mtok: float,
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

    @property
    def pays_back(self) -> bool:
        """Fine-tuning pays back its training within `max_payback_nights` (the recommendation to fine-tune)."""
        return self.breakeven_nights is not None and self.breakeven_nights <= self.assumptions.max_payback_nights

    @property
    def saving_per_month(self) -> float:
        """USD a month the fine-tuned model saves over prompting, once trained (negative: it costs more)."""
        return self.prompting_per_month - self.finetuned_per_month

    @property
    def training_example_tokens(self) -> float:
        """Tokens of one training example: the prompt without examples, the document, the answer."""
        o = self.observed
        return o.prefix_tokens_short + o.document_tokens + o.output_tokens


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
    prompting = o.requests_per_doc * per_request_usd(
        o.prefix_tokens + o.document_tokens, o.cached_fraction, o.output_tokens,
        current.input_per_mtok, current.cached_input_per_mtok, current.output_per_mtok)
    # Fine-tuned: the examples are learnt, so only the short prefix is sent, and re-asks become rare.
    finetuned = (1.0 + a.reask_rate_finetuned) * per_request_usd(
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


