"""Reading gold labels: partial nested labels, nulls, malformed files, and the language field's codes."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from extractor.errors import ConfigError
from extractor.quality.evaluation import EvalConfig, evaluate, read_labels_file
from extractor.schemas import load_schema, load_schema_file

from .conftest import ROOT, settings

COVER = load_schema(ROOT / "schemas", "cover_letter")


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# 1. A partly labelled nested field: the sub-keys the label leaves out are not labelled.

def test_partial_nested_label_keeps_only_the_given_sub_keys(tmp_path: Path) -> None:
    labels, rejected = read_labels_file(_jsonl(tmp_path / "l.jsonl", [
        {"doc_id": "a.txt", "salary": {"min": "85000"}},
        {"doc_id": "b.txt", "salary": {"max": 90000, "min": 95000, "currency": "€", "period": None}},
    ]), COVER)
    assert rejected == []
    assert labels["a.txt"]["salary"] == {"min": 85000.0}, "validated, but max/currency/period stay unlabelled"
    # the schema's validators still apply (bounds swapped, currency normalized) and an explicit null stays
    assert labels["b.txt"]["salary"] == {"min": 90000.0, "max": 95000.0, "currency": "EUR", "period": None}
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("doc_id,salary.min,salary.currency\nc.txt,85000,\n", encoding="utf-8")
    labels, _ = read_labels_file(csv_file, COVER)
    assert labels["c.txt"]["salary"] == {"min": 85000.0}


def test_partial_nested_label_scores_only_the_given_sub_keys(tmp_path: Path) -> None:
    schema_dir = tmp_path / "out" / "cover_letter"
    schema_dir.mkdir(parents=True)
    pl.DataFrame([{"doc_id": "a.txt", "model": "m", "applicant_name": "Ada",
                   "salary": {"min": 85000.0, "max": 95000.0, "currency": "EUR", "period": "year"}}]
                 ).write_parquet(schema_dir / "results.parquet")
    labels = _jsonl(tmp_path / "l.jsonl", [{"doc_id": "a.txt", "salary": {"min": 85000}}])
    report = evaluate(EvalConfig(settings=settings(tmp_path / "out"), labels_file=labels))
    scores = {s.field: s for s in report.scores}
    assert set(scores) == {"salary.min"}
    assert scores["salary.min"].accuracy == 1.0 and report.fields_right == (1.0, 1)


def test_partial_nested_correction_keeps_the_extracted_rest(tmp_path: Path) -> None:
    from extractor.layout import Layout
    from extractor.store import LABELS_FILE, Labels
    from extractor.store.labels import corrected_results

    schema_dir = tmp_path / "out" / "cover_letter"
    schema_dir.mkdir(parents=True)
    pl.DataFrame([{"doc_id": "a.txt", "status": "ok", "applicant_name": "Ada",
                   "salary": {"min": 80000.0, "max": 95000.0, "currency": "EUR", "period": "year"}}]
                 ).write_parquet(schema_dir / "results.parquet")
    store = Labels(schema_dir / "journal.sqlite3")
    store.add("a.txt", "salary", {"min": 85000.0}, source="l.jsonl", content_sha256=None, kind=LABELS_FILE)
    store.close()
    schema = load_schema(ROOT / "schemas", "cover_letter")
    row = corrected_results(schema, Layout(schema_dir), labels_files=True).to_dicts()[0]
    assert row["salary"] == {"min": 85000.0, "max": 95000.0, "currency": "EUR", "period": "year"}
    # a labels file's value, not a person's correction (`corrected` used to name every label's field)
    assert row["corrected"] is None and row["from_labels"] == "salary"
    shown = corrected_results(schema, Layout(schema_dir)).to_dicts()[0]
    assert shown["salary"]["min"] == 80000.0, "the sheet keeps what the model said: a labels file only measures it"
    assert shown["from_labels"] is None


# 2. The language field takes ISO 639-1 codes, regional tags, three-letter codes and names (more: test_schemas_lang).

@pytest.mark.parametrize(("given", "expected"), [
    ("en", "en"), (" DE ", "de"), ("spa", "es"), ("swe", "sv"), ("pol", "pl"), ("deu", "de"), ("ger", "de"),
    ("fre", "fr"), ("zho", "zh"), ("en-US", "en"), ("en_GB", "en"), ("pt-BR", "pt"), ("eng-GB", "en"),
    ("English", "en"), ("german", "de"), ("french", "fr"), ("spanish", "es"), ("italian", "it"),
    ("portuguese", "pt"), ("dutch", "nl"), ("polish", "pl"), ("swedish", "sv"), ("japanese", "ja"),
    ("chinese", "zh"), ("arabic", "ar"), ("hindi", "hi"), ("russian", "ru"), ("turkish", "tr"),
])
def test_language_codes_are_normalized(given: str, expected: str) -> None:
    letter = COVER.model.model_validate({"applicant_name": "Ada", "language": given})
    assert letter.language == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize("given", ["xyz", "klingon", "", "e", "-en", "e1", "xx"])
def test_unknown_languages_are_rejected(given: str) -> None:
    with pytest.raises(ValidationError, match="language"):
        COVER.model.model_validate({"applicant_name": "Ada", "language": given})


# 3. A malformed labels file is a ConfigError naming the file and line, not a traceback.

def test_csv_row_with_more_cells_than_the_header(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("doc_id,applicant_name\na.txt,Ada\nb.txt,Bob,extra\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels\.csv.*line 3"):
        read_labels_file(path, COVER)


def test_csv_row_with_only_empty_extra_cells_is_read(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("doc_id,applicant_name\na.txt,Ada,,\n", encoding="utf-8")
    assert read_labels_file(path, COVER) == ({"a.txt": {"applicant_name": "Ada"}}, [])


@pytest.mark.parametrize("bad", ['{"doc_id": "b.txt", "applicant_name": }', '["b.txt", "Bob"]'])
def test_malformed_jsonl_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(f'{{"doc_id": "a.txt", "applicant_name": "Ada"}}\n\n{bad}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels\.jsonl.*line 3"):
        read_labels_file(path, COVER)


# 4. A null label is validated like any other value.

def test_null_for_a_field_that_cannot_be_null_is_rejected(tmp_path: Path) -> None:
    labels, rejected = read_labels_file(_jsonl(tmp_path / "l.jsonl", [
        {"doc_id": "a.txt", "applicant_name": None, "language": None, "email": None, "salary": None,
         "skills": None},
    ]), COVER)
    assert labels == {"a.txt": {"email": None, "salary": None, "skills": []}}, "the schema turns null skills into []"
    assert sorted(rejected) == [
        "a.txt / applicant_name: Input should be a valid string (got None)",
        "a.txt / language: Input should be a valid string (got None)",
    ]


def test_null_for_a_list_field_without_a_null_validator_is_rejected(tmp_path: Path) -> None:
    schema_file = tmp_path / "tagged.py"
    schema_file.write_text(
        "from pydantic import BaseModel, Field\n\n"
        "class Tagged(BaseModel):\n"
        "    tags: list[str] = Field(default_factory=list)\n\n"
        "MODEL = Tagged\nINSTRUCTIONS = 'Tag it.'\n", encoding="utf-8")
    labels, rejected = read_labels_file(_jsonl(tmp_path / "l.jsonl", [{"doc_id": "a.txt", "tags": None}]),
                                        load_schema_file(schema_file))
    assert labels == {} and rejected == ["a.txt / tags: Input should be a valid list (got None)"]


def test_a_labels_file_laid_over_the_store_without_storing_it_keeps_a_persons_correction(tmp_path: Path) -> None:
    from extractor.store import LABELS_FILE, PERSON, Labels

    path = tmp_path / "journal.sqlite3"
    with Labels(path) as store:
        store.add("a.txt", "applicant_name", "Ann Lee", source="sheet (corrections)", content_sha256=None, kind=PERSON)
        store.add("a.txt", "seniority", "mid", source="old.jsonl", content_sha256=None, kind=LABELS_FILE)
    with Labels.open_readonly(path) as store:
        merged = store.latest_with_file({"a.txt": {"applicant_name": "A. Lee", "seniority": "senior"},
                                         "b.txt": {"applicant_name": "Bo"}})
        assert merged == {"a.txt": {"applicant_name": "Ann Lee", "seniority": "senior"},
                          "b.txt": {"applicant_name": "Bo"}}
        assert store.latest() == {"a.txt": {"applicant_name": "Ann Lee", "seniority": "mid"}}  # nothing stored
