"""One token estimate (`llm.tokens.TokenRate`): the run's budget, the dry run, the fine-tuning export and the
break-even analysis count a text's tokens alike, from the rate the journal observed for the model."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest

from extractor.extraction import runner
from extractor.extraction.budget import Budget
from extractor.extraction.plan import _Questions, plan
from extractor.ladder.costmodel import observed_from_journal
from extractor.ladder.finetune import FinetuneConfig, export_finetune
from extractor.llm.pricing import Pricer
from extractor.llm.tokens import DEFAULT_COMPLETION_TOKENS, DEFAULT_TOKENS_PER_CHAR, TokenRate, answer_tokens
from extractor.schemas import load_schema
from extractor.store import PERSON, Journal, Labels
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, serving, settings, write_docs
from .test_invoice_evidence import USER_SCHEMA  # a user's invoice-like schema without examples

SCHEMA = load_schema(ROOT / "schemas", "cover_letter")
RATE = TokenRate(per_char=0.1, completion=7.0, documents=3)  # no tokenizer counts like this: it shows where it went


def test_the_rate_and_its_defaults() -> None:
    default = TokenRate.observed(None)
    assert (default.per_char, default.completion, default.calibrated) == (
        DEFAULT_TOKENS_PER_CHAR, DEFAULT_COMPLETION_TOKENS, False)
    assert default.chars_per_token == 4
    assert default.prompt_tokens(1001) == 251, "rounded up"
    assert default.prompt_tokens(1000, unmeasured_chars=400) == 350, "the default counts what the rate could not see"
    calibrated = TokenRate.observed((0.3, 150.0, 12))
    assert calibrated.calibrated and calibrated.prompt_tokens(1000, unmeasured_chars=400) == 300, \
        "a calibrated rate already includes it: the API billed it in the tokens it was measured on"


def test_budget_dry_run_finetune_and_breakeven_count_through_one_rate(
        tmp_path: Path, fake_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = json.dumps({"applicant_name": "Ada Lovelace", "language": "en"})
    write_docs(tmp_path / "in", {"a.txt": f"Letter A [[answer:{answer}]]", "b.txt": "Letter B, a little longer."})
    assert runner.run(make_config(tmp_path, fake_server)).ok == 2
    journal_path = tmp_path / "out" / "cover_letter" / "journal.sqlite3"
    labels = Labels(journal_path)
    labels.add("a.txt", "applicant_name", "Ada Lovelace", source="test", content_sha256=None, kind=PERSON)
    labels.close()
    monkeypatch.setattr(Journal, "tokens_per_char", lambda self, model: (RATE.per_char, RATE.completion, 3))

    # the dry run of a new document
    write_docs(tmp_path / "in", {"c.txt": "Letter C, which came later and is not extracted yet."})
    dry = plan(make_config(tmp_path, fake_server))
    (doc,) = dry.to_send
    assert (doc.prompt_tokens, doc.completion_tokens) == (math.ceil(doc.prompt_chars * 0.1), 7)
    assert "10.00 characters per prompt token" in dry.calibration

    # the budget prices that document from the same count, in the dry run and in the run
    pricer = Pricer.for_config(make_config(tmp_path, fake_server))
    expected = pricer.cost(doc.prompt_tokens, 7, 0)
    assert expected and Budget(1.0, pricer, RATE).admit(doc.prompt_chars) == (expected, expected)
    assert plan(make_config(tmp_path, fake_server, max_cost_usd=expected)).fit_under_limit == 1
    assert plan(make_config(tmp_path, fake_server, max_cost_usd=expected * 0.999)).fit_under_limit == 0
    held = runner.run(make_config(tmp_path, fake_server, max_cost_usd=expected * 0.999))
    assert held.cost_limited and held.ok == 2, "the run's budget held c back on the same estimate"

    # The fine-tuning export and the break-even count a fine-tuning example alike: at the rate of the journal's
    # one-call extractions (`example_rate`, a RequestRate over TokenRate), one count for the same example.
    from extractor.ladder.finetune import count_examples, example_rate, production_examples

    report = export_finetune(FinetuneConfig(settings=settings(tmp_path / "out")))
    with Journal.open_readonly(journal_path) as journal:
        rate = example_rate(journal, "gpt-4o-mini")
        row = journal.result_row(journal.paid_extractions("gpt-4o-mini")[0].run_id, "a.txt")
    assert (report.tokens_per_char, report.train_count) == (rate.rate.per_char, 1)
    (example,) = production_examples(settings(tmp_path / "out"), SCHEMA, [row])
    counted = count_examples([example], rate)
    assert counted is not None and report.train_tokens == math.ceil(counted.tokens)

    observed = observed_from_journal(journal_path, SCHEMA, "gpt-4o-mini")
    assert observed is not None and observed.requests_per_doc == 1
    assert observed.finetuned.basis == rate.basis
    both = count_examples(production_examples(settings(tmp_path / "out"), SCHEMA, [
        row, *(r for r in [_row(journal_path, "b.txt")] if r is not None)]), rate)
    assert both is not None and observed.finetuned.tokens == pytest.approx(both.tokens)


def _row(journal_path: Path, doc_id: str) -> dict | None:
    with Journal.open_readonly(journal_path) as journal:
        found = [r for r in journal.paid_extractions("gpt-4o-mini") if r.doc_id == doc_id]
        return journal.result_row(found[0].run_id, doc_id) if found else None


# -- estimates with no earlier run (issue 25: a flat 200 completion tokens; issue 28: the field strategy) -------




def _invoice_schema(tmp_path: Path, shipped: bool = False) -> Path:
    """A user's invoice-like schema without examples (an 18-line invoice's answer is mostly its line items), or
    the shipped one (schemas/invoice.py, whose examples have 2 and 3 lines) under another name."""
    schemas = tmp_path / "schemas"
    schemas.mkdir(exist_ok=True)
    source = (ROOT / "schemas" / "invoice.py").read_text() if shipped else textwrap.dedent(USER_SCHEMA)
    (schemas / "my_invoice.py").write_text(source)
    return schemas


@pytest.mark.parametrize("shipped", [False, True], ids=["a-user-schema-without-examples", "the-shipped-schema"])
def test_the_completion_estimate_comes_from_the_schema_not_a_flat_200(tmp_path: Path, shipped: bool) -> None:
    """An 18-line invoice answered with its true values: the schema's estimate (no examples: its fields, a list of
    objects assumed ROWS rows) is within a factor 2 of what the server billed (298 against 500), closer than a flat
    200 (2.5x off); the schema cannot know how many rows a document has."""
    schemas = _invoice_schema(tmp_path, shipped)
    schema = load_schema(schemas, "my_invoice")
    items = [{"description": f"Item number {i} of the order", "quantity": i % 5 + 1, "unit_price": 12.5 + i,
              "amount": (i % 5 + 1) * (12.5 + i)} for i in range(18)]
    values = {"invoice_number": "INV-2026-118", "invoice_date": "2026-10-01", "supplier_name": "Harbor Office Supply",
              "supplier_vat_id": "US941234567", "net_amount": 1000.0, "tax_amount": 190.0, "total_amount": 1190.0,
              "line_items": items}
    text = "Invoice INV-2026-118\n" + "\n".join(f"{i['description']} {i['quantity']} {i['unit_price']}" for i in items)
    write_docs(tmp_path / "in", {"inv.txt": text})
    with serving(answers={"INV-2026-118": values}) as server:
        config = make_config(tmp_path, server, schema="my_invoice", schemas_dir=schemas)
        runner.run(config)
        billed = sum(r["completion_tokens"] for r in server_log(server) if r["status"] == 200)
    estimate = answer_tokens(schema)
    assert billed > 400
    assert billed / 2 <= estimate <= billed * 2, (estimate, billed)
    assert abs(estimate - billed) < abs(DEFAULT_COMPLETION_TOKENS - billed)
    # A schema with examples: their answers' length (the cover letter's example is one whole answer).
    letter = load_schema(ROOT / "schemas", "cover_letter")
    assert answer_tokens(letter) == pytest.approx(
        sum(len(json.dumps(e.output.model_dump(mode="json"), ensure_ascii=False)) for e in letter.examples)
        / len(letter.examples) / 4)


def test_the_field_strategys_dry_run_prices_the_document_once_per_question(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before any run, the dry run prices a letter under the field strategy once per question it would be asked (the
    finders and conventions answer the rest), each with the letter: within 10% of what the server then bills (the
    whole-schema prompt, once, was a third of it)."""
    letters = {p.name: p.read_bytes() for p in sorted((ROOT / "inputs").glob("*.txt"))[:4]}
    write_docs(tmp_path / "in", letters)
    with serving() as server:
        config = make_config(tmp_path, server, strategy="fields")
        planned = plan(config)
        assert "once per question" in planned.calibration
        runner.run(config)
        billed = sum(r["prompt_tokens"] for r in server_log(server) if r["status"] == 200)
    assert planned.prompt_tokens == pytest.approx(billed, rel=0.1), (planned.prompt_tokens, billed)
    whole = max(d.request_tokens or 0 for d in planned.to_send)
    assert whole < planned.prompt_tokens / 5, "the context check looks at one question, not their sum"
    # Past the first documents the questions are extrapolated by characters, not walked again: still close
    # (measured: 8,490 against 7,995 billed extrapolating from two letters; from one, 10,346).
    monkeypatch.setattr(_Questions, "WALKED", 2)
    fresh = make_config(tmp_path, server, strategy="fields", output_dir=tmp_path / "fresh")
    extrapolated = plan(fresh)
    assert extrapolated.prompt_tokens == pytest.approx(billed, rel=0.15), (extrapolated.prompt_tokens, billed)
    assert max(d.request_tokens or 0 for d in extrapolated.to_send) == pytest.approx(whole, rel=0.25)
