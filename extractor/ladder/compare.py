"""Measured variants against each other and against a fine-tuned model: accuracy, cost a document and a month.

experiments.parquet (`extractor experiment`) holds each variant's accuracy against labeled documents and what
it cost a document; `compare` prices them, and the fine-tuned target where no experiment measured one, at the
production volume. The numbers and the choices (the cheapest option that reaches a target, the closest one
when none does) are here; the sentences that say them are `ladder.verdict`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from extractor.config import ModelPrice
from extractor.errors import ConfigError
from extractor.ladder.costmodel import Assumptions, BreakEven, Observed, per_request_usd
from extractor.llm.pricing import MTOK, FinetunePrice, FinetunePriceTable, unit_prices
from extractor.table import OVERALL
from extractor.values.metrics import best_by_field

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
class FinetunedPricing:
    """How the fine-tuned target is priced where no experiment measured a fine-tuned variant: as the cost-only
    break-even prices it (`cost`), or from the tokens of a measured prompt (`base`) at the target's prices."""

    price: FinetunePrice
    training_usd: float
    cost: BreakEven | None = None  # priced as the cost-only analysis of the production journal prices it
    base: VariantMeasure | None = None  # else: the measured variant whose tokens it is priced from
    prompt_tokens: float = 0.0  # per request, from `base`
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

    # -- the choices for a target ------------------------------------------------------------------------------

    def reaching(self) -> list[Option]:
        """The options whose measured accuracy reaches the target ([] without a target)."""
        if self.target is None:
            return []
        target = self.target
        return [o for o in self.options if o.accuracy is not None and o.accuracy >= target - 1e-12]

    def unpriced_reaching(self) -> list[Option]:
        """Options that reach the target but whose model has no known price."""
        return [o for o in self.reaching() if self.per_month(o) is None]

    def cheapest(self) -> Option | None:
        """The cheapest option a month that reaches the target; None when none (priced) does."""
        priced = [o for o in self.reaching() if self.per_month(o) is not None]
        return min(priced, key=lambda o: (self.per_month(o) or 0.0)) if priced else None

    def cheapest_batch(self) -> Option | None:
        """The cheapest option a month through the Batch API that reaches the target."""
        priced = [o for o in self.reaching() if self.per_month(o) is not None]
        return min(priced, key=lambda o: (self.batch_per_month(o) or 0.0)) if priced else None

    def cheaper_unmeasured(self, than: Option) -> list[Option]:
        """Options of unknown accuracy that would cost less a month than `than`: never taken to reach a target."""
        return [o for o in self.options if o.accuracy is None and self.per_month(o) is not None
                and (self.per_month(o) or 0.0) < (self.per_month(than) or 0.0)]

    def closest(self) -> Option | None:
        """The most accurate measured option; None when no option has an accuracy."""
        rated = [o for o in self.options if o.accuracy is not None]
        return max(rated, key=lambda o: o.accuracy or 0.0) if rated else None

    def finetuned_measured(self) -> Option | None:
        """A fine-tuned variant an experiment measured, if any."""
        return next((o for o in self.options if o.kind == FINETUNED and o.accuracy is not None), None)

    @property
    def retrieved_measured(self) -> bool:
        """An experiment measured retrieved examples (examples=similar:K)."""
        return any(o.kind == RETRIEVED and o.accuracy is not None for o in self.options)


def _finetuned_option(variants: list[VariantMeasure], cost: BreakEven | None, assumptions: Assumptions,
                      table: FinetunePriceTable) -> tuple[Option, FinetunedPricing]:
    """The fine-tuned target as `analyze` prices it (from production documents) when there is a cost analysis;
    otherwise from the tokens of the measured prompt without examples (examples=none), else the static one."""
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
            FinetunedPricing(ft, training, base=base, prompt_tokens=prompt, output_tokens=output))


def compare(variants: list[VariantMeasure], *, docs_per_month: float, volume_given: bool, observed: Observed | None,
            cost: BreakEven | None, assumptions: Assumptions, table: FinetunePriceTable, target: float | None,
            labeled: int, source: Path, prices: Mapping[str, ModelPrice] | None = None,
            base_url: str | None = None) -> Comparison:
    """Each measured variant priced at its recorded cost (else its tokens at its model's list price) at
    `docs_per_month`, and the fine-tuned target, priced as `cost` does when given, where no fine-tuned variant was
    measured."""
    options: list[Option] = []
    for v in variants:
        per_doc, from_tokens = _variant_per_doc(v, table, prices, base_url)
        options.append(Option(label=v.variant, kind=v.kind, accuracy=v.accuracy, per_doc=per_doc,
                              batch_per_doc=None if per_doc is None else per_doc * table.batch_discount,
                              variant=v, priced_from_tokens=from_tokens))
    pricing = None
    if not any(o.kind == FINETUNED for o in options):
        finetuned, pricing = _finetuned_option(variants, cost, assumptions, table)
        options.append(finetuned)
    return Comparison(options=tuple(options), docs_per_month=docs_per_month, volume_given=volume_given,
                      observed=observed, finetuned_pricing=pricing, target=target, labeled=labeled,
                      assumptions=assumptions, table=table, source=source)


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

