"""The field-by-field strategy (extractor.extraction.fields) and its deterministic finders (extractor.values.detect),
without a real model: a scripted `ask`, and the fake OpenAI-compatible server through the whole run."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor.config import RunConfig
from extractor.documents import discover, load_document
from extractor.extraction import runner
from extractor.extraction.fields import example_values, extract_fields
from extractor.extraction.prompts import wrap_document
from extractor.extraction.retrieval import Shot
from extractor.llm.transport import CallMeter
from extractor.schemas import load_schema
from extractor.values import detect

from .conftest import ROOT, make_config, server_log, write_docs

SCHEMA = load_schema(ROOT / "schemas", "cover_letter")

LETTER = """Lyon, le 3 mars 2026

Madame, Monsieur,

Je m'appelle Camille Durand et je postule au poste de Développeuse Full-Stack chez Atelier Numérique.
Je travaille avec Vue.js et PostgreSQL depuis quatre ans. Je souhaite travailler en mode hybride.
Mes prétentions salariales se situent entre 45 000 et 50 000 euros bruts annuels. Mon préavis est de
deux mois ; je pourrais commencer le 4 mai 2026.

Camille Durand
camille.durand@laposte.net
06 12 34 56 78
"""


# The letter without what the letter conventions read (a dateline's place, "chez" an employer, a listing sentence):
# there location, company and skills are the model's questions.
BARE = (LETTER.replace("Lyon, le 3 mars 2026\n\n", "").replace(" chez Atelier Numérique", "")
        .replace("avec Vue.js et PostgreSQL", "avec Vue.js"))


def scripted(answers: dict[str, Any], log: list[dict[str, Any]] | None = None):  # type: ignore[no-untyped-def]
    """An `ask` that answers each field's question from `answers` (None otherwise)."""

    async def ask(messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int, meter: CallMeter) -> str:
        name = next(iter(schema["properties"]))
        if log is not None:
            log.append({"messages": messages, "schema": schema, "max_tokens": max_tokens})
        meter.prompt_tokens += 10
        return json.dumps({name: answers.get(name)})

    return ask


def run(text: str, answers: dict[str, Any], log: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value = asyncio.run(extract_fields(scripted(answers, log), SCHEMA, text, CallMeter()))
    return value.model_dump(mode="json")


# -- the finders --------------------------------------------------------------------------------------------


def test_finders_read_typed_values_as_written() -> None:
    assert [c.value for c in detect.emails(LETTER)] == ["camille.durand@laposte.net"]
    assert [c.value for c in detect.phones(LETTER)] == ["06 12 34 56 78"]
    assert [c.value for c in detect.phones("call +1 (416) 555-0142 or 416-555-0142; postcode 02-715")] == [
        "+1 (416) 555-0142"]  # one national number, written twice; a postcode is not a phone
    assert detect.language(LETTER) == "fr"
    assert [c.value for c in detect.dates(LETTER, "fr")] == [dt.date(2026, 3, 3), dt.date(2026, 5, 4)]
    assert [c.value for c in detect.durations(LETTER, "day")] == [1460, 60]
    assert next(c.value for c in detect.durations("four and a half years; a 2-week notice", "year")) == 4.5
    money = detect.money(LETTER)
    assert [c.value for c in money] == [{"min": 45000.0, "max": 50000.0, "currency": "EUR", "period": "year"}]
    assert detect.money("my rate is $85 per hour")[0].value["period"] == "hour"
    assert detect.money("€190k–220k a year")[0].value == {"min": 190000.0, "max": 220000.0, "currency": "EUR",
                                                          "period": "year"}
    assert detect.money("95 000 kr per month")[0].value["min"] == 95000.0  # "kr" is not "k"
    assert detect.money("INR 32,00,000 per annum")[0].value["min"] == 3200000.0
    assert [c.text for c in detect.urls("see https://example.org/me, or www.example.com.")] == [
        "https://example.org/me", "www.example.com"]


# -- the strategy ---------------------------------------------------------------------------------------------


def test_document_first_and_byte_identical_across_questions() -> None:
    log: list[dict[str, Any]] = []
    run(LETTER, {"applicant_name": "Camille Durand"}, log)
    assert len(log) >= 4
    prefixes = {entry["messages"][1]["content"].split("\n\nQuestion: ")[0] for entry in log}
    assert len(prefixes) == 1 and LETTER.strip() in prefixes.pop()
    assert {entry["messages"][0]["content"] for entry in log} == {log[0]["messages"][0]["content"]}
    for entry in log:  # every answer is constrained by a schema built from its field
        assert entry["schema"]["type"] == "object" and len(entry["schema"]["properties"]) == 1
        assert entry["max_tokens"] <= 100


def test_typed_values_come_from_the_document_and_answers_are_snapped_to_it() -> None:
    result = run(LETTER, {"applicant_name": "camille durand", "company": "Atelier Numerique",
                          "desired_role": "Développeuse Full-Stack", "location": "Lyon",
                          "skills": ["Vue.js", "postgresql", "Kubernetes"], "notice_period_days": "deux mois"})
    assert result["applicant_name"] == "Camille Durand"  # the document's own spelling
    assert result["company"] == "Atelier Numérique"
    assert result["email"] == "camille.durand@laposte.net" and result["phone"] == "06 12 34 56 78"
    assert result["salary"] == {"min": 45000.0, "max": 50000.0, "currency": "EUR", "period": "year"}
    assert result["remote_preference"] == "hybrid"  # the one option the letter mentions
    assert result["notice_period_days"] == 60  # "deux mois", chosen among the durations the letter names
    assert result["language"] == "fr"
    assert result["skills"] == ["Vue.js", "PostgreSQL"]  # Kubernetes is not in the letter


def test_invented_answers_become_null() -> None:
    result = run(LETTER, {"applicant_name": "Maria Schmidt", "company": "Globex Corporation",
                          "desired_role": "Astronaut", "location": "Berlin, Germany", "skills": ["COBOL"]})
    assert result["applicant_name"] == ""  # required: its empty value, not a made-up name
    assert result["desired_role"] is None
    # Where the letter's conventions name them, the letter's own values, never the model's inventions: the place
    # of its dateline, the employer after "chez", the things its sentence lists.
    assert result["location"] == "Lyon, France" and result["company"] == "Atelier Numérique"
    assert result["skills"] == ["Vue.js", "PostgreSQL"]
    plain = "Hello,\nI would like a job. I like working with people.\nThanks, Jo"
    result = run(plain, {"company": "Globex Corporation", "location": "Berlin, Germany", "skills": ["COBOL"]})
    assert result["company"] is None and result["location"] is None and result["skills"] == []


def test_a_choice_among_several_candidates_is_the_models_within_the_candidates() -> None:
    text = LETTER.replace("camille.durand@laposte.net", "camille.durand@laposte.net (or rh@atelier.fr)")
    log: list[dict[str, Any]] = []
    assert run(text, {"email": "camille.durand@laposte.net"}, log)["email"] == "camille.durand@laposte.net"
    asked = next(e for e in log if "email" in e["schema"]["properties"])
    assert asked["schema"]["properties"]["email"] == {"enum": ["camille.durand@laposte.net", "rh@atelier.fr", None]}
    assert run(text, {"email": "jana.novakova@posteo.de"})["email"] is None


def test_an_answer_that_fails_validation_becomes_null_not_a_failed_document() -> None:
    text = "Hello, I am Jo Bloggs. Reach me at jo@@example..com. I want to start on 31 February 2027."
    result = run(text, {"applicant_name": "Jo Bloggs", "years_experience": 999})
    assert result["applicant_name"] == "Jo Bloggs"
    assert result["email"] is None and result["years_experience"] is None


def test_no_value_from_the_schemas_examples_ever_appears_in_a_result() -> None:
    """A model that always answers with the few-shot examples' values ("Tom Okafor", "Pixelwerk", ...) gets
    none of them into the results of the sample letters, which never mention them."""
    forbidden = example_values(SCHEMA)
    assert "tom okafor" in forbidden and "senior" not in forbidden  # enum options are not the examples'
    examples = [e.output.model_dump(mode="json") for e in SCHEMA.examples]
    # every question answered with the first example's value, or the second's where the first has none
    answers = {k: v for e in reversed(examples) for k, v in e.items() if v not in (None, [])}
    from extractor.values.evidence import fold

    for src in discover(ROOT / "inputs"):
        text = load_document(src, max_chars=200_000).text
        result = run(text, answers)

        def strings(value: Any) -> list[str]:
            if isinstance(value, dict):
                return [s for v in value.values() for s in strings(v)]
            if isinstance(value, list):
                return [s for v in value for s in strings(v)]
            return [value] if isinstance(value, str) else []

        leaked = [s for s in strings(result) if fold(s) in forbidden and fold(s) not in fold(text)]
        assert leaked == [], (src.doc_id, leaked)
        assert result["applicant_name"] not in ("Tom Okafor", "Jana Nováková")


# -- through the run --------------------------------------------------------------------------------------------


def test_strategy_setting_and_cache_key() -> None:
    embedded = RunConfig(backend="embedded")
    remote = RunConfig(base_url="http://localhost:1/v1")
    assert embedded.resolved_strategy == "fields" and remote.resolved_strategy == "whole"
    assert RunConfig(base_url="http://x/v1", strategy="fields").resolved_strategy == "fields"
    assert RunConfig(backend="embedded", strategy="whole").resolved_strategy == "whole"
    with pytest.raises(Exception, match="--strategy"):
        RunConfig(strategy="piecewise")
    keys = {RunConfig(base_url="http://x/v1", strategy=s).cache_key("abc", "v1") for s in ("auto", "whole", "fields")}
    assert len(keys) == 2  # auto resolves to whole here: the same key; fields has its own
    # whole-schema keys did not change with this setting's arrival
    assert RunConfig(base_url="http://x/v1").cache_key("abc", "v1") == RunConfig(
        base_url="http://x/v1", strategy="whole").cache_key("abc", "v1")


def test_run_with_fields_strategy_against_a_server(tmp_path: Path, fake_server: Any) -> None:
    write_docs(tmp_path / "in", {"camille.txt": LETTER, "bob.txt": "Hi, Bob Stone here: bob@stone.io. Thanks!"})
    fake_server.answers = {"Camille": {"applicant_name": "Camille Durand", "company": "Tom Okafor Ltd"},
                           "Bob Stone": {"applicant_name": "Bob Stone"}}
    config = make_config(tmp_path, fake_server, strategy="fields")
    summary = runner.run(config)
    assert summary.ok == 2 and summary.failed == 0
    frame = pl.read_parquet(config.layout.results).sort("doc_id")
    rows = {r["doc_id"]: r for r in frame.to_dicts()}
    assert rows["camille.txt"]["applicant_name"] == "Camille Durand"
    assert rows["camille.txt"]["company"] == "Atelier Numérique"  # the letter's "chez ...", not the model's answer
    assert rows["camille.txt"]["salary"]["currency"] == "EUR"
    assert rows["bob.txt"]["applicant_name"] == "Bob Stone" and rows["bob.txt"]["email"] == "bob@stone.io"
    log = [r for r in server_log(fake_server) if r.get("status") == 200 and "prompt_tokens" in r]
    # every request was metered into its document: tokens reconcile with what the server reported
    assert summary.requests == len(log) > 2
    assert summary.prompt_tokens == frame["prompt_tokens"].sum() == sum(r["prompt_tokens"] for r in log)
    assert frame["completion_tokens"].sum() == sum(r["completion_tokens"] for r in log)
    # a second run reuses the results; the whole-schema strategy has its own cache key
    assert runner.run(config).cached == 2
    assert runner.run(make_config(tmp_path, fake_server, strategy="whole")).cached == 0


# -- retrieved examples as per-field demonstrations -----------------------------------------------------------

NEIGHBOUR = """Grenoble, le 2 février 2026

Madame, Monsieur,

Je m'appelle Léa Martin et j'habite à Grenoble, France depuis dix ans. Je postule au poste de Data Engineer
chez Alpes Logiciel. Je travaille avec Python, Airflow et dbt. Je souhaite travailler en télétravail.
Mon préavis est de trois mois ; je pourrais commencer le 1er juin 2026.

Léa Martin
lea.martin@orange.fr
"""
NEIGHBOUR_LABELS = {"applicant_name": "Léa Martin", "location": "Grenoble, France", "desired_role": "Data Engineer",
                    "company": "Alpes Logiciel", "skills": ["Python", "Airflow", "dbt"], "seniority": "mid",
                    "years_experience": 12, "notice_period_days": 90, "email": "lea.martin@orange.fr", "language": "fr"}


def shot(text: str = NEIGHBOUR, output: dict[str, Any] | None = None, doc_id: str = "lea.txt") -> Shot:
    return Shot(doc_id, doc_id, text, NEIGHBOUR_LABELS if output is None else output)


def run_with(text: str, answers: dict[str, Any], shots: list[Shot], log: list[dict[str, Any]]) -> dict[str, Any]:
    value = asyncio.run(extract_fields(scripted(answers, log), SCHEMA, text, CallMeter(), shots))
    return value.model_dump(mode="json")


def asked(log: list[dict[str, Any]], field: str) -> str:
    return next(e["messages"][1]["content"] for e in log if field in e["schema"]["properties"])


def test_without_retrieved_examples_the_prompts_are_byte_for_byte_unchanged() -> None:
    """The hash of every message the sample letter's questions send, computed with the code before retrieved
    examples reached the field strategy (commit eb04e0b): a change here changes every cached fields prompt.
    Update the hash only for a deliberate change of the questions."""
    import hashlib

    text = LETTER.replace("camille.durand@laposte.net", "camille.durand@laposte.net (or rh@atelier.fr)")
    for shots in ([], [shot(output={"phone": "06 00 00 00 00"})]):  # a label with nothing to show: no demo
        log: list[dict[str, Any]] = []
        run_with(LETTER, {"applicant_name": "Camille Durand"}, shots, log)
        run_with(text, {}, shots, log)
        digest = hashlib.sha256(json.dumps(log, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        # 13 questions: the letter's conventions (extractor.values.places, .letters) answer location, company and
        # skills without asking; the 13 others are byte for byte the prompts of before (19 with those 6). The
        # messages are unchanged since eb04e0b; the choices' max_tokens rose in issue 20 (`_choice_tokens`: the
        # old budget cut a digit-heavy choice such as "03.12.2026" short), which only lengthens a cut answer.
        assert (len(log), digest) == (13, "c2c9574b1b7f766e2dbdabe943e746cc1861c0f756bcc2e9c572ef93a6930f36"), shots


def test_retrieved_examples_come_after_the_document_and_before_each_question() -> None:
    log: list[dict[str, Any]] = []
    run_with(BARE, {"applicant_name": "Camille Durand"}, [shot()], log)
    document = wrap_document(BARE) + "\n\n"
    for entry in log:  # the document-first prefix is byte-identical across the questions: llama.cpp reuses it
        assert entry["messages"][1]["content"].startswith(document)
        assert entry["messages"][0]["content"] == log[0]["messages"][0]["content"]
    location = asked(log, "location").removeprefix(document)
    demo, question = location.split("\n\n")
    assert demo.startswith('Example from a similar document: "...') and "Grenoble, France" in demo
    assert demo.endswith('-> {"location": "Grenoble, France"}') and len(demo) < 260
    assert question.startswith("Question: location")
    assert '{"skills": ["Python", "Airflow", "dbt"]}' in asked(log, "skills")
    assert '{"company": "Alpes Logiciel"}' in asked(log, "company")
    # an enum choice is a judgment: its label is shown even where its words are not in the example's text
    assert 'Example from a similar document: {"seniority": "mid"}' in asked(log, "seniority")
    # a number not written in the example (12 years, derived) is not shown; "trois mois" is, as written
    for entry in log:
        assert '"years_experience": 12' not in entry["messages"][1]["content"]
    # deterministic fields (one e-mail, one phone, the language) are not asked at all
    assert not [e for e in log if {"email", "phone", "language"} & set(e["schema"]["properties"])]


def test_a_choice_among_candidates_is_shown_as_the_example_wrote_it() -> None:
    text = LETTER.replace("camille.durand@laposte.net", "camille.durand@laposte.net (or rh@atelier.fr)")
    neighbour = NEIGHBOUR.replace("lea.martin@orange.fr", "lea.martin@orange.fr, RH: rh@alpes.fr")
    log: list[dict[str, Any]] = []
    run_with(text, {}, [shot(neighbour)], log)
    assert '-> {"email": "lea.martin@orange.fr"}' in asked(log, "email")
    assert '-> {"notice_period_days": "trois mois"}' in asked(log, "notice_period_days")  # 90 days, as written


def test_a_retrieved_examples_value_never_reaches_the_result() -> None:
    """A model that answers every question with the neighbour's labels gets none of them into a letter that
    does not contain them: grounding to THIS document refuses them."""
    log: list[dict[str, Any]] = []
    answers = {k: v for k, v in NEIGHBOUR_LABELS.items() if k not in ("email", "language")}
    result = run_with(BARE, answers, [shot()], log)
    assert result["applicant_name"] == "" and result["location"] is None and result["company"] is None
    assert result["desired_role"] is None and result["skills"] == []
    assert result["years_experience"] is None
    assert any("Léa Martin" in e["messages"][1]["content"] for e in log), "the demonstrations were shown"


def test_an_answer_copied_from_a_demonstration_is_asked_again_without_them() -> None:
    """A small model often answers with the last demonstration's value: grounding refuses it, and the question
    is asked once more without demonstrations."""
    log: list[dict[str, Any]] = []

    async def copycat(messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int,
                      meter: CallMeter) -> str:
        name = next(iter(schema["properties"]))
        log.append({"name": name, "demos": "Example from a similar document" in messages[1]["content"]})
        if log[-1]["demos"]:
            return json.dumps({name: NEIGHBOUR_LABELS.get(name)})
        return json.dumps({name: {"applicant_name": "Camille Durand", "skills": ["Vue.js"]}.get(name)})

    result = asyncio.run(extract_fields(copycat, SCHEMA, BARE, CallMeter(), [shot()])).model_dump(mode="json")
    assert result["applicant_name"] == "Camille Durand" and result["skills"] == ["Vue.js"]
    assert [e["demos"] for e in log if e["name"] == "applicant_name"] == [True, False]
    assert [e["demos"] for e in log if e["name"] == "skills"] == [True, False]
    assert result["company"] is None and result["location"] is None  # asked again, answered null: no leak
    assert [e["demos"] for e in log if e["name"] == "seniority"] == [True]  # a choice: nothing to copy
