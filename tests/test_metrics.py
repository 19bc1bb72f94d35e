"""Agreement and accuracy on hand-made cases with known answers, and `extractor eval` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from extractor.extraction import runner
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.schemas import load_schema
from extractor.testing.fakeserver import FakeOpenAI
from extractor.values.metrics import FieldScore, compared_kinds, majority, score, similarity

from .conftest import ROOT, make_config, settings, write_docs

COVER = load_schema(ROOT / "schemas", "cover_letter").model


def test_kinds_follow_the_schema() -> None:
    kinds = compared_kinds(COVER)
    assert kinds["applicant_name"] == "name" and kinds["phone"] == "phone" and kinds["email"] == "email"
    assert kinds["skills"] == "list" and kinds["years_experience"] == "number"
    assert kinds["available_from"] == "date" and kinds["salary.min"] == "number"
    assert kinds["salary.currency"] == "text" and "salary" not in kinds


@pytest.mark.parametrize(("kind", "a", "b", "expected"), [
    ("name", "Jana Nováková", "  jana  NOVÁKOVÁ. ", 1.0),
    ("name", "Jana Novak", "Jana Nováková", 0.0),
    ("phone", "+49 (151) 234-5678", "+49 151 2345678", 1.0),
    ("number", 85000, 86000.0, 1.0),  # within 2%
    ("number", 3, 4, 0.0),
    ("date", "2026-02-01", "2026-02-01T00:00:00", 1.0),
    ("list", ["Python", "SQL"], ["python", "sql", "Airflow"], 2 / 3),
    ("list", [], None, 1.0),
    ("text", None, "", 1.0),
    ("text", "remote", None, 0.0),
])
def test_similarity(kind: str, a: object, b: object, expected: float) -> None:
    assert similarity(kind, a, b) == pytest.approx(expected)


def test_majority_and_agreement() -> None:
    assert majority("text", ["senior", "Senior", "mid"]) == ("senior", pytest.approx(2 / 3))
    assert majority("number", [5.0, 5.05, 7.0, 5.0]) == (5.0, pytest.approx(3 / 4))
    value, agreement = majority("list", [["a", "b"], ["a", "b", "c"], ["a"]])
    assert value == ["a", "b"] and agreement == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    assert majority("text", ["x", "y"]) == ("x", 0.5)  # a tie goes to the first sample
    assert majority("text", [None, None, "x"]) == (None, pytest.approx(2 / 3))


def test_field_score_counts() -> None:
    s = FieldScore(field="seniority", kind="text")
    s.add("senior", "senior")  # tp
    s.add("mid", "senior")  # wrong value: fp and fn
    s.add(None, "junior")  # fn
    s.add("lead", None)  # fp
    s.add(None, None)  # tn
    assert (s.tp, s.fp, s.fn, s.tn, s.documents) == (1, 2, 2, 1, 5)
    assert s.accuracy == pytest.approx(2 / 5)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(1 / 3)
    lists = FieldScore(field="skills", kind="list")
    lists.add(["Python", "SQL"], ["python", "Go"])  # 1 hit, 1 extra, 1 missed: F1 0.5
    lists.add([], [])  # nothing to find, nothing found: 1.0
    assert (lists.tp, lists.fp, lists.fn) == (1, 1, 1)
    assert lists.accuracy == pytest.approx(0.75)
    assert lists.f1 == pytest.approx(0.5)


def test_score_only_counts_labeled_pairs() -> None:
    rows = [{"doc_id": "a", "applicant_name": "Ada", "salary": {"min": 1.0, "max": 2.0, "currency": "EUR",
                                                                  "period": "year"}},
            {"doc_id": "b", "applicant_name": "Bob", "salary": None}]
    labels = {"a": {"applicant_name": "ada", "salary": {"min": 1, "max": 3, "currency": "EUR", "period": "year"}},
              "b": {"applicant_name": "Robert"}}
    scores = {s.field: s for s in score(rows, labels, COVER)}
    assert set(scores) == {"applicant_name", "salary.min", "salary.max", "salary.currency", "salary.period"}
    assert scores["applicant_name"].accuracy == 0.5
    assert scores["salary.max"].accuracy == 0.0 and scores["salary.min"].accuracy == 1.0


@pytest.mark.integration
def test_eval_from_jsonl_and_csv_with_corrections_in_one_store(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    answer = json.dumps({"applicant_name": "Ada Lovelace", "skills": ["Python", "SQL"], "seniority": "senior"})
    write_docs(tmp_path / "in", {"a.txt": f"A [[answer:{answer}]]", "b.txt": "B", "c.txt": "C"})
    config = make_config(tmp_path, fake_server)
    runner.run(config)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps(r) for r in [
        {"doc_id": "a.txt", "applicant_name": "ada lovelace", "skills": ["python", "sql", "Go"], "seniority": "Senior",
         "email": None},
        {"doc_id": "b.txt", "applicant_name": "Bo Berg", "available_from": "2026-02-30"},
        {"doc_id": "zzz.txt", "applicant_name": "Nobody"},
    ]))
    eval_config = EvalConfig(settings=settings(tmp_path / "out"), labels_file=labels)
    report = evaluate(eval_config)
    scores = {s.field: s for s in report.scores}
    assert scores["applicant_name"].documents == 2 and scores["applicant_name"].accuracy == 0.5
    assert scores["seniority"].accuracy == 1.0  # the label was normalized by the schema's validator
    assert scores["skills"].accuracy == pytest.approx(0.8) and scores["email"].accuracy == 1.0
    assert report.scored_documents == 2 and report.labeled_documents == 3
    assert len(report.rejected) == 1 and "b.txt / available_from" in report.rejected[0]
    csv_labels = tmp_path / "more.csv"
    csv_labels.write_text("doc_id,applicant_name,skills,salary.currency\nc.txt,sample applicant_name,a; b,\n")
    again = evaluate(EvalConfig(settings=settings(tmp_path / "out"), labels_file=csv_labels))
    scores = {s.field: s for s in again.scores}
    assert scores["applicant_name"].documents == 3 and scores["applicant_name"].accuracy == pytest.approx(2 / 3)
    assert "salary.currency" not in scores, "an empty CSV cell is not a label"
    cli = subprocess.run([sys.executable, "-m", "extractor", "eval", "--output", str(tmp_path / "out"),
                          "--schemas", str(ROOT / "schemas")], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "applicant_name" in cli.stdout and "fields right / total" in cli.stdout


def test_the_best_variant_per_field_ties_included_unmeasured_never() -> None:
    from extractor.values.metrics import best_by_field

    # Equal scores are a tie; so are scores whose 95% intervals overlap: 90% and 80% of 10 documents.
    assert best_by_field({"name": {"a": (0.9, 20), "b": (0.9, 20), "c": (0.3, 20)},
                          "role": {"a": None, "b": (0.2, 5)}, "skills": {"a": None},
                          "email": {"a": (0.9, 10), "b": (0.8, 10)}}) == {
        "name": {"a", "b"}, "role": {"b"}, "email": {"a", "b"}}
    # A clear winner: its interval lies above every other's (95% against 50% of 200 values).
    assert best_by_field({"name": {"a": (0.95, 200), "b": (0.5, 200)}}) == {"name": {"a"}}


def test_wilson_interval() -> None:
    from extractor.values.metrics import wilson

    # Hand-checked: 8 of 10 right is 49.0-94.3% (Wilson, z = 1.96); 0 and 1 stay inside [0, 1].
    low, high = wilson(0.8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson(0.0, 10)[0] == 0.0 and wilson(1.0, 10)[1] == 1.0
    assert wilson(0.5, 0) == (0.0, 1.0), "nothing measured: anything is possible"
    narrow, wide = wilson(0.673, 960), wilson(0.673, 96)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
