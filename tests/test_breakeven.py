"""Break-even of fine-tuning versus prompting: hand-checked arithmetic, the quality wall, and the journal."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path
from typing import Any

import instructor
import pytest
from genai_prices import Usage, calc_price

from extractor.config import ModelPrice
from extractor.extraction import runner
from extractor.extraction.prompts import system_prompt
from extractor.ladder.assumed import FINETUNE_TARGET as DEFAULT_FINETUNE_TARGET
from extractor.ladder.breakeven import BreakEvenConfig, decide
from extractor.ladder.compare import Labelling, choose, quality_wall
from extractor.ladder.costmodel import Assumptions, BreakEven, Observed, analyze, current_prices, observed_from_journal
from extractor.ladder.finetune import ExampleTokens
from extractor.ladder.verdict import cost_assumptions, render_text, render_verdict
from extractor.llm.pricing import finetune_prices
from extractor.llm.tokens import fit_tokens_per_char
from extractor.schemas import load_schema
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, write_docs

# gpt-4o-mini as genai-prices has it, USD per Mtok: input 0.15, cached 0.075, output 0.6.
MINI = ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6, cached_input_per_mtok=0.075)
# The shipped table's fine-tuned gpt-4.1-nano: training 1.50, input 0.20, cached 0.05, output 0.80; batch 0.5.
TABLE = finetune_prices()


def observed(**changes: Any) -> Observed:
    """1.1 requests a document of 2,000 static and 1,000 document tokens (half of them cached), 200 completion
    tokens each; a fine-tuning example of the same documents: 1,500 prompt tokens (the static prompt without its
    few-shot examples, 500, and the document), a 200-token answer."""
    base = Observed(model="gpt-4o-mini", documents=600, nights=2, docs_per_night=300.0, prompt_tokens=3300,
                    completion_tokens=220, cached_tokens=1650, requests_per_doc=1.1,
                    finetuned=ExampleTokens(prompt_tokens=1500, answer_tokens=200, examples=200, basis="a test"))
    return dataclasses.replace(base, **changes)


def per_request(prompt: float, output: float, requests: float = 1.0, cached: float = 0.0) -> dict[str, float]:
    """Observed's per-document fields from per-request figures."""
    return {"prompt_tokens": prompt * requests, "completion_tokens": output * requests,
            "cached_tokens": cached * prompt * requests, "requests_per_doc": requests}


def said(result: BreakEven, have: int = 0) -> str:
    """The one verdict on cost alone (no experiment, no target)."""
    return render_verdict(choose(result, None, None, Labelling(have=have, need=result.assumptions.training_examples,
                                                               minutes_per_doc=3.0, hourly_usd=None)))


def test_per_document_month_and_training_arithmetic() -> None:
    result = analyze(observed(), Assumptions(current_price=MINI), TABLE)
    # Prompting, one request: (2000 + 1000) prompt tokens at half 0.15, half 0.075 = 0.1125 $/Mtok
    #   -> 3000 * 0.1125 = 337.5 micro-$; 200 output * 0.6 = 120 micro-$; 457.5 micro-$ a request;
    #   * 1.1 requests = 503.25 micro-$ a document.
    assert result.prompting_per_doc == pytest.approx(503.25e-6)
    # Fine-tuned: (500 + 1000) * 0.2 = 300 micro-$ (nothing cached) + 200 * 0.8 = 160 -> 460 micro-$;
    #   * 1.02 requests = 469.2 micro-$ a document.
    assert result.finetuned_per_doc == pytest.approx(469.2e-6)
    # Training: 500 examples * (500 + 1000 + 200) tokens * 3 epochs = 2,550,000 tokens * 1.5 $/Mtok = $3.825.
    assert result.training_tokens == pytest.approx(2_550_000)
    assert result.training_usd == pytest.approx(3.825)
    # A month: 300 a night * 30 nights = 9,000 documents -> $4.52925 prompting, $4.2228 fine-tuned.
    assert result.docs_per_month == pytest.approx(9000)
    assert result.prompting_per_month == pytest.approx(4.52925)
    assert result.finetuned_per_month == pytest.approx(4.2228)
    # Break-even: 3.825 / (503.25 - 469.2) micro-$ = 3.825 / 34.05e-6 = 112,334.8 -> 112,335 documents;
    #   112,335 / 300 a night = 374.45 -> the 375th night.
    assert (result.breakeven_docs, result.breakeven_nights) == (112_335, 375)
    # Batch: 503.25 / 2 = 251.625 micro-$ a document, below the fine-tuned 469.2: never worth training for.
    assert result.batch_per_doc == pytest.approx(251.625e-6)
    assert (result.breakeven_vs_batch_docs, result.breakeven_vs_batch_nights) == (None, None)
    # 375 nights is past the 90-night payback limit: keep prompting, and say why in the one verdict.
    assert said(result) == (
        "Keep prompting gpt-4o-mini: on cost fine-tuning pays back its $3.83 of training only after 112,335 "
        "documents (375 nights at 300 a night), beyond the 90-night horizon: not worth it for cost alone. If answers "
        "may wait 24 h, the Batch API halves today's cost with no training: $0.000252 a document. Quality is taken "
        "as equal: measure it against labelled documents with `extractor experiment` and give --target to weigh "
        "it.")


def test_break_even_within_the_payback_limit() -> None:
    gpt4o = ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0, cached_input_per_mtok=1.25)
    obs = observed(model="gpt-4o", **per_request(4500, 300),
                   finetuned=ExampleTokens(prompt_tokens=2000, answer_tokens=300, examples=200, basis="a test"))
    result = analyze(obs, Assumptions(current_price=gpt4o, reask_rate_finetuned=0.0), TABLE)
    # Prompting: 4500 * 2.5 + 300 * 10 = 11,250 + 3,000 = 14,250 micro-$ a document.
    # Fine-tuned: (500 + 1500) * 0.2 + 300 * 0.8 = 400 + 240 = 640 micro-$ a document.
    # Training: 500 * 2300 * 3 = 3,450,000 tokens * 1.5 = $5.175.
    assert (result.prompting_per_doc, result.finetuned_per_doc) == (pytest.approx(0.01425), pytest.approx(0.00064))
    assert result.training_usd == pytest.approx(5.175)
    # 5.175 / (0.01425 - 0.00064) = 5.175 / 0.01361 = 380.2 -> 381 documents, 381 / 300 -> 2 nights.
    assert (result.breakeven_docs, result.breakeven_nights) == (381, 2)
    n = result.breakeven_docs
    assert result.training_usd + n * result.finetuned_per_doc <= n * result.prompting_per_doc
    assert result.training_usd + (n - 1) * result.finetuned_per_doc > (n - 1) * result.prompting_per_doc
    # Against the Batch API (7,125 micro-$): 5.175 / 0.006485 = 797.99 -> 798 documents, 2.66 -> 3 nights.
    assert (result.breakeven_vs_batch_docs, result.breakeven_vs_batch_nights) == (798, 3)
    # Saves 9,000 * (0.01425 - 0.00064) = $122.49 a month.
    verdict = said(result, have=120)
    assert verdict.startswith(f"Fine-tune {DEFAULT_FINETUNE_TARGET}: on cost it pays back its $5.17 of training")
    assert ("after 381 documents (2 nights at 300 a night), then saves $122.49 a month over prompting gpt-4o; it "
            "beats the Batch API too after 798 documents.") in verdict
    # What it needs, in labelled documents and labelling time: the real cost of a fine-tune.
    assert "needs 500 labelled documents (an assumption, --training-examples:" in verdict
    assert "you have 120: label 380 more, about 19 hours at 3 minutes a document (label_minutes)" in verdict


def test_the_verdict_is_read_off_the_numbers() -> None:
    """Whether fine-tuning pays back, and what it saves, are numbers of the cost model; the words come after."""
    slow = analyze(observed(), Assumptions(current_price=MINI), TABLE)
    assert (slow.breakeven_docs, slow.breakeven_nights, slow.pays_back) == (112_335, 375, False)
    assert slow.saving_per_month == pytest.approx(4.52925 - 4.2228)
    assert slow.training_example_tokens == 1500 + 200
    assert said(slow).startswith("Keep prompting gpt-4o-mini:")
    gpt4o = ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0, cached_input_per_mtok=1.25)
    fast = analyze(observed(model="gpt-4o", **per_request(4500, 300),
                            finetuned=ExampleTokens(prompt_tokens=2000, answer_tokens=300, examples=200, basis="")),
                   Assumptions(current_price=gpt4o, reask_rate_finetuned=0.0), TABLE)
    assert (fast.breakeven_docs, fast.breakeven_nights, fast.pays_back) == (381, 2, True)
    assert fast.saving_per_month == pytest.approx(9000 * (0.01425 - 0.00064))
    assert fast.batch_per_doc is not None and fast.batch_per_doc > fast.finetuned_per_doc
    assert fast.breakeven_vs_batch_docs == 798
    assert said(fast).startswith("Fine-tune ")
    # One night more than the payback limit allows: the same numbers, the other verdict.
    strict = dataclasses.replace(fast, assumptions=dataclasses.replace(fast.assumptions, max_payback_nights=1))
    assert not strict.pays_back and said(strict).startswith("Keep prompting gpt-4o:")


def test_never_pays_when_the_fine_tuned_model_costs_more_per_document() -> None:
    # Today on base gpt-4.1-nano (0.1 / 0.025 / 0.4): 1.1 * (3000 * 0.0625 + 200 * 0.4) = 1.1 * 267.5
    #   = 294.25 micro-$, below the fine-tuned 469.2: training never pays back.
    nano = ModelPrice(input_per_mtok=0.1, output_per_mtok=0.4, cached_input_per_mtok=0.025)
    result = analyze(observed(), Assumptions(current_price=nano), TABLE)
    assert result.prompting_per_doc == pytest.approx(294.25e-6)
    assert (result.breakeven_docs, result.breakeven_nights) == (None, None)
    assert (result.breakeven_vs_batch_docs, result.breakeven_vs_batch_nights) == (None, None)
    assert said(result).startswith("Keep prompting gpt-4o-mini: on cost fine-tuning never pays back: a fine-tuned ")
    assert "buy accuracy, not savings. If answers may wait 24 h, the Batch API halves today's cost" in said(result)
    curves = result.curves(points=5)
    # No break-even: the curves run to a year of documents, 12 * 9,000 = 108,000.
    assert [n for n, _ in curves["prompting"]] == [0, 27_000, 54_000, 81_000, 108_000]
    assert all(ft > p for (_, ft), (_, p) in zip(curves["fine-tuned"], curves["prompting"], strict=True))
    assert "never on cost" in render_text(result)


def test_batch_line_is_the_discounted_prompting_cost() -> None:
    result = analyze(observed(), Assumptions(current_price=MINI), TABLE)
    assert TABLE.batch_discount == 0.5
    assert result.batch_per_doc == pytest.approx(result.prompting_per_doc / 2)
    assert result.batch_per_month == pytest.approx(result.prompting_per_month / 2)
    assert any("24 hours" in line for line in cost_assumptions(result))
    other = analyze(observed(), Assumptions(current_price=MINI), dataclasses.replace(TABLE, batch_discount=0.6))
    assert other.batch_per_doc == pytest.approx(result.prompting_per_doc * 0.6)
    assert "the Batch API cuts today's cost by 40%" in said(other)


def test_curves_cross_at_the_break_even_volume() -> None:
    result = analyze(observed(), Assumptions(current_price=MINI, horizon_docs=200_000), TABLE)
    curves = result.curves(points=3)
    assert [n for n, _ in curves["fine-tuned"]] == [0, 100_000, 200_000]
    assert curves["fine-tuned"][0] == (0, pytest.approx(3.825))  # the training bill at zero documents
    assert curves["batch"][2] == (200_000, pytest.approx(200_000 * 251.625e-6))
    # Fine-tuning is above prompting before 112,335 documents and below after.
    assert curves["fine-tuned"][1][1] > curves["prompting"][1][1]
    assert curves["fine-tuned"][2][1] < curves["prompting"][2][1]
    with pytest.raises(ValueError):
        result.curves(points=1)


def test_assumptions_are_all_stated() -> None:
    text = "\n".join(cost_assumptions(analyze(observed(), Assumptions(current_price=MINI), TABLE)))
    for needle in (TABLE.as_of, TABLE.source, "300 new documents a night over 2 production night(s)",
                   "30 nights a month", "9,000 documents a month", "1.10 billed requests", "3,300 prompt tokens",
                   "1,650 of them (50%)", "220 completion tokens", "one call for the whole schema",
                   "$0.15 per Mtok", "$0.075 cached", "price given in the assumptions", "`extractor export finetune`",
                   "1,500 prompt tokens, answered with 200 tokens",
                   "counted over 200 production document(s), at a test",
                   "1.02 requests", "500 examples of 1,700 tokens", "3 epoch", "2,550,000 training tokens",
                   "24 hours", "90 nights", "cost only", "hosting"):
        assert needle in text, needle
    assert "instructions and few-shot examples" not in text, "no static prefix a field strategy never sends"


def test_the_strategy_is_stated() -> None:
    fields = observed(strategy="fields", **per_request(1500, 5, requests=12, cached=0.8))
    text = "\n".join(cost_assumptions(analyze(fields, Assumptions(current_price=MINI), TABLE)))
    assert "field by field: one short question a request, each carrying the document first" in text
    assert "12.00 billed requests" in text and "18,000 prompt tokens, 14,400 of them (80%)" in text


def test_fit_separates_fixed_tokens_from_the_per_character_rate() -> None:
    lengths = (4000, 4090, 4150, 4230, 4320)  # 320 characters apart at most, like inputs/
    points = [(chars, round(900 + chars / 4)) for chars in lengths]
    rate, overhead = fit_tokens_per_char(points)  # type: ignore[misc]
    assert rate == pytest.approx(0.25, rel=0.01)
    assert overhead == pytest.approx(900, abs=10)
    assert fit_tokens_per_char(points[:4]) is None, "too few documents"
    assert fit_tokens_per_char([(5000, 2150)] * 6) is None, "all the same length"
    noisy = [(5000 + i, 2150 + (37 if i % 2 else -37)) for i in range(8)]
    assert fit_tokens_per_char(noisy) is None, "lengths too alike for the tokens' noise: rate not pinned down"
    assert fit_tokens_per_char([(c, c // 2 - 2000) for c in lengths]) is None, "a negative fixed part"


def test_unknown_current_price_and_unknown_target_are_errors() -> None:
    with pytest.raises(ValueError, match="no price known"):
        analyze(observed(model="my-self-hosted-7b"), Assumptions(), TABLE)
    with pytest.raises(KeyError, match="no fine-tuning price"):
        analyze(observed(), Assumptions(current_price=MINI, target_model="gpt-99"), TABLE)


def test_the_volume_given_is_the_volume_of_every_figure() -> None:
    result = analyze(observed(), Assumptions(current_price=MINI, docs_per_month=3000), TABLE)
    assert (result.docs_per_month, result.docs_per_night) == (3000, 100)
    assert result.prompting_per_month == pytest.approx(3000 * 503.25e-6)
    assert result.breakeven_nights == math.ceil(112_335 / 100)
    text = render_text(result)
    assert "3,000 documents a month" in text and "9,000" not in text.split("Assumptions:")[0]
    assert "3,000 documents a month, as given (--docs-per-month), 100 a night" in text


def test_current_prices_come_from_genai_prices() -> None:
    found = current_prices("gpt-4o-mini")
    assert found is not None
    million = 1_000_000
    assert found.input_per_mtok == float(calc_price(Usage(input_tokens=million), "gpt-4o-mini").total_price)
    assert found.output_per_mtok == float(calc_price(Usage(output_tokens=million), "gpt-4o-mini").total_price)
    assert found.cached_input_per_mtok == float(
        calc_price(Usage(input_tokens=million, cache_read_tokens=million), "gpt-4o-mini").total_price)
    assert (found.input_per_mtok, found.cached_input_per_mtok, found.output_per_mtok) == (0.15, 0.075, 0.6)
    # A self-hosted URL the table does not know still matches on the model name, as Pricer does.
    assert current_prices("gpt-4o-mini", base_url="http://127.0.0.1:9/v1") == found
    assert current_prices("my-self-hosted-7b") is None
    override = {"my-self-hosted-7b": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}
    assert current_prices("my-self-hosted-7b", overrides=override) == ModelPrice(1.0, 2.0, 1.0)
    # With no price given, analyze looks up the observed model itself.
    result = analyze(observed(), Assumptions(), TABLE)
    assert result.current_price == found and result.current_price_source.startswith("genai-prices")


HISTORY = [
    ("v1", {"name": 0.50, "salary": 0.60, "email": 0.95, "phone": 0.40}),
    ("v2", {"name": 0.70, "salary": 0.62, "email": 0.97, "phone": 0.95}),
    ("v3", {"name": 0.95, "salary": 0.70, "skills": 0.30, "phone": 0.50}),
    ("v4", {"name": 0.96, "salary": 0.80, "phone": 0.60}),
]


def test_quality_wall_finds_fields_prompt_work_has_not_fixed() -> None:
    # salary: below 0.9 in v2, v3, v4 -> the wall. name: fixed since v3. email: always fine.
    # phone: 0.95 in v2 is inside the last three -> not a wall. skills: one version only -> too early to tell.
    assert quality_wall(HISTORY) == ["salary"]
    # Looking at the last two versions only, phone (0.50, 0.60) has hit the wall too.
    assert quality_wall(HISTORY, last=2) == ["salary", "phone"]


def test_quality_wall_field_fixed_in_the_last_version() -> None:
    history = [("v1", {"salary": 0.5}), ("v2", {"salary": 0.6}), ("v3", {"salary": 0.9})]
    assert quality_wall(history) == []  # 0.9 is not below the 0.9 threshold
    assert quality_wall(history, threshold=0.95) == ["salary"]


def test_quality_wall_needs_two_versions() -> None:
    assert quality_wall([]) == []
    assert quality_wall([("v1", {"salary": 0.1, "name": 0.2})]) == []
    assert quality_wall([("v1", {"salary": 0.1}), ("v2", {"name": 0.2})]) == []
    assert quality_wall([("v1", {"salary": 0.1}), ("v2", {"salary": 0.2})]) == ["salary"]
    with pytest.raises(ValueError):
        quality_wall(HISTORY, last=0)


def test_observed_from_a_real_journal(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    schema = load_schema(ROOT / "schemas", "cover_letter")
    journal = tmp_path / "out" / "cover_letter" / "journal.sqlite3"
    assert observed_from_journal(journal, schema, "gpt-4o-mini") is None, "no journal yet: no data"
    assert not journal.exists(), "looking must not create a journal"

    def letter(sentence: str, times: int) -> str:
        return " ".join([sentence] * times)  # no trailing space: the reader would trim it off

    first = {f"d{i}.txt": letter(f"Dear team, I am applicant {i} and would like the job.", 5 + 3 * i)
             for i in range(4)}
    first["retry.txt"] = "Letter that first meets a rate limit [[fault:429]]"  # 2 HTTP requests, 1 billed
    first["reask.txt"] = "Letter whose first answer breaks the schema [[fault:invalid]]"  # 2 billed requests
    second = {"new.txt": letter("A new letter, arrived on the second night.", 9),
              "dup1.txt": letter("The same bytes twice.", 7), "dup2.txt": letter("The same bytes twice.", 7)}
    config = make_config(tmp_path, fake_server, concurrency=1)  # one at a time: dup2 reuses dup1's result
    write_docs(tmp_path / "in", first)
    assert runner.run(config).transport_retries == 1
    write_docs(tmp_path / "in", second)
    assert runner.run(config).cached == len(first) + 1  # the first night's letters and dup2 are carried
    assert runner.run(config).cached == len(first) + len(second)  # a third night with nothing new
    log = server_log(fake_server)

    obs = observed_from_journal(journal, schema, "gpt-4o-mini")
    assert obs is not None
    billed = [r for r in log if r["status"] == 200]
    texts = {**first, **second}
    sent = {r["first_user"] for r in billed}
    documents = len(sent)  # dup1 and dup2 are one request; carried rows are not counted again
    assert documents == len(texts) - 1 == obs.documents
    prompt = sum(r["prompt_tokens"] for r in billed)
    requests = len(billed)  # the 429 billed nothing and is not a request here; the re-ask is
    assert requests == documents + 1
    # Two production nights: the third run billed nothing new (it reused every stored result) and is not a night.
    assert (obs.nights, obs.other_runs, obs.docs_per_night) == (2, 1, pytest.approx(documents / 2))
    assert obs.requests_per_doc == pytest.approx(requests / documents)
    assert obs.prompt_tokens == pytest.approx(prompt / documents)
    assert obs.completion_tokens == pytest.approx(sum(r["completion_tokens"] for r in billed) / documents)
    assert obs.cached_tokens == pytest.approx(sum(r["cached_tokens"] for r in billed) / documents)
    assert 0 < obs.cached_fraction < 1 and obs.strategy == "whole"
    # What a fine-tuned model would be sent: the examples `export finetune` writes for these documents, counted at
    # the tokens a character fitted over the one-request documents (their lengths differ by ~600 characters),
    # which separates the tool schema's tokens (no characters in the messages) from the per-character rate.
    system, short = system_prompt(schema), system_prompt(schema, examples=False)
    def billed_for(text: str) -> int:
        (tokens,) = [r["prompt_tokens"] for r in billed if text in r["first_user"]]
        return tokens

    single = [(len(system) + len(text), billed_for(text)) for name, text in texts.items()
              if name not in ("dup2.txt", "retry.txt", "reask.txt")]
    rate, overhead = statistics.linear_regression([x for x, _ in single], [y for _, y in single])
    example = obs.finetuned
    assert example.examples == documents and example.approximated == 0
    assert f"fitted across {len(single)} one-request documents" in example.basis
    wanted = [overhead + rate * (len(short) + len(t)) for n, t in texts.items() if n != "dup2.txt"]
    assert example.prompt_tokens == pytest.approx(sum(wanted) / len(wanted))
    # The fake server bills ceil(characters / 4) of the JSON it receives: the rate is about 1/4 and the
    # fixed part is about the tool schema's JSON over 4, which the averaged rate wrongly spread over characters.
    assert rate == pytest.approx(0.25, rel=0.05)
    tool_tokens = len(json.dumps(instructor.openai_schema(schema.model).openai_schema)) / 4
    assert overhead == pytest.approx(tool_tokens, rel=0.15)
    averaged = prompt / sum(len(system) + len(t) for n, t in texts.items() if n != "dup2.txt") * documents / requests
    assert averaged > 1.3 * rate, "the averaged rate overstates a character's tokens; the fit is what fixes it"

    # Priced like the journal's rows, the model reproduces today's bill exactly.
    result = analyze(obs, Assumptions(), TABLE)
    assert obs.cost_per_doc is not None
    assert result.prompting_per_doc == pytest.approx(obs.cost_per_doc, rel=1e-9)
    assert result.training_example_tokens == pytest.approx(example.prompt_tokens + example.answer_tokens)
    text = render_text(result)
    for needle in ("today (prompting)", "fine-tuned", "Batch API (24 h)", "break-even", "Assumptions:",
                   TABLE.as_of):
        assert needle in text
    assert "Recommendation" not in text and "Verdict" not in text, "the verdict is said once, for the whole output"
    assert observed_from_journal(journal, schema, "another-model") is None


def test_a_local_model_is_free_as_its_rows_record_it() -> None:
    from extractor.config import EMBEDDED_MODEL, ModelPrice

    for model in (EMBEDDED_MODEL, "qwen2.5-3b-instruct-q4_k_m"):  # the default, or any GGUF it runs
        local = dataclasses.replace(observed(), model=model, cost_per_doc=0.0)
        result = analyze(local, Assumptions(), TABLE)
        local = dataclasses.replace(local, backend="embedded", endpoint="embedded")
        result = analyze(local, Assumptions(), TABLE)
        # No Batch API for a model that runs on this machine: no batch price, no batch sentence.
        assert result.prompting_per_doc == 0 and result.batch_per_doc is None and result.breakeven_docs is None
        assert "runs on this machine" in result.current_price_source
        verdict = said(result)
        assert verdict.startswith("Keep prompting ") and "never pays back" in verdict and "(free: it runs" in verdict
        assert "Batch API" not in verdict and "Batch API (24 h)" not in render_text(result)
        assert "has no Batch API" in "\n".join(cost_assumptions(result))
        priced = analyze(local, Assumptions(), TABLE,
                         prices={model: ModelPrice(input_per_mtok=0.1, output_per_mtok=0.1)})
        assert priced.prompting_per_doc > 0 and "config file" in priced.current_price_source
    with pytest.raises(ValueError, match="no price known"):  # unpriced rows (None) are not taken as free
        analyze(dataclasses.replace(observed(), model="qwen2.5-3b-instruct-q4_k_m"), Assumptions(), TABLE)


def _letters(count: int) -> dict[str, bytes]:
    """The first `count` plain-text sample letters of inputs/."""
    return {p.name: p.read_bytes() for p in sorted((ROOT / "inputs").glob("*.txt"))[:count]}


def test_the_field_strategys_tokens_agree_with_the_servers_usage(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    """Issue 28 item 4: the break-even prices what the field strategy really sends (a dozen short questions, each
    with the document first), and a fine-tuned model at what `export finetune` writes, both within 5% of what the
    server bills."""
    write_docs(tmp_path / "in", _letters(4))
    config = make_config(tmp_path, fake_server, strategy="fields")
    assert runner.run(config).ok == 4
    billed = [r for r in server_log(fake_server) if r["status"] == 200]
    decision = decide(BreakEvenConfig(settings=config))
    cost = decision.as_dict()["cost"]
    per_doc = cost["per_document"]
    assert cost["strategy"] == "fields"
    for key, server in (("prompt_tokens", "prompt_tokens"), ("completion_tokens", "completion_tokens"),
                        ("cached_tokens", "cached_tokens")):
        assert per_doc[key] == pytest.approx(sum(r[server] for r in billed) / 4, rel=0.05), key
    assert per_doc["requests"] == pytest.approx(len(billed) / 4, rel=0.05) and per_doc["requests"] > 3
    assert decision.cost is not None
    assert decision.cost.prompting_per_doc == pytest.approx(decision.cost.observed.cost_per_doc, rel=1e-9)

    # What a fine-tuned model would be sent: one call without few-shot examples, as `examples=none` sends it.
    fake_server.reset()
    whole = make_config(tmp_path, fake_server, strategy="whole", examples="none", output_dir=tmp_path / "whole")
    assert runner.run(whole).ok == 4
    sent = [r for r in server_log(fake_server) if r["status"] == 200]
    example = cost["finetuned_example"]
    assert example["prompt_tokens"] == pytest.approx(sum(r["prompt_tokens"] for r in sent) / 4, rel=0.05)
    # Training is priced on those very examples: 500 of them, 3 epochs.
    assert cost["finetuned"]["training_tokens"] == pytest.approx(500 * 3 * example["tokens"])
    assert example["tokens"] > 1000, "a letter's example is a whole letter, not one question's few tokens"
    text = decision.text()
    assert "field by field" in text and "instructions and few-shot examples" not in text


def test_volume_counts_production_nights_only(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    """Issue 28 item 5: a consistency re-run (every document answered again K times) and a rerun that reused every
    result are not production nights, and sampled documents' K answers are not a document's tokens."""
    write_docs(tmp_path / "in", _letters(3))
    config = make_config(tmp_path, fake_server)
    runner.run(config)  # the production night: 3 new letters
    assert runner.run(make_config(tmp_path, fake_server, samples=3)).sampled == 3  # the consistency re-run
    assert runner.run(config).cached == 3  # a rerun that reused everything
    first_night = [r for r in server_log(fake_server) if r["status"] == 200][:3]
    observed = decide(BreakEvenConfig(settings=config)).cost
    assert observed is not None
    o = observed.observed
    assert (o.nights, o.other_runs, o.docs_per_night) == (1, 2, 3.0)
    assert observed.docs_per_month == 90
    assert (o.documents, o.left_out) == (3, 3), "the sampled rows are left out of the means"
    assert o.prompt_tokens == pytest.approx(sum(r["prompt_tokens"] for r in first_night) / 3)
    assert "1 production night(s)" in render_text(observed) and "2 other run(s)" in render_text(observed)
