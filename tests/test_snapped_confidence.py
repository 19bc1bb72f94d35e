"""Confidence for snapped answers (issue 28 item 3): the field strategy snaps every answer to a span of the
document, so its evidence is "found" whatever the model said. A server that answers a wrong span of the letter
for 30% of the field questions (another field's value where the letter has one, else two of its words) must
still be told apart from the right answers by the label-free confidence, and its documents flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from extractor.extraction import runner
from extractor.quality.calibration import auroc, calibrate
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.schemas import load_schema
from extractor.testing.fakeserver import oracle_answers
from extractor.values.evidence import Grounder, Leaf, answer_probabilities, confidence, cued, ground

from .conftest import ROOT, make_config, server_log, serving, settings

LABELS_FILE = ROOT / "bench" / "labels" / "cover_letters.jsonl"
LABELS = [json.loads(line) for line in LABELS_FILE.read_text().splitlines()]
SCHEMA = load_schema(ROOT / "schemas", "cover_letter")


def _run(tmp_path: Path, wrong_spans: float, **flags: Any) -> tuple[Any, pl.DataFrame, pl.DataFrame, set[str]]:
    """inputs/ under the field strategy, the server answering from the labels (`wrong_spans` of its string
    answers a wrong span); eval's report, evidence, results, and the string fields the server was asked."""
    answers, _ = oracle_answers(LABELS)
    with serving(answers=answers, wrong_spans=wrong_spans, seed=5) as server:
        config = make_config(tmp_path, server, input_dir=ROOT / "inputs", strategy="fields", **flags)
        assert runner.run(config).ok == len(LABELS)
        log = server_log(server)
        assert {r["logprobs"] for r in log} == {bool(flags.get("logprobs"))}  # asked for exactly when set
        asked = {name for r in log for name in [_asked_field(r["messages"])] if name}
    report = evaluate(EvalConfig(settings=settings(tmp_path / "out", strategy="fields"), labels_file=LABELS_FILE))
    strings = {name for name in asked if any(isinstance(row.get(name), str) for row in LABELS)}
    return report, pl.read_parquet(config.layout.evidence), pl.read_parquet(config.layout.results), strings


def _asked_field(messages: list[dict[str, str]]) -> str | None:
    """The field a free question asks to copy (not a choice among the text's candidates)."""
    question = messages[-1]["content"].rsplit("Question: ", 1)[-1]
    if "Copy it from the document" not in question:
        return None
    name = question.split("?")[0].split(" (")[0].replace(" ", "_")
    return name if name in LABELS[0] else None


def test_a_wrong_span_for_30_percent_of_field_questions_is_told_apart_and_flags_its_documents(
        tmp_path: Path) -> None:
    report, found, results, asked = _run(tmp_path, wrong_spans=0.3)
    assert {"applicant_name", "desired_role"} <= asked
    # The values the server's answers gave (the fields asked a question): their confidence separates.
    rows = found.filter(pl.col("field").is_in(sorted(asked))).to_dicts()
    mine = calibrate(rows, {r["doc_id"]: r for r in LABELS}, SCHEMA.model)
    assert mine.auroc is not None and mine.values - mine.right >= 10, mine.as_dict()
    assert mine.auroc >= 0.7, mine.as_dict()
    # Over every value (the finders' and the conventions' own errors included: skills items such as "MSc" that are
    # words of prose, years computed from a duration no cue word stands near), eval's AUROC reaches 0.7 (0.77
    # measured, 0.63 before the conventions' own signal).
    assert report.calibration is not None and report.calibration.auroc is not None
    assert report.calibration.auroc >= 0.7, report.calibration.as_dict()
    # The documents holding a wrong answer: flagged for review, and clean ones far less often.
    gold = {row["doc_id"]: row for row in LABELS}
    wrong_docs = {r["doc_id"] for r in rows if r["value"].casefold() != str(gold[r["doc_id"]][r["field"]]).casefold()}
    assert len(wrong_docs) >= 8, wrong_docs
    review = dict(zip(results["doc_id"], results["needs_review"], strict=True))
    flagged = sum(review[d] for d in wrong_docs) / len(wrong_docs)
    assert flagged >= 0.75, [(r["doc_id"], r["field"], r["value"], r["confidence"], review[r["doc_id"]]) for r in rows
                             if r["value"].casefold() != str(gold[r["doc_id"]][r["field"]]).casefold()]
    clean = [d for d in review if d not in wrong_docs]
    assert sum(review[d] for d in clean) <= len(clean) // 4


def test_a_truthful_server_leaves_the_documents_unflagged(tmp_path: Path) -> None:
    _, _, results, _ = _run(tmp_path, wrong_spans=0.0)
    assert results["needs_review"].sum() == 0, results.filter(pl.col("needs_review")).select("doc_id").to_dicts()


def test_cue_words_and_a_value_given_to_two_fields() -> None:
    text = ("Dear Ms Hill,\nI apply for the role of Data Engineer at Acme. " + "I have built pipelines. " * 4
            + "\nSincerely, Bob Stone")
    start = text.index("Data Engineer")
    assert cued(text, start, start + len("Data Engineer"), ("role",))
    assert not cued(text, text.index("Bob"), text.index("Bob") + 9, ("role",))
    assert confidence("exact", cue=False) < confidence("exact") and confidence("exact", shared=True) < 0.5
    assert confidence("not_found", cue=False) == confidence("not_found")
    model = SCHEMA.model
    row = {"applicant_name": "Bob Stone", "company": "Bob Stone", "desired_role": "Data Engineer"}
    # Both the model's answers: both suspect. Only the company asked (the name found otherwise): the company.
    both = {e.field: e.confidence for e in ground(model, row, text, judged={"applicant_name", "company"})}
    assert both["applicant_name"] < 0.5 and both["company"] < 0.5
    one = {e.field: e.confidence for e in ground(model, row, text, judged={"company", "desired_role"})}
    assert one["company"] < 0.5 and one["applicant_name"] >= 0.9
    assert one["desired_role"] == Grounder(text).ground(Leaf("desired_role", "Data Engineer", "text")).confidence
    # Without `asked` (the whole-schema strategy) the cue words do not judge: nothing was snapped.
    whole = {e.field: e.confidence for e in ground(model, {"desired_role": "Acme"}, text)}
    assert whole["desired_role"] >= 0.9
    assert auroc([(0.9, True), (0.4, False)]) == 1.0


def test_token_logprobs_asked_for_are_recorded_with_the_evidence_and_lower_a_wrong_spans_confidence(
        tmp_path: Path) -> None:
    """--logprobs: every field question asks for the answer's token log probabilities; the server's (low for its
    wrong spans, overlapping with the right answers' range) are the model's probability of each value it gave,
    recorded in evidence.parquet and multiplied into its confidence."""
    _, plain, _, asked = _run(tmp_path / "plain", wrong_spans=0.3)
    report, found, results, _ = _run(tmp_path / "logprobs", wrong_spans=0.3, logprobs=True)
    gold = {row["doc_id"]: row for row in LABELS}
    assert plain["probability"].null_count() == plain.height  # not asked for: none recorded
    rows = found.filter(pl.col("field").is_in(sorted(asked))).to_dicts()
    assert rows and all(r["probability"] is not None for r in rows)
    wrong = [r for r in rows if r["value"].casefold() != str(gold[r["doc_id"]][r["field"]]).casefold()]
    right = [r for r in rows if r not in wrong]
    assert len(wrong) >= 10 and max(r["probability"] for r in wrong) < min(0.6, max(r["probability"] for r in right))
    # the same run without them: its wrong spans are trusted less with the model's probability than without it
    before = {(r["doc_id"], r["field"]): r["confidence"] for r in plain.to_dicts()}
    assert sum(r["confidence"] for r in wrong) < sum(before[(r["doc_id"], r["field"])] for r in wrong)
    mine = calibrate(rows, gold, SCHEMA.model)
    without = calibrate(plain.filter(pl.col("field").is_in(sorted(asked))).to_dicts(), gold, SCHEMA.model)
    assert mine.auroc is not None and without.auroc is not None and mine.auroc > without.auroc, (mine.auroc,
                                                                                                 without.auroc)
    review = dict(zip(results["doc_id"], results["needs_review"], strict=True))
    wrong_docs = {r["doc_id"] for r in wrong}
    assert sum(review[d] for d in wrong_docs) >= 0.75 * len(wrong_docs)
    clean = [d for d in review if d not in wrong_docs]
    assert sum(review[d] for d in clean) <= len(clean) // 4  # a right answer the model was unsure of is no flag
    assert report.calibration is not None and not report.calibration.uninformative


def test_answer_probabilities_are_the_geometric_mean_of_the_tokens_that_wrote_each_value() -> None:
    import math

    reply = '{"skills": ["Go", "Rust"], "n": 12}'
    tokens = [('{"', 0.0), ('skills', -0.1), ('": ["', 0.0), ('G', math.log(0.5)), ('o', math.log(0.5)),
              ('", "', 0.0), ('Rust', math.log(0.9)), ('"], "n": ', 0.0), ('12', math.log(0.8)), ('}', 0.0)]
    assert answer_probabilities(reply, tokens) == [("Go", 0.5), ("Rust", 0.9), (12.0, 0.8)]
    assert answer_probabilities(reply, tokens[:-1]) == []  # tokens that do not spell the reply cannot be placed
    assert answer_probabilities('{"company": null}', [('{"company": null}', -2.0)]) == []


def test_a_duration_no_cue_word_stands_near_is_doubted_and_judged_as_uncued() -> None:
    """A finder's duration is taken even where none of its field's cue words stands near it ("six months" of a
    notice period as years of experience): such a value is doubted, and its confidence is that of a span without
    its cue words; one the letter gives beside its cue words is not."""
    import asyncio

    from extractor.extraction.fields import answer_fields
    from extractor.llm.transport import CallMeter
    from extractor.values.evidence import Signals

    async def ask(messages: list[dict[str, str]], answer: dict[str, Any], max_tokens: int, meter: Any) -> str:
        return "null"

    def doubted(text: str) -> tuple[Any, bool, float]:
        signals = Signals()
        value, judged = asyncio.run(answer_fields(ask, SCHEMA, text, CallMeter(), signals=signals))
        row = value.model_dump(mode="json")
        found = {e.field: e for e in ground(SCHEMA.model, row, text, judged=judged, signals=signals)}
        return row["years_experience"], signals.doubted("years_experience", row["years_experience"]), \
            found["years_experience"].confidence

    far = "Dear team,\nI can start after six months.\n" + "I like building reliable systems. " * 6 + "\nBest, Jo Bloggs"
    near = "Dear team,\nI bring eight years of professional experience in backend work.\nBest, Jo Bloggs"
    years, doubt, trust = doubted(far)
    assert years == 0.5 and doubt and trust == confidence("derived", cue=False) < confidence("derived")
    years, doubt, trust = doubted(near)
    assert years == 8 and not doubt and trust == confidence("derived")
