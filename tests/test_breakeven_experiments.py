"""Break-even with measured accuracy: experiments.parquet's variants against the fine-tuned model and the Batch API,
and the recommendation for a target share of fields right."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.ladder.breakeven import BreakEvenConfig, breakeven_analysis, compare_experiments, decide
from extractor.ladder.compare import (
    FINETUNE,
    FINETUNED,
    KEEP,
    RETRIEVE,
    RETRIEVED,
    STATIC,
    STRONGER,
    Comparison,
    Labelling,
    choose,
    read_experiments,
)
from extractor.ladder.costmodel import Assumptions
from extractor.ladder.verdict import comparison_assumptions, render_text, render_verdict
from extractor.llm.pricing import finetune_prices
from extractor.store import LABELS_FILE, Labels
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import make_config, settings, write_docs, write_experiments
from .test_cli import cli

TABLE = finetune_prices()  # gpt-4.1-nano fine-tuned: training 1.50, input 0.20, output 0.80; batch 0.5

# Three rungs measured on 20 labeled documents, USD a document as each experiment recorded it.
VARIANTS: list[dict[str, Any]] = [
    {"variant": "examples=static", "accuracy": 0.90, "cost": 0.0004, "fields": {"name": 1.0, "salary": 0.7}},
    {"variant": "examples=similar:3", "accuracy": 0.96, "cost": 0.0010, "prompt_tokens": 5000.0,
     "fields": {"name": 1.0, "salary": 0.9}, "agreement": 0.8, "not_found": 0.05},
    {"variant": "model=gpt-4.1,examples=static", "accuracy": 0.97, "cost": 0.0080,
     "fields": {"name": 0.95, "salary": 1.0}},
]


def _config(tmp_path: Path, target: float | None = 0.95, **assumed: Any) -> BreakEvenConfig:
    return BreakEvenConfig(settings=settings(tmp_path / "out"), target=target,
                           assumptions=Assumptions(docs_per_month=10_000, **assumed))


def _write(config: BreakEvenConfig, variants: list[dict[str, Any]]) -> None:
    write_experiments(config.settings.layout.experiments, variants)


def target_recommendation(c: Comparison, have: int | None = None, hourly: float | None = None) -> str:
    """The one verdict on a comparison (no cost-only analysis), in words."""
    return render_verdict(choose(None, c, c.target, Labelling(have=c.labeled if have is None else have,
                                                               need=c.assumptions.training_examples,
                                                               minutes_per_doc=3.0, hourly_usd=hourly)))


def _label(config: BreakEvenConfig, documents: int) -> None:
    with Labels(config.settings.layout.journal) as labels:
        for i in range(documents):
            labels.add(f"d{i}.txt", "name", f"Person {i}", source="labels.jsonl", content_sha256=None,
                       kind=LABELS_FILE)


def test_recommends_the_cheapest_variant_that_reaches_the_target(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, VARIANTS)
    c = compare_experiments(config)
    assert c is not None
    static, similar, big, finetuned = c.options
    assert [o.kind for o in c.options] == [STATIC, RETRIEVED, STATIC, FINETUNED]
    # 10,000 documents a month: $4, $10 and $80.
    assert [c.per_month(o) for o in (static, similar, big)] == [pytest.approx(4), pytest.approx(10),
                                                                pytest.approx(80)]
    # examples=static (90%) misses 95%; similar:3 (96%) and gpt-4.1 (97%) reach it; similar:3 is cheaper.
    said = target_recommendation(c)
    # Each accuracy with its count and its 95% Wilson interval: 96% of 40 fields is 84.9-99.0%.
    assert said.startswith("Use retrieved examples, examples=similar:3: 96.0% of 40 fields over 20 documents (95% "
                           "interval 84.9-99.0%) reaches the target 95.0% for $0.00100 a document, $10.00 a month "
                           "(10,000 documents): the cheapest measured option that does, over the 90-night horizon.")
    assert "Its interval reaches down to 84.9%: measure it on more labelled documents" in said
    assert " If answers may wait 24 h, the Batch API runs it for $0.000500 a document, $5.00 a month." in said
    # The fine-tuned estimate, priced from examples=static's tokens (no production run, no experiment journal):
    # 2,000 prompt and 200 completion tokens, (2000 * 0.2 + 200 * 0.8) = 560 micro-$ * 1.02 requests = 571.2
    # micro-$ a document, $5.71 a month; training 500 * 2,200 * 3 epochs * 1.5 $/Mtok = $4.95, once.
    assert finetuned.accuracy is None and finetuned.variant is None
    assert finetuned.per_doc == pytest.approx(571.2e-6) and finetuned.training_usd == pytest.approx(4.95)
    assert c.per_month(finetuned) == pytest.approx(5.712)
    # Over the 90-night horizon, training included: $4.95 + 3 * $5.712 = $22.09 against similar:3's $30.
    assert c.over_horizon(finetuned) == pytest.approx(4.95 + 3 * 5.712) and c.over_horizon(similar) == 30
    # Cheaper than the recommendation, but never taken to reach the target: said so, not assumed.
    assert "would cost $5.71 a month, but its accuracy is unknown until an experiment measures it." in said
    # A higher target only gpt-4.1 reaches: the same prompt on a stronger model.
    higher = compare_experiments(dataclasses.replace(config, target=0.965))
    assert higher is not None
    assert target_recommendation(higher).startswith(
        "Use a stronger model with the same prompt, model=gpt-4.1,examples=static: 97.0% of 40 fields")


def test_the_choices_are_numbers_before_they_are_words(tmp_path: Path) -> None:
    """The comparison picks options and prices them (`compare`); `verdict` only says what it picked."""
    config = _config(tmp_path)
    _write(config, VARIANTS)
    c = compare_experiments(config)
    assert c is not None
    static, similar, big, finetuned = c.options
    assert [o.label for o in c.reaching()] == ["examples=similar:3", "model=gpt-4.1,examples=static"]
    assert c.cheapest() is similar and c.per_month(similar) == pytest.approx(10.0)
    assert c.cheapest_batch() is similar and c.batch_per_month(similar) == pytest.approx(5.0)
    assert c.cheaper_unmeasured(similar) == [finetuned] and c.per_month(finetuned) == pytest.approx(5.712)
    assert c.closest() is big and c.finetuned_measured() is None and c.retrieved_measured
    # 97% and 96% of 40 fields, 90% too: their intervals overlap, no clear leader.
    assert c.leaders() == [big, similar, static]
    assert c.base_model == "gpt-4o-mini" and c.stronger() == [big]
    # The monthly volume as given, with no production run; the unmeasured fine-tuned model priced from
    # examples=static's 2,000 prompt and 200 completion tokens, $4.95 of training spread over 3 months.
    assert (c.docs_per_month, c.volume_given, c.observed) == (10_000, True, None)
    pricing = c.finetuned_pricing
    assert pricing is not None and pricing.base is static.variant and pricing.cost is None
    assert (pricing.prompt_tokens, pricing.output_tokens) == (2000.0, 200.0)
    assert pricing.training_usd == pytest.approx(4.95) and c.horizon_nights == 90
    # Out of reach: nothing is the cheapest, the closest is still the most accurate.
    beyond = dataclasses.replace(c, target=0.99)
    assert (beyond.reaching(), beyond.cheapest(), beyond.closest()) == ([], None, big)
    # The rungs, read off the numbers: what reaches the target is used; out of reach, the next rung up.
    labelling = Labelling(have=0, need=500, minutes_per_doc=3.0, hourly_usd=None)
    assert choose(None, c, 0.95, labelling).rung == RETRIEVE and choose(None, c, 0.95, labelling).use is similar
    assert choose(None, c, 0.965, labelling).rung == STRONGER
    assert choose(None, c, 0.85, labelling).rung == KEEP, "the static prompt is cheapest and reaches 85%"
    assert choose(None, beyond, 0.99, labelling).rung == FINETUNE
    # No target and no production run: no verdict on cost; it says what was measured and asks for a target.
    assert target_recommendation(dataclasses.replace(c, target=None)).startswith(
        "No verdict on cost (no production run to price) and no target: No clear winner:")


def test_none_reaching_the_target_gives_the_next_rung_and_its_effort(tmp_path: Path) -> None:
    config = _config(tmp_path, target=0.99)
    _write(config, VARIANTS)
    _label(config, 30)
    c = compare_experiments(config)
    assert c is not None and c.labeled == 30
    said = target_recommendation(c, hourly=40.0)
    # Retrieved examples and a stronger model were measured: the next rung is fine-tuning, said once, with what it
    # needs in labels and labelling time, and every accuracy with its count and interval; ties are ties.
    assert said.startswith("Fine-tune: none of the measured options reaches 99.0% of fields right. No clear winner: "
                           "model=gpt-4.1,examples=static, 97.0% of 40 fields over 20 documents (95% interval ")
    assert "(their 95% intervals overlap: the difference may be chance)" in said
    assert "Retrieved examples and a stronger model were measured and do not reach it either." in said
    assert ("Fine-tuning gpt-4.1-nano-2025-04-14 needs 500 labelled documents (an assumption, --training-examples: "
            "a few hundred labelled documents is a common training set") in said
    assert ("you have 30: label 470 more, about 24 hours at 3 minutes a document (label_minutes), $940.00 at $40 "
            "an hour.") in said
    assert "Then `extractor export finetune`, fine-tune, and measure it: `extractor experiment INPUT_DIR --labels " \
           "FILE --variant model=ft:...`." in said
    # Only the static prompt measured: retrieved examples are the cheaper rung to try first, then a stronger model.
    only_static = _config(tmp_path / "static", target=0.99, training_examples=20)
    _write(only_static, VARIANTS[:1])
    _label(only_static, 30)
    advice = compare_experiments(only_static)
    assert advice is not None
    told = target_recommendation(advice)
    assert told.startswith("Use retrieved examples next: none of the measured options reaches 99.0% of fields "
                           "right. The most accurate is examples=static, 90.0% of 40 fields over 20 documents")
    assert "Measure `--variant examples=similar:3`" in told and "only the 30 labelled documents you have" in told
    two = _config(tmp_path / "two", target=0.99)
    _write(two, VARIANTS[:2])
    stronger = compare_experiments(two)
    assert stronger is not None
    assert target_recommendation(stronger).startswith(
        "Try a stronger model with the same prompt: none of the measured options reaches 99.0%")
    said_stronger = target_recommendation(stronger)
    assert "Measure `--variant model=gpt-4.1-mini,examples=static`: it needs no labels." in said_stronger
    # Today's static prompt (2,000 prompt and 200 completion tokens) at gpt-4.1-mini's $0.40 / $1.60 per Mtok.
    assert "it would cost about $0.00112 a document, $11.20 a month, at its list price." in said_stronger
    assert "If no model reaches the target, the rung after is fine-tuning. Fine-tuning gpt-4.1-nano" in said_stronger


def test_unknown_fine_tuned_accuracy_is_stated_and_a_measured_one_is_used(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, VARIANTS)
    decision = decide(config)
    assert decision.cost is None and decision.comparison is not None
    text = decision.text()
    assert "UNKNOWN" in text
    assert any(line.startswith("The fine-tuned model's accuracy is UNKNOWN: no experiment measured a fine-tuned "
                               "variant") for line in comparison_assumptions(decision.comparison))
    assert "No cost-only break-even from the journal: no runs yet" in text
    assert ("Volume: 10,000 documents a month, as given (--docs-per-month): the journal has no production run to "
            "observe it from.") in text

    # A measured fine-tuned variant: its accuracy counts, it is priced from its tokens at the fine-tuning table's
    # gpt-4o-mini rates (no recorded cost), its training is spent, and no unmeasured estimate is added.
    measured = _config(tmp_path / "ft")
    _write(measured, [*VARIANTS, {"variant": "model=ft:gpt-4o-mini-2024-07-18:acme::abc", "accuracy": 0.98,
                                  "cost": None, "prompt_tokens": 1000.0, "completion_tokens": 200.0}])
    c = compare_experiments(measured)
    assert c is not None and len(c.options) == 4
    ft = c.options[3]
    assert (ft.kind, ft.accuracy, ft.training_usd, ft.priced_from_tokens) == (FINETUNED, 0.98, 0.0, True)
    assert ft.per_doc == pytest.approx((1000 * 0.30 + 200 * 1.20) / 1e6)  # 540 micro-$: $5.40 a month
    assert target_recommendation(c).startswith(
        "Use the fine-tuned model, model=ft:gpt-4o-mini-2024-07-18:acme::abc: 98.0% of 20 fields")
    assert not any("UNKNOWN" in line for line in comparison_assumptions(c))
    assert any("exists and was measured: its training is spent" in line for line in comparison_assumptions(c))


def test_batch_prices_are_the_discount_of_each_option(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _write(config, VARIANTS)
    c = compare_experiments(config)
    assert c is not None and c.table.batch_discount == 0.5
    for o in c.options:
        assert o.per_doc is not None
        assert o.batch_per_doc == pytest.approx(o.per_doc * 0.5), o.label
        assert c.batch_per_month(o) == pytest.approx(o.per_doc * 0.5 * 10_000), o.label
    assert any("bills 50% of the normal price" in line for line in comparison_assumptions(c))
    # A model with no Batch API (a local one) gets no batch price.
    local = _config(tmp_path / "local")
    _write(local, [{"variant": "model=qwen2.5-3b-instruct-q4_k_m,examples=static", "accuracy": 0.9, "cost": 0.0,
                    "fields": {"name": 0.9}}])
    lc = compare_experiments(local)
    assert lc is not None
    assert lc.options[0].batch_per_doc is None and c.batch_per_month(lc.options[0]) is None
    assert any("has none (not an OpenAI model)" in line for line in comparison_assumptions(lc))


def test_the_newest_experiment_of_each_variant_is_used(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = config.settings.layout.experiments
    write_experiments(path, [
        {**VARIANTS[0], "experiment_id": "zz-old", "finished_at": "2026-01-01T00:00:00", "accuracy": 0.50},
        {**VARIANTS[1], "experiment_id": "zz-old", "finished_at": "2026-01-01T00:00:00"}])
    write_experiments(path, [{**VARIANTS[0], "experiment_id": "aa-new", "finished_at": "2026-02-01T00:00:00",
                              "fields": {"name": 0.8}}])
    variants = read_experiments(path)
    assert [(v.variant, v.experiment_id, v.accuracy) for v in variants] == [
        ("examples=static", "aa-new", 0.90), ("examples=similar:3", "zz-old", 0.96)]
    assert variants[0].field_accuracy == {"name": 0.8}, "the older experiment's fields are not mixed in"
    assert (variants[1].agreement, variants[1].not_found_share) == (0.8, 0.05)


def test_volume_is_needed_without_a_production_run(tmp_path: Path) -> None:
    config = BreakEvenConfig(settings=settings(tmp_path / "out"), target=0.95)
    _write(config, VARIANTS)
    with pytest.raises(ConfigError, match=r"no production run .* --docs-per-month N"):
        decide(config)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        BreakEvenConfig(settings=config.settings, target=95)


@pytest.mark.integration
def test_breakeven_target_from_the_cli(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i} " + "words " * (20 * i) for i in range(6)})
    runner.run(make_config(tmp_path, fake_server))
    common = ["--output", str(tmp_path / "out"), "--schemas", str(Path(__file__).parent.parent / "schemas")]
    where = settings(tmp_path / "out")

    # No experiment yet: the cost block, then the one verdict; --target says how to measure accuracy.
    before = cli("breakeven", *common)
    assert before.returncode == 0, before.stderr
    cost_block = render_text(breakeven_analysis(BreakEvenConfig(settings=where)))
    assert before.stdout.startswith(cost_block)
    assert before.stdout.count("Verdict: ") == 1 and "Recommendation" not in before.stdout
    assert before.stdout.strip().split("\n")[-1].startswith("Verdict: Keep prompting gpt-4o-mini: ")
    told = cli("breakeven", "--target", "0.95", *common)
    assert told.returncode == 0, told.stderr
    assert told.stdout.startswith(cost_block)
    assert "no experiment measured accuracy" in told.stdout and "extractor experiment INPUT_DIR" in told.stdout

    write_experiments(where.layout.experiments, VARIANTS)
    result = cli("breakeven", "--target", "0.95", *common)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(cost_block), "the cost block comes first, unchanged"
    assert "Measured options (experiments.parquet" in out
    for label in ("examples=static", "examples=similar:3", "model=gpt-4.1,examples=static",
                  "fine-tuned gpt-4.1-nano-2025-04-14 (not measured)"):
        assert label in out
    # The monthly volume is the journal's: 6 new documents in one production night, 30 nights a month.
    assert "180 documents a month, 6 new documents a night over 1 production night(s)" in out
    # One verdict, pointing one way.
    assert out.count("Verdict: ") == 1 and "Recommendation" not in out
    assert "Verdict: Use retrieved examples, examples=similar:3: 96.0% of 40 fields over 20 documents" in out
    # The fine-tuned option is priced as the cost block prices it.
    assert "priced as the cost block above prices it" in out
    # --json: the same figures.
    as_json = cli("breakeven", "--target", "0.95", "--json", *common)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["verdict"]["rung"] == RETRIEVE and data["verdict"]["use"] == "examples=similar:3"
    assert data["verdict"]["text"] in " ".join(out.split())
    assert data["cost"]["docs_per_month"] == data["comparison"]["docs_per_month"] == 180
    similar = next(o for o in data["comparison"]["options"] if o["label"] == "examples=similar:3")
    assert (similar["accuracy"], similar["fields"], similar["documents"]) == (0.96, 40, 20)
    assert similar["interval_95"] == [pytest.approx(0.849, abs=5e-4), pytest.approx(0.990, abs=5e-4)]
    bad = cli("breakeven", "--target", "95", *common)
    assert bad.returncode != 0 and "between 0 and 1" in bad.stderr


def test_a_locally_fine_tuned_variant_is_the_measured_fine_tuned_rung(tmp_path: Path) -> None:
    """`extractor finetune-local`'s model measured by an experiment: the fine-tuned rung with its accuracy, its count
    of documents, its training time and its serving cost (CPU seconds, no API price), not UNKNOWN."""
    import polars as pl

    config = _config(tmp_path)
    spec = "model_path=outputs/cover_letter/finetuned/m-ft-1/m-ft-1.gguf"
    _write(config, [*VARIANTS, {"variant": spec, "accuracy": 0.98, "cost": 0.0, "documents": 6,
                                "model": "smollm2-135m-instruct-q4_1"}])
    path = config.settings.layout.experiments
    frame = pl.read_parquet(path)
    local = pl.col("variant") == spec
    frame = frame.with_columns(
        finetuned=pl.when(local).then(pl.lit("m-ft-1.gguf")), trained_documents=pl.when(local).then(pl.lit(18)),
        training_s=pl.when(local).then(pl.lit(412.0)), training_compute_s=pl.when(local).then(pl.lit(790.0)),
        compute_s_per_doc=pl.when(local).then(pl.lit(21.5)))
    frame.write_parquet(path)
    [measure] = [v for v in read_experiments(path) if v.variant == spec]
    assert (measure.finetuned, measure.trained_documents, measure.training_s) == ("m-ft-1.gguf", 18, 412.0)
    c = compare_experiments(config)
    assert c is not None
    ft = c.finetuned_measured()
    assert ft is not None and ft.kind == FINETUNED and ft.accuracy == 0.98 and ft.per_doc == 0.0
    assumptions = comparison_assumptions(c)
    assert not any("UNKNOWN" in line for line in assumptions)
    assert ("The fine-tuned model m-ft-1.gguf was trained locally (extractor finetune-local) on 18 labeled "
            "document(s) in 412 s of training (790 CPU s), and measured on 6 held-back document(s) it was never "
            "trained on; serving it costs 22 CPU s a document on the local model server, no API price.") in \
        " ".join(assumptions)
    assert target_recommendation(c).startswith(f"Use the fine-tuned model, {spec}: 98.0% of 20 fields over 6 documents")
