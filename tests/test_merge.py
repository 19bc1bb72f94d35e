"""Merging the answers of a document's chunks into one record, by the stated rules."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from extractor.documents import Chunk
from extractor.extraction.merge import ChunkAnswer, merge


class Item(BaseModel):
    description: str | None = None
    amount: float | None = None


class Pay(BaseModel):
    amount: float | None = None
    currency: str | None = None


class Record(BaseModel):
    name: str
    email: str | None = None
    skills: Annotated[list[str], Field(max_length=3)] = []
    pay: Pay | None = None
    items: list[Item] = []


def _answers(texts: list[str], values: list[dict]) -> list[ChunkAnswer]:
    """Chunks of the texts joined by blank lines, each answered with its value."""
    out, start = [], 0
    for i, (text, value) in enumerate(zip(texts, values, strict=True)):
        out.append(ChunkAnswer(value, Chunk(i, start, start + len(text), text)))
        start += len(text) + 2
    return out


def test_a_scalar_takes_the_answer_its_chunk_shows_over_one_it_does_not() -> None:
    answers = _answers(["Dear team, I am applying.", "Jane Doe, jane@example.com"],
                       [{"name": "John Example", "email": None}, {"name": "Jane Doe", "email": "jane@example.com"}])
    merged = merge(Record, answers)
    assert merged.value["name"] == "Jane Doe" and merged.value["email"] == "jane@example.com"
    assert merged.conflicts == []


def test_exact_evidence_wins_over_normalized() -> None:
    answers = _answers(["contact JANE DOE today", "signed: Jane Doe"],
                       [{"name": "jane doe"}, {"name": "Jane Doe"}])
    assert merge(Record, answers).value["name"] == "Jane Doe"


def test_two_grounded_answers_that_disagree_are_a_conflict() -> None:
    answers = _answers(["write to jane@example.com", "or to jd@work.example.org"],
                       [{"name": "", "email": "jane@example.com"}, {"name": "", "email": "jd@work.example.org"}])
    merged = merge(Record, answers)
    assert merged.conflicts == ["email"]
    assert merged.value["email"] == "jane@example.com"  # equally good: the first


def test_the_same_value_found_in_two_chunks_is_no_conflict() -> None:
    answers = _answers(["Jane Doe wrote", "yours, jane doe"], [{"name": "Jane Doe"}, {"name": "jane doe"}])
    merged = merge(Record, answers)
    assert merged.conflicts == [] and merged.value["name"] == "Jane Doe"


def test_lists_are_the_union_deduplicated_after_normalization_in_order_of_first_occurrence() -> None:
    answers = _answers(["Python and SQL", "sql, Rust"], [{"name": "", "skills": ["Python", "SQL"]},
                                                         {"name": "", "skills": ["sql", "Rust"]}])
    assert merge(Record, answers).value["skills"] == ["Python", "SQL", "Rust"]


def test_past_the_bound_the_items_found_in_their_chunk_are_kept_first() -> None:
    answers = _answers(["Python, Go", "Rust and C"], [{"name": "", "skills": ["Python", "Cobol", "Go"]},
                                                      {"name": "", "skills": ["Rust"]}])
    assert merge(Record, answers).value["skills"] == ["Python", "Go", "Rust"]


def test_nested_objects_are_merged_field_by_field() -> None:
    answers = _answers(["I ask for 85,000 a year", "paid in EUR"],
                       [{"name": "", "pay": {"amount": 85000, "currency": None}},
                        {"name": "", "pay": {"amount": None, "currency": "EUR"}}])
    assert merge(Record, answers).value["pay"] == {"amount": 85000, "currency": "EUR"}


def test_lists_of_objects_are_concatenated_and_an_object_seen_twice_in_the_overlap_is_kept_once() -> None:
    text = "Consulting 1200.00\nTravel 300.00\nHosting 99.00"
    first, second = text[:33], text[11:]  # "Travel 300.00" is in both
    answers = [ChunkAnswer({"name": "", "items": [{"description": "Consulting", "amount": 1200.0},
                                                  {"description": "Travel", "amount": 300.0}]},
                           Chunk(0, 0, 33, first)),
               ChunkAnswer({"name": "", "items": [{"description": "Travel", "amount": 300.0},
                                                  {"description": "Hosting", "amount": 99.0}]},
                           Chunk(1, 11, len(text), second))]
    assert [i["description"] for i in merge(Record, answers).value["items"]] == ["Consulting", "Travel", "Hosting"]


def test_no_chunk_answering_a_field_leaves_it_empty() -> None:
    merged = merge(Record, _answers(["a", "b"], [{"name": "", "pay": None}, {"name": ""}]))
    assert merged.value["email"] is None and merged.value["pay"] is None and merged.value["skills"] == []
