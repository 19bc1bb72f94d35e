"""Measured variants against each other and against a fine-tuned model, and the one verdict: numbers and choices.

experiments.parquet (`extractor experiment`) holds each variant's accuracy against labeled documents and what
it cost a document; `compare` prices them, and the fine-tuned target where no experiment measured one, at the
production volume. `choose` reads the one verdict off the numbers: keep prompting, use retrieved examples, try
a stronger model with the same prompt, or fine-tune; with what it needs (labelled documents, the labelling
effort) and when it pays back. Every accuracy carries its count and a 95% interval, and options whose intervals
overlap are a tie, not a ranking. The sentences that say all this are `ladder.verdict`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from extractor.config import ModelPrice
from extractor.errors import ConfigError
from extractor.ladder.costmodel import Assumptions, BreakEven, Observed, per_document_usd, per_request_usd
from extractor.ladder.finetune import ExampleTokens
from extractor.llm.pricing import MTOK, FinetunePrice, FinetunePriceTable, has_batch_api, unit_prices
from extractor.table import OVERALL
from extractor.values.metrics import best_by_field, wilson

STATIC, RETRIEVED, FINETUNED, OTHER = "static prompt", "retrieved examples", "fine-tuned", "other"
"""The kinds of prompt an option has: the schema's fixed prompt (examples=static or none), examples retrieved per
document (examples=similar:K), a fine-tuned model (a model name starting with `ft:`); OTHER: anything else."""

KEEP, RETRIEVE, STRONGER, FINETUNE = ("keep prompting", "use retrieved examples",
                                      "try a stronger model with the same prompt", "fine-tune")
"""The rungs of the ladder, cheapest first: the verdict is one of them."""

EXPERIMENT_COLUMNS = ("experiment_id", "finished_at", "variant", "model", "examples", "field", "documents",
                      "accuracy", "prompt_tokens_per_doc", "completion_tokens_per_doc", "cached_tokens_per_doc",
                      "requests_per_doc", "cost_usd_per_doc", "latency_s_per_doc", "agreement", "not_found_share")
"""The columns of experiments.parquet (`extractor.table.experiments_schema()`) the comparison needs."""
OPTIONAL_COLUMNS = ("labeled_values", "strategy", "backend", "run_id", "finetuned", "trained_documents", "training_s",
                    "training_compute_s", "compute_s_per_doc")
"""Columns it reads where the file has them (an older file may not): counts for the intervals, how it asked."""


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
    labeled_values: int = 0  # labeled field values scored (OVERALL): what the interval is over; 0: not recorded
    field_values: dict[str, int] | None = None  # per field: labeled values scored
    strategy: str = "whole"
    backend: str = "openai"
    run_id: str = ""
    finetuned: str | None = None  # a locally fine-tuned model's file (`extractor finetune-local`)
    trained_documents: int | None = None  # of it: the documents it was trained on (none of them scored)
    training_s: float | None = None  # of it: wall seconds of its training loop
    training_compute_s: float | None = None  # of it: CPU seconds of its training loop
    compute_s_per_doc: float | None = None  # a local model server's CPU seconds a document

    @property
    def kind(self) -> str:
        if self.model.startswith("ft:") or self.finetuned:
            return FINETUNED
        if self.examples.startswith("similar"):
            return RETRIEVED
        if self.examples in ("static", "none"):
            return STATIC
        return OTHER

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the overall accuracy; None when not measured or its count was not recorded."""
        if self.accuracy is None or self.labeled_values <= 0:
            return None
        return wilson(self.accuracy, self.labeled_values)


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
        present = set(pl.read_parquet_schema(path))
        columns = [*EXPERIMENT_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in present)]
        frame = pl.read_parquet(path, columns=columns)
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
            agreement=measured("agreement"), not_found_share=measured("not_found_share"),
            labeled_values=int((overall or {}).get("labeled_values") or 0),
            field_values={r["field"]: int(r.get("labeled_values") or r["documents"] or 0) for r in fields},
            strategy=head.get("strategy") or "whole", backend=head.get("backend") or "openai",
            run_id=head.get("run_id") or "", finetuned=head.get("finetuned"),
            trained_documents=head.get("trained_documents"), training_s=head.get("training_s"),
            training_compute_s=head.get("training_compute_s"), compute_s_per_doc=head.get("compute_s_per_doc")))
    return out


@dataclass(frozen=True)
class Option:
    """One way to run extraction: a measured variant, or the fine-tuned model as priced but not measured."""

    label: str  # the variant's SPEC, or "fine-tuned <model> (not measured)"
    kind: str  # STATIC, RETRIEVED, FINETUNED or OTHER
    accuracy: float | None  # None: UNKNOWN, no experiment measured it
    per_doc: float | None  # USD a document at the immediate price; None: no price known
    batch_per_doc: float | None  # the same through the Batch API (answers within 24 h); None: no Batch API
    training_usd: float = 0.0  # one-time
    variant: VariantMeasure | None = None  # None: not measured
    priced_from_tokens: bool = False  # the experiment recorded no cost: priced from its tokens

    @property
    def interval(self) -> tuple[float, float] | None:
        return self.variant.interval if self.variant is not None else None


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
class FinetunedPricing:
    """How the fine-tuned target is priced where no experiment measured a fine-tuned variant: as the cost-only
    break-even prices it (`cost`), from the fine-tuning examples of the experiment's documents (`examples`), or,
    with neither, from the tokens of a measured prompt (`base`) at the target's prices."""

    price: FinetunePrice
    training_usd: float
    cost: BreakEven | None = None  # priced as the cost-only analysis of the production journal prices it
    examples: ExampleTokens | None = None  # else: the examples `export finetune` would write for the sample
    base: VariantMeasure | None = None  # else: the measured variant whose tokens it is priced from
    prompt_tokens: float = 0.0  # per request
    output_tokens: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """The measured variants (newest experiment each) and the fine-tuned model, with their accuracy, cost a
    document and a month, immediate and through the Batch API, and the choices for a target."""

    options: tuple[Option, ...]
    docs_per_month: float
    volume_given: bool  # docs_per_month is `assumptions.docs_per_month` (--docs-per-month), not the journal's
    observed: Observed | None  # the production workload the journal observed, if any
    finetuned_pricing: FinetunedPricing | None  # None: a fine-tuned variant was measured
    target: float | None
    labeled: int  # documents in the labels store
    assumptions: Assumptions
    table: FinetunePriceTable
    source: Path  # experiments.parquet

    @property
    def variants(self) -> list[VariantMeasure]:
        return [o.variant for o in self.options if o.variant is not None]

    @property
    def horizon_nights(self) -> float:
        """The payback horizon the options are ranked over, training included (at least one night)."""
        return max(self.assumptions.max_payback_nights, 1.0)

    def per_month(self, option: Option) -> float | None:
        """USD a month: the documents at the immediate price (training is `training_usd`, once)."""
        return None if option.per_doc is None else option.per_doc * self.docs_per_month

    def batch_per_month(self, option: Option) -> float | None:
        return None if option.batch_per_doc is None else option.batch_per_doc * self.docs_per_month

    def over_horizon(self, option: Option, batch: bool = False) -> float | None:
        """USD over the payback horizon: its documents plus its training; what the options are ranked by."""
        per_doc = option.batch_per_doc if batch else option.per_doc
        if per_doc is None:
            return None
        nights = self.horizon_nights / self.assumptions.nights_per_month
        return option.training_usd + per_doc * self.docs_per_month * nights

    def best_per_field(self) -> dict[str, set[str]]:
        """{field: the variants tied for its best accuracy} (`best_by_field`: a set of one is a clear winner)."""
        scores: dict[str, dict[str, tuple[float, int] | None]] = {}
        for v in self.variants:
            counts = v.field_values or {}
            for name, score in v.field_accuracy.items():
                scores.setdefault(name, {})[v.variant] = (score, counts.get(name) or v.documents)
        return best_by_field(scores)

    # -- the choices for a target ------------------------------------------------------------------------------

    def reaching(self) -> list[Option]:
        """The options whose measured accuracy reaches the target ([] without a target)."""
        if self.target is None:
            return []
        target = self.target
        return [o for o in self.options if o.accuracy is not None and o.accuracy >= target - 1e-12]

    def unpriced_reaching(self) -> list[Option]:
        """Options that reach the target but whose model has no known price."""
        return [o for o in self.reaching() if o.per_doc is None]

    def cheapest(self) -> Option | None:
        """The cheapest option over the payback horizon (training included) that reaches the target; None when
        none (priced) does."""
        priced = [o for o in self.reaching() if o.per_doc is not None]
        return min(priced, key=lambda o: self.over_horizon(o) or 0.0) if priced else None

    def cheapest_batch(self) -> Option | None:
        """The cheapest option through the Batch API that reaches the target (None: none has a Batch API)."""
        priced = [o for o in self.reaching() if o.batch_per_doc is not None]
        return min(priced, key=lambda o: self.over_horizon(o, batch=True) or 0.0) if priced else None

    def cheaper_unmeasured(self, than: Option) -> list[Option]:
        """Options of unknown accuracy that would cost less over the horizon than `than`: never taken to reach a
        target."""
        return [o for o in self.options if o.accuracy is None and o.per_doc is not None
                and (self.over_horizon(o) or 0.0) < (self.over_horizon(than) or 0.0)]

    def closest(self) -> Option | None:
        """The most accurate measured option; None when no option has an accuracy."""
        rated = [o for o in self.options if o.accuracy is not None]
        return max(rated, key=lambda o: o.accuracy or 0.0) if rated else None

    def leaders(self) -> list[Option]:
        """The most accurate measured option and every option tied with it (its 95% interval reaches the best's
        lower bound): one option is a clear leader, more are a tie."""
        best = self.closest()
        if best is None:
            return []
        low = best.interval[0] if best.interval is not None else best.accuracy or 0.0
        tied = [o for o in self.options if o is not best and o.accuracy is not None
                and (o.interval[1] if o.interval is not None else o.accuracy) >= low]
        return [best, *sorted(tied, key=lambda o: -(o.accuracy or 0.0))]

    def finetuned_measured(self) -> Option | None:
        """A fine-tuned variant an experiment measured, if any."""
        return next((o for o in self.options if o.kind == FINETUNED and o.accuracy is not None), None)

    @property
    def retrieved_measured(self) -> bool:
        """An experiment measured retrieved examples (examples=similar:K)."""
        return any(o.kind == RETRIEVED and o.accuracy is not None for o in self.options)

    @property
    def base_model(self) -> str:
        """The model prompted today: the production journal's, else the first measured static prompt's."""
        if self.observed is not None:
            return self.observed.model
        static = next((v for v in self.variants if v.kind == STATIC), None)
        return (static or self.variants[0]).model if self.variants else ""

    def stronger(self) -> list[Option]:
        """Measured options that prompt another model than today's (not a fine-tuned one)."""
        return [o for o in self.options if o.variant is not None and o.kind != FINETUNED
                and o.variant.model != self.base_model]


def _finetuned_option(variants: list[VariantMeasure], cost: BreakEven | None, sized: ExampleTokens | None,
                      assumptions: Assumptions, table: FinetunePriceTable) -> tuple[Option, FinetunedPricing]:
    """The fine-tuned target as `analyze` prices it (from production documents) when there is a cost analysis;
    otherwise from the fine-tuning examples of the experiment's own documents (`sized`), else from the tokens of
    the measured prompt without examples (examples=none), else the static one."""
    a = assumptions
    if cost is not None:
        label = f"fine-tuned {cost.finetune_price.model} (not measured)"
        return Option(label=label, kind=FINETUNED, accuracy=None, per_doc=cost.finetuned_per_doc,
                      batch_per_doc=cost.finetuned_per_doc * table.batch_discount,
                      training_usd=cost.training_usd), FinetunedPricing(cost.finetune_price, cost.training_usd, cost)
    try:
        ft = table.get(a.target_model)
    except KeyError as exc:
        raise ConfigError(f"cannot price the fine-tuned model: {exc.args[0] if exc.args else exc}") from None
    base = None
    if sized is not None:
        prompt, output = sized.prompt_tokens, sized.answer_tokens
    else:
        plain = [v for v in variants if v.kind == STATIC]
        base = (next((v for v in plain if v.examples == "none"), None) or next(iter(plain), None)
                or next(iter(variants), None))
        if base is None:
            raise ConfigError("experiments.parquet holds no variant")
        requests = base.requests_per_doc or 1.0
        prompt, output = base.prompt_tokens_per_doc / requests, base.completion_tokens_per_doc / requests
    per_doc = (1.0 + a.reask_rate_finetuned) * per_request_usd(
        prompt, a.finetuned_cached_fraction, output, ft.input_per_mtok, ft.cached_input_per_mtok, ft.output_per_mtok)
    training = a.training_examples * (prompt + output) * a.epochs * ft.training_per_mtok / MTOK
    return (Option(label=f"fine-tuned {ft.model} (not measured)", kind=FINETUNED, accuracy=None, per_doc=per_doc,
                   batch_per_doc=per_doc * table.batch_discount, training_usd=training),
            FinetunedPricing(ft, training, examples=sized, base=base, prompt_tokens=prompt, output_tokens=output))


def compare(variants: list[VariantMeasure], *, docs_per_month: float, volume_given: bool, observed: Observed | None,
            cost: BreakEven | None, assumptions: Assumptions, table: FinetunePriceTable, target: float | None,
            labeled: int, source: Path, prices: Mapping[str, ModelPrice] | None = None,
            base_url: str | None = None, sized: ExampleTokens | None = None) -> Comparison:
    """Each measured variant priced at its recorded cost (else its tokens at its model's list price) at
    `docs_per_month`, with its Batch API price where its model has one, and the fine-tuned target, priced as
    `cost` does when given (else from `sized`, the fine-tuning examples of the experiment's documents), where no
    fine-tuned variant was measured."""
    options: list[Option] = []
    for v in variants:
        per_doc, from_tokens = _variant_per_doc(v, table, prices, base_url)
        batch = (per_doc * table.batch_discount if per_doc is not None and has_batch_api(v.model, v.backend)
                 else None)
        options.append(Option(label=v.variant, kind=v.kind, accuracy=v.accuracy, per_doc=per_doc,
                              batch_per_doc=batch, variant=v, priced_from_tokens=from_tokens))
    pricing = None
    if not any(o.kind == FINETUNED for o in options):
        finetuned, pricing = _finetuned_option(variants, cost, sized, assumptions, table)
        options.append(finetuned)
    return Comparison(options=tuple(options), docs_per_month=docs_per_month, volume_given=volume_given,
                      observed=observed, finetuned_pricing=pricing, target=target, labeled=labeled,
                      assumptions=assumptions, table=table, source=source)


# -- the one verdict -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labelling:
    """What fine-tuning needs in labelled documents, and what labelling them costs: the real cost of a fine-tune."""

    have: int  # labelled documents in the labels store
    need: int  # training examples assumed (`Assumptions.training_examples`)
    minutes_per_doc: float  # `label_minutes`
    hourly_usd: float | None  # `label_hourly_usd`; None: not given

    @property
    def more(self) -> int:
        return max(0, self.need - self.have)

    @property
    def hours(self) -> float:
        return self.more * self.minutes_per_doc / 60

    @property
    def usd(self) -> float | None:
        return None if self.hourly_usd is None else self.hours * self.hourly_usd


@dataclass(frozen=True)
class Verdict:
    """The one recommendation of `extractor breakeven` and the report, as numbers and choices: the rung, the
    option to use or the variant to measure next, the labelling it needs and the cost analysis it weighs."""

    rung: str  # KEEP, RETRIEVE, STRONGER or FINETUNE
    labelling: Labelling
    cost: BreakEven | None  # the cost-only analysis of the production journal, if any
    comparison: Comparison | None  # the measured variants, if any
    target: float | None
    use: Option | None = None  # the cheapest measured option that reaches the target
    measure: str | None = None  # the variant to measure next (`--variant SPEC`); None: nothing to measure
    measure_per_doc: float | None = None  # STRONGER: today's prompt's tokens at the stronger model's list price

    @property
    def leaders(self) -> list[Option]:
        return self.comparison.leaders() if self.comparison is not None else []

    @property
    def finetuned(self) -> Option | None:
        """The fine-tuned option of the comparison (measured, or priced but not measured)."""
        if self.comparison is None:
            return None
        return next((o for o in self.comparison.options if o.kind == FINETUNED), None)


def rung_of(option: Option, base_model: str) -> str:
    """The rung an option is on: fine-tuned, retrieved examples, the same prompt on another model, or today's."""
    if option.kind == FINETUNED:
        return FINETUNE
    if option.kind == RETRIEVED:
        return RETRIEVE
    if option.variant is not None and base_model and option.variant.model != base_model:
        return STRONGER
    return KEEP


STRONGER_MODEL = "gpt-4.1-mini"
"""The stronger model the verdict suggests measuring when none was (a name the price tables know)."""


def _stronger_per_doc(c: Comparison) -> float | None:
    """What today's static prompt would cost a document on `STRONGER_MODEL`: its measured tokens at that model's
    list price (None: no static prompt measured, or no price known)."""
    today = next((v for v in c.variants if v.kind == STATIC and v.model == c.base_model), None)
    price = unit_prices(STRONGER_MODEL)
    if today is None or price is None:
        return None
    return per_document_usd(today.prompt_tokens_per_doc, today.cached_tokens_per_doc,
                            today.completion_tokens_per_doc, price)


def choose(cost: BreakEven | None, comparison: Comparison | None, target: float | None,
           labelling: Labelling) -> Verdict:
    """The one verdict. With a target and measured variants: the cheapest option that reaches it (its rung), or
    else the next rung up from what was measured: retrieved examples, then a stronger model with the same
    prompt, then fine-tuning. Without a target (or without measurements): on cost alone, fine-tune when it
    pays back within the payback horizon, else keep prompting."""
    if comparison is not None and comparison.target != target:
        comparison = dataclasses.replace(comparison, target=target)
    if comparison is not None and target is not None:
        best = comparison.cheapest()
        if best is not None:
            return Verdict(rung_of(best, comparison.base_model), labelling, cost, comparison, target, use=best)
        if not comparison.retrieved_measured:
            return Verdict(RETRIEVE, labelling, cost, comparison, target, measure="examples=similar:3")
        if not comparison.stronger() and comparison.finetuned_measured() is None:
            return Verdict(STRONGER, labelling, cost, comparison, target,
                           measure=f"model={STRONGER_MODEL},examples=static",
                           measure_per_doc=_stronger_per_doc(comparison))
        measure = None if comparison.finetuned_measured() is not None else "model=ft:..."
        return Verdict(FINETUNE, labelling, cost, comparison, target, measure=measure)
    if cost is not None and cost.pays_back:
        return Verdict(FINETUNE, labelling, cost, comparison, target, measure="model=ft:...")
    return Verdict(KEEP, labelling, cost, comparison, target)


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

