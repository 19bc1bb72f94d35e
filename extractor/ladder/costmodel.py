"""The cost model of fine-tuning versus prompting: what the journal observed, what is assumed, and the numbers.

Everything is priced per document from what the journal observed, whatever the strategy: the tokens, cached
tokens and requests a production document really took (a whole-schema call, or a dozen field-by-field questions
over a cached document prefix), and the volume of new documents a production night. What a fine-tuned model
would be sent is counted from the very examples `export finetune` writes for the same documents (the system
prompt without few-shot examples, the fenced document, the tool, and the answer), by the one token estimate;
so is what training bills. Nothing here sends a request: prices come from genai-prices (inference of known
models) and the dated fine-tuning table in `extractor/data/finetune_prices.toml`. Every number that is assumed
rather than observed is an `Assumptions` field. The numbers are here (`analyze` -> `BreakEven`); the sentences
that say them are `ladder.verdict`'s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from extractor.config import ModelPrice, RunConfig
from extractor.errors import ConfigError
from extractor.ladder import assumed
from extractor.ladder.finetune import (
    ExampleTokens,
    approximate_example,
    count_examples,
    example_rate,
    production_examples,
    run_strategy,
)
from extractor.llm.pricing import (
    MTOK,
    FinetunePrice,
    FinetunePriceTable,
    has_batch_api,
    unit_prices,
)
from extractor.schemas import Schema
from extractor.store import Journal

EXAMPLES_COUNTED = 200  # newest production documents the fine-tuned request is sized on (each is read again)

# -- what the journal observed ------------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    """Documents a night, over production nights only: runs that extracted documents no earlier run had. A
    consistency re-run (documents answered again K times), a re-extraction (--force, a new schema version or
    model) and a rerun that reused every stored result bill no new document and are not nights."""

    new_documents: int  # documents (by content) billed for the first time
    nights: int  # production nights
    other_runs: int  # runs that billed no new document

    @property
    def docs_per_night(self) -> float:
        return self.new_documents / self.nights if self.nights else 0.0


def production_volume(journal: Journal) -> Volume:
    """The journal's production volume (`Volume`), over every model: the workload, not one model's share of it."""
    runs = [run_id for run_id, _ in journal.runs_with_summaries()]
    seen: set[str] = set()
    new: Counter[str] = Counter()
    for document in journal.billed_documents():  # commit order: runs never overlap (the run lock)
        key = document.content_sha256 or document.doc_id
        if key not in seen:
            seen.add(key)
            new[document.run_id] += 1
    nights = sum(1 for run_id in runs if new[run_id])
    return Volume(new_documents=sum(new.values()), nights=nights, other_runs=len(runs) - nights)


@dataclass(frozen=True)
class Observed:
    """One model's observed workload: what a production document took (all its requests together) and the
    volume, plus what a fine-tuned model would be sent for the same documents."""

    model: str
    documents: int  # billed extractions the per-document means are over (carried rows excluded)
    nights: int  # production nights (`Volume`)
    docs_per_night: float  # new documents a production night
    prompt_tokens: float  # per document, every request of it (validation re-asks, field questions)
    completion_tokens: float  # per document
    cached_tokens: float  # per document, of the prompt tokens: billed at the cached-input price
    requests_per_doc: float  # billed requests, re-asks included, transient retries excluded
    finetuned: ExampleTokens  # one fine-tuning example of these documents, as `export finetune` writes it
    strategy: str = "whole"  # whole | fields: how the documents priced here were asked
    cost_per_doc: float | None = None  # mean cost_usd actually recorded; None if any row was unpriced
    backend: str = "openai"  # of the model's latest run
    endpoint: str = ""
    other_runs: int = 0  # runs that were not production nights
    left_out: int = 0  # billed rows of this model not in the means: sampled documents, another strategy's runs

    @property
    def cached_fraction(self) -> float:
        """Share of prompt tokens billed at the cached-input price."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def prompt_per_request(self) -> float:
        return self.prompt_tokens / self.requests_per_doc if self.requests_per_doc else 0.0

    @property
    def completion_per_request(self) -> float:
        return self.completion_tokens / self.requests_per_doc if self.requests_per_doc else 0.0

    @property
    def batch_api(self) -> bool:
        """The model has OpenAI's Batch API (not the embedded model, nor another local one)."""
        return has_batch_api(self.model, self.backend, self.endpoint)


def observed_from_journal(journal_path: Path, schema: Schema, model: str,
                          settings: RunConfig | None = None) -> Observed | None:
    """Derive `Observed` from the journal's billed ok/failed rows of `model`; None when there are none.

    The means are over the rows of the strategy `model` was run with last, leaving out sampled documents (K
    answers each). `settings` (max_chars, archive_dir) is how the documents are read again to size the
    fine-tuned request; default settings when not given."""
    if not journal_path.is_file():
        return None  # no journal yet: looking must not create one
    settings = settings or RunConfig()
    with Journal.open_readonly(journal_path) as journal:
        rows = journal.paid_extractions(model)
        if not rows:
            return None
        runs = journal.runs_with_summaries()
        volume = production_volume(journal)
        summaries = {run_id: summary for run_id, summary in runs}
        strategies = {run_id: run_strategy(summary, model) for run_id, summary in runs}
        latest = next((summaries[r.run_id] for r in reversed(rows) if summaries.get(r.run_id)), None)
        unsampled = [r for r in rows if not r.sampled] or rows  # only sampled rows: K answers is all there is
        strategy = strategies.get(unsampled[-1].run_id, run_strategy(None, model))
        used = [r for r in unsampled if strategies.get(r.run_id, run_strategy(None, model)) == strategy]
        rate = example_rate(journal, model)
        picked = [journal.result_row(r.run_id, r.doc_id) for r in used[-EXAMPLES_COUNTED:]]
    result_rows = [row for row in picked if row is not None]

    # Transient retries (429, 5xx, timeouts) are HTTP requests that bill nothing; rows count them in `attempts`,
    # run summaries count them apart: each run's retries are taken off in the share of its rows used here.
    billed_by_run = Counter(r.run_id for r in rows)
    used_by_run = Counter(r.run_id for r in used)
    retries = sum(int((summaries.get(run_id) or {}).get("transport_retries") or 0) * n / billed_by_run[run_id]
                  for run_id, n in used_by_run.items())
    documents = len(used)
    requests = max(float(documents), sum(r.attempts or 1 for r in used) - retries)
    prompt = sum(r.prompt_tokens for r in used)
    costs = [r.cost_usd for r in used]

    examples = production_examples(settings, schema, result_rows)
    read = {e.doc_id for e in examples}
    ok = [row for row in result_rows if row.get("status") == "ok"] or result_rows  # no ok row: size the failed ones
    kept = {(r.run_id, r.doc_id): r.prompt_chars for r in used}
    unread = [approximate_example(row, schema, kept.get((str(row.get("run_id")), row["doc_id"]), 0))
              for row in ok if row["doc_id"] not in read]
    finetuned = count_examples([*examples, *unread], rate, approximated=len(unread))
    assert finetuned is not None, "a billed row is either read again or sized from its characters"
    return Observed(
        model=model, documents=documents, nights=volume.nights, docs_per_night=volume.docs_per_night,
        prompt_tokens=prompt / documents, completion_tokens=sum(r.completion_tokens or 0 for r in used) / documents,
        cached_tokens=sum(r.cached_tokens or 0 for r in used) / documents, requests_per_doc=requests / documents,
        finetuned=finetuned, strategy=strategy,
        cost_per_doc=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs) / documents,
        backend=str((latest or {}).get("backend") or "openai"), endpoint=str((latest or {}).get("endpoint") or ""),
        other_runs=volume.other_runs, left_out=len(rows) - documents)


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
    """Documents a month (`--docs-per-month`), for every figure: the cost-only break-even and the comparison of
    measured variants; None: the journal's observed production volume (new documents a production night times
    `nights_per_month`). Needed when there is no production run to observe."""

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


def per_document_usd(prompt_tokens: float, cached_tokens: float, output_tokens: float, price: ModelPrice) -> float:
    """USD of one document's tokens: prompt tokens at the input price, the cached ones at the cached price."""
    cached_rate = price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
    cached = min(cached_tokens, prompt_tokens)
    return ((prompt_tokens - cached) * price.input_per_mtok + cached * cached_rate
            + output_tokens * price.output_per_mtok) / MTOK


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
    batch_per_doc: float | None  # None: the model has no Batch API (the embedded model, another local one)
    training_tokens: float
    training_usd: float
    breakeven_docs: int | None  # None: never on cost
    breakeven_nights: int | None
    breakeven_vs_batch_docs: int | None  # the same against the Batch API
    breakeven_vs_batch_nights: int | None
    docs_per_night: float = 0.0  # the volume priced: `assumptions.docs_per_month` a night if given, else observed

    @property
    def volume_given(self) -> bool:
        """The monthly volume is `--docs-per-month`, not the journal's."""
        return self.assumptions.docs_per_month is not None

    @property
    def docs_per_month(self) -> float:
        return self.docs_per_night * self.assumptions.nights_per_month

    @property
    def prompting_per_month(self) -> float:
        return self.prompting_per_doc * self.docs_per_month

    @property
    def finetuned_per_month(self) -> float:
        """The fine-tuned model's documents a month; its training is `training_usd`, once."""
        return self.finetuned_per_doc * self.docs_per_month

    @property
    def batch_per_month(self) -> float | None:
        return None if self.batch_per_doc is None else self.batch_per_doc * self.docs_per_month

    def _horizon(self) -> int:
        if self.assumptions.horizon_docs is not None:
            return self.assumptions.horizon_docs
        if self.breakeven_docs:
            return 2 * self.breakeven_docs
        return max(1, round(12 * self.docs_per_month))

    def curves(self, points: int = 50) -> dict[str, list[tuple[int, float]]]:
        """Cumulative USD per option at `points` document volumes from 0 to the horizon, for a chart (no "batch"
        curve when the model has no Batch API)."""
        if points < 2:
            raise ValueError("a curve needs at least 2 points")
        horizon = self._horizon()
        volumes = sorted({round(horizon * i / (points - 1)) for i in range(points)})
        out = {
            "prompting": [(n, n * self.prompting_per_doc) for n in volumes],
            "fine-tuned": [(n, self.training_usd + n * self.finetuned_per_doc) for n in volumes],
        }
        if self.batch_per_doc is not None:
            out["batch"] = [(n, n * self.batch_per_doc) for n in volumes]
        return out

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
        """Tokens of one training example, as `export finetune` writes it: the prompt without examples, the
        document, the tool, the answer."""
        return self.observed.finetuned.tokens


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

    # Prompting: what a production document took, every request of it, its cached tokens at the cached price.
    prompting = per_document_usd(o.prompt_tokens, o.cached_tokens, o.completion_tokens, current)
    # Fine-tuned: one call for the whole schema, as `export finetune` writes the examples (no few-shot examples:
    # they are learnt), and re-asks become rare.
    example = o.finetuned
    finetuned = (1.0 + a.reask_rate_finetuned) * per_request_usd(
        example.prompt_tokens, a.finetuned_cached_fraction, example.answer_tokens,
        ft.input_per_mtok, ft.cached_input_per_mtok, ft.output_per_mtok)
    batch = prompting * table.batch_discount if o.batch_api else None
    training_tokens = a.training_examples * example.tokens * a.epochs
    training = training_tokens * ft.training_per_mtok / MTOK
    per_night = a.docs_per_month / a.nights_per_month if a.docs_per_month is not None else o.docs_per_night

    def nights(docs: int | None) -> int | None:
        # The night by whose end the cumulative volume reaches `docs`.
        if docs is None or per_night <= 0:
            return None
        return _ceil(docs / per_night)

    docs = _breakeven_docs(training, finetuned, prompting)
    docs_vs_batch = _breakeven_docs(training, finetuned, batch) if batch is not None else None
    return BreakEven(
        observed=o, assumptions=a, table=table, current_price=current, current_price_source=source,
        finetune_price=ft, prompting_per_doc=prompting, finetuned_per_doc=finetuned, batch_per_doc=batch,
        training_tokens=training_tokens, training_usd=training, breakeven_docs=docs,
        breakeven_nights=nights(docs), breakeven_vs_batch_docs=docs_vs_batch,
        breakeven_vs_batch_nights=nights(docs_vs_batch), docs_per_night=per_night)


def _genai_prices_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:
        return "(version unknown)"


