"""Would fine-tuning pay for itself, and which rung is next? `extractor breakeven`: its settings and entry points.

Prompting today versus a fine-tuned model, from a team's own journal (`ladder.costmodel`: the observed
workload, the assumptions, the numbers), the variants experiments measured against each other and the
fine-tuned model (`ladder.compare`), and the one verdict read off both (`compare.choose`); what it prints is
`ladder.verdict`'s. Here: what to analyze (`BreakEvenConfig`), where the inputs are read (the journal,
experiments.parquet and the experiments' own journal, the labels store) and the `Decision` the command reports,
as text or as JSON (the same figures).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractor.config import RunConfig
from extractor.errors import ConfigError
from extractor.ladder import verdict
from extractor.ladder.compare import (
    STATIC,
    Comparison,
    Labelling,
    Option,
    Verdict,
    choose,
    compare,
    read_experiments,
)
from extractor.ladder.costmodel import Assumptions, BreakEven, Observed, analyze, observed_from_journal
from extractor.ladder.finetune import ExampleTokens
from extractor.llm.pricing import finetune_prices
from extractor.store import Journal, Labels


@dataclass(frozen=True)
class BreakEvenConfig:
    """What `extractor breakeven` analyzes: a schema's journal, today's model, the fine-tune assumptions.

    From `settings`: the schema and its folders, [prices] (today's model, if self-hosted), base_url (to match
    its provider's prices), [finetune_prices], and the labelling effort (label_minutes, label_hourly_usd)."""

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
    observed = observed_from_journal(path, schema, model, settings)
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


def labeled_documents(journal: Path) -> int:
    """Documents with at least one label in the labels store (`Labels.latest()`); 0 without a journal."""
    if not journal.is_file():
        return 0
    with Labels.open_readonly(journal) as labels:
        return sum(1 for fields in labels.latest().values() if fields)


def _sample_examples(settings: RunConfig, model: str) -> ExampleTokens | None:
    """The fine-tuning examples of the experiment's documents (its own journal, `Layout.experiment_output`), as
    `export finetune` would write them, for pricing a fine-tuned model without a production run."""
    from extractor.schemas import load_schema

    trial = dataclasses.replace(settings, output_dir=settings.layout.experiment_output)
    observed = observed_from_journal(trial.layout.journal, load_schema(settings.schemas_dir, settings.schema),
                                     model, settings)
    return observed.finetuned if observed is not None else None


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
    elif cost is not None:
        docs_per_month = cost.docs_per_month
    elif observed is not None:
        docs_per_month = observed.docs_per_night * a.nights_per_month
    else:
        raise ConfigError("the experiments measured accuracy and cost a document, but the journal has no production "
                          "run (`extractor run`) to take a monthly volume from: give the documents you expect a "
                          "month with --docs-per-month N")
    table = cost.table if cost is not None else finetune_prices(settings.finetune_prices)
    sized = None
    if cost is None:
        base = next((v for v in variants if v.kind == STATIC and v.examples == "none"), None) or next(
            (v for v in variants if v.kind == STATIC), variants[0])
        sized = _sample_examples(settings, base.model)
    return compare(variants, docs_per_month=docs_per_month, volume_given=a.docs_per_month is not None,
                   observed=observed, cost=cost, assumptions=a, table=table, target=config.target,
                   labeled=labeled_documents(settings.layout.journal), source=path, prices=settings.prices,
                   base_url=settings.base_url, sized=sized)


def labelling(config: BreakEvenConfig) -> Labelling:
    """What fine-tuning needs in labelled documents, from the labels store and the settings' labelling effort."""
    settings = config.settings
    return Labelling(have=labeled_documents(settings.layout.journal), need=config.assumptions.training_examples,
                     minutes_per_doc=settings.label_minutes, hourly_usd=settings.label_hourly_usd)


def verdict_for(config: BreakEvenConfig, cost: BreakEven | None, comparison: Comparison | None) -> Verdict:
    """The one verdict of these analyses (`compare.choose`)."""
    return choose(cost, comparison, config.target, labelling(config))


@dataclass(frozen=True)
class Decision:
    """What `extractor breakeven` reports: the cost-only break-even of the production journal, the comparison of
    measured variants when experiments.parquet exists, and the one verdict; `notes` say why a part is missing."""

    cost: BreakEven | None
    comparison: Comparison | None
    target: float | None
    verdict: Verdict
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        return verdict.render_decision(self.cost, self.comparison, self.notes, self.verdict)

    def as_dict(self) -> dict[str, Any]:
        """The same figures as `text()`, as JSON (`extractor breakeven --json`)."""
        return decision_dict(self.cost, self.comparison, self.verdict, self.notes)


def _option_dict(c: Comparison, o: Option) -> dict[str, Any]:
    v = o.variant
    return {
        "label": o.label, "kind": o.kind, "measured": v is not None, "accuracy": o.accuracy,
        "interval_95": list(o.interval) if o.interval is not None else None,
        "fields": v.labeled_values if v is not None else None, "documents": v.documents if v is not None else None,
        "per_doc_usd": o.per_doc, "per_month_usd": c.per_month(o), "training_usd": o.training_usd,
        "batch_per_doc_usd": o.batch_per_doc, "batch_per_month_usd": c.batch_per_month(o),
        "over_horizon_usd": c.over_horizon(o),
    }


def decision_dict(cost: BreakEven | None, comparison: Comparison | None, chosen: Verdict,
                  notes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The Decision's numbers as plain JSON types: what the terminal and the report print, figure for figure."""
    out: dict[str, Any] = {"target": chosen.target, "notes": list(notes), "cost": None, "comparison": None}
    if cost is not None:
        o, ex = cost.observed, cost.observed.finetuned
        out["cost"] = {
            "model": o.model, "strategy": o.strategy, "target_model": cost.assumptions.target_model,
            "documents": o.documents, "production_nights": o.nights, "other_runs": o.other_runs,
            "docs_per_night": cost.docs_per_night, "docs_per_month": cost.docs_per_month,
            "volume_given": cost.volume_given,
            "per_document": {"prompt_tokens": o.prompt_tokens, "completion_tokens": o.completion_tokens,
                             "cached_tokens": o.cached_tokens, "requests": o.requests_per_doc,
                             "billed_usd": o.cost_per_doc},
            "finetuned_example": {"prompt_tokens": ex.prompt_tokens, "answer_tokens": ex.answer_tokens,
                                  "tokens": ex.tokens, "examples": ex.examples, "approximated": ex.approximated},
            "prompting": {"per_doc_usd": cost.prompting_per_doc, "per_month_usd": cost.prompting_per_month},
            "finetuned": {"per_doc_usd": cost.finetuned_per_doc, "per_month_usd": cost.finetuned_per_month,
                          "training_usd": cost.training_usd, "training_tokens": cost.training_tokens},
            "batch": (None if cost.batch_per_doc is None else
                      {"per_doc_usd": cost.batch_per_doc, "per_month_usd": cost.batch_per_month}),
            "breakeven_docs": cost.breakeven_docs, "breakeven_nights": cost.breakeven_nights,
            "breakeven_vs_batch_docs": cost.breakeven_vs_batch_docs,
            "breakeven_vs_batch_nights": cost.breakeven_vs_batch_nights, "pays_back": cost.pays_back,
        }
    if comparison is not None:
        out["comparison"] = {"docs_per_month": comparison.docs_per_month, "volume_given": comparison.volume_given,
                             "horizon_nights": comparison.horizon_nights,
                             "options": [_option_dict(comparison, o) for o in comparison.options]}
    lab = chosen.labelling
    out["verdict"] = {
        "rung": chosen.rung, "text": verdict.render_verdict(chosen),
        "use": chosen.use.label if chosen.use is not None else None, "measure": chosen.measure,
        "leaders": [o.label for o in chosen.leaders],
        "labelling": {"have": lab.have, "need": lab.need, "more": lab.more, "minutes_per_doc": lab.minutes_per_doc,
                      "hours": lab.hours, "hourly_usd": lab.hourly_usd, "usd": lab.usd},
    }
    return out


def decide(config: BreakEvenConfig) -> Decision:
    """`extractor breakeven`: the cost-only analysis as `breakeven_analysis`, plus the measured comparison, and the
    one verdict of both.

    Without experiments.parquet this is `breakeven_analysis` (its errors raised as they are), with a note on
    how to measure accuracy when a target is given. With it, a cost-only analysis that cannot be made (no
    production run, no price) becomes a note and the comparison is still made.
    """
    experiments = config.settings.layout.experiments
    if not experiments.is_file():
        cost = breakeven_analysis(config)
        told = (verdict.no_experiment_note(experiments, config.target),) if config.target is not None else ()
        return Decision(cost=cost, comparison=None, target=config.target, verdict=verdict_for(config, cost, None),
                        notes=told)
    notes: list[str] = []
    cost_only: BreakEven | None = None
    try:
        cost_only = breakeven_analysis(config)
    except ConfigError as exc:
        notes.append(verdict.no_cost_note(exc))
    comparison = compare_experiments(config, cost_only)
    return Decision(cost=cost_only, comparison=comparison, target=config.target,
                    verdict=verdict_for(config, cost_only, comparison), notes=tuple(notes))
