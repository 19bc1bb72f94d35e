"""Fine-tuning export: labelled and self-consistent results as valid OpenAI chat JSONL, with a cost estimate."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import sqlite3
from pathlib import Path

import instructor
import polars as pl
import pytest
from openai.types.chat.chat_completion import Choice

from extractor.config import RunConfig
from extractor.extraction import runner
from extractor.extraction.prompts import system_prompt, wrap_document
from extractor.ladder import finetune
from extractor.ladder.finetune import (
    CHANGED,
    INCOMPLETE,
    INVALID,
    MISSING,
    NOT_IN_RESULTS,
    FinetuneConfig,
    FinetuneFormatError,
    example_rate,
    export_finetune,
    validate_file,
    validate_line,
)
from extractor.llm import request
from extractor.llm.backends import open_openai_backend
from extractor.llm.request import parse_choice
from extractor.schemas import load_schema
from extractor.store import PERSON, Journal, Labels
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, settings, write_docs

SCHEMA = load_schema(ROOT / "schemas", "cover_letter")


def _answer(**values: object) -> str:
    return f"[[answer:{json.dumps(values)}]]"


DOCS = {
    "a_labeled.txt": "Letter A " + _answer(applicant_name="Wrong Name", company="Acme"),
    "b_failed_labeled.txt": "Letter B [[fault:400]]",
    "c_failed_partial.txt": "Letter C [[fault:400]]",
    "d_agreed.txt": "Letter D " + _answer(applicant_name="Dora Diaz", skills=["Go"]),
    "e_low.txt": "Letter E",
    "f_unmeasured.txt": "Letter F",
    "g_missing.txt": "Letter G",
    "i_changed.txt": "Letter I",
    "j_invalid.txt": "Letter J",
    "k_one_sample.txt": "Letter K",
    "l_newest_high.txt": "Letter L " + _answer(applicant_name="Lee Lo"),
    "m_newest_low.txt": "Letter M",
}
LABELED = ["a_labeled.txt", "b_failed_labeled.txt"]
AGREED = ["d_agreed.txt", "l_newest_high.txt"]


def _metrics(rows: list[tuple[str, str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"doc_id": [r[0] for r in rows], "run_id": [r[1] for r in rows], "samples": [r[2] for r in rows],
         "consistency": [r[3] for r in rows], "agree_applicant_name": [r[3] for r in rows]},
        schema={"doc_id": pl.String, "run_id": pl.String, "samples": pl.Int64, "consistency": pl.Float64,
                "agree_applicant_name": pl.Float64})


@pytest.fixture
def project(tmp_path: Path, fake_server: FakeOpenAI) -> Path:
    """Results of a real run over the fake server, labels, a metrics file and some damaged sources."""
    write_docs(tmp_path / "in", DOCS)
    summary = runner.run(make_config(tmp_path, fake_server))
    assert (summary.ok, summary.failed) == (10, 2)
    schema_dir = tmp_path / "out" / "cover_letter"
    labels = Labels(schema_dir / "journal.sqlite3")
    for doc_id, name, value in [
        ("a_labeled.txt", "applicant_name", "Ada Lovelace"),
        ("a_labeled.txt", "skills", ["Python", "SQL"]),
        ("b_failed_labeled.txt", "applicant_name", "Bea Boole"),
        ("b_failed_labeled.txt", "language", "de"),
        ("c_failed_partial.txt", "applicant_name", "Cy Partial"),  # language (required) is not labelled
        ("g_missing.txt", "applicant_name", "Gone Away"),
        ("i_changed.txt", "applicant_name", "Ivy Changed"),
        ("j_invalid.txt", "notice_period_days", -5),  # ge=0 in the schema
        ("zz_not_in_results.txt", "applicant_name", "Nobody"),
    ]:
        labels.add(doc_id, name, value, source="test", content_sha256=None, kind=PERSON)
    labels.close()
    _metrics([
        ("d_agreed.txt", "20260101T000000Z-aaaaaa", 5, 0.95),
        ("e_low.txt", "20260101T000000Z-aaaaaa", 5, 0.5),
        ("k_one_sample.txt", "20260101T000000Z-aaaaaa", 1, 1.0),  # one sample measures nothing
        ("l_newest_high.txt", "20260101T000000Z-aaaaaa", 5, 0.2),
        ("l_newest_high.txt", "20260201T000000Z-bbbbbb", 5, 0.99),
        ("m_newest_low.txt", "20260201T000000Z-bbbbbb", 5, 0.3),
        ("m_newest_low.txt", "20260101T000000Z-aaaaaa", 5, 0.99),
        ("a_labeled.txt", "20260101T000000Z-aaaaaa", 5, 0.1),  # labels win over low agreement
    ]).write_parquet(schema_dir / "metrics.parquet")
    (tmp_path / "in" / "g_missing.txt").unlink()
    (tmp_path / "in" / "i_changed.txt").write_text("Letter I, edited after the run")
    return tmp_path


def _config(root: Path, **overrides: object) -> FinetuneConfig:
    values: dict = dict(overrides)
    return FinetuneConfig(settings=settings(root / "out"), **values)


def _lines(path: Path | None) -> list[dict]:
    assert path is not None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _arguments(line: dict) -> dict:
    return json.loads(line["messages"][-1]["tool_calls"][0]["function"]["arguments"])


def test_labelled_first_with_label_values_then_agreed(project: Path) -> None:
    report = export_finetune(_config(project, val_fraction=0.0))
    assert (report.labeled, report.agreed, report.examples) == (2, 2, 4)
    assert report.train_doc_ids == LABELED + AGREED, "labelled documents come first"
    assert report.validation_count == 0 and report.validation_path is None
    assert not (project / "out" / "cover_letter" / "finetune" / "validation.jsonl").exists()
    assert report.train_path == project / "out" / "cover_letter" / "finetune" / "train.jsonl"
    lines = dict(zip(report.train_doc_ids, _lines(report.train_path), strict=True))

    ada = _arguments(lines["a_labeled.txt"])
    assert ada["applicant_name"] == "Ada Lovelace" and ada["skills"] == ["Python", "SQL"]
    assert ada["company"] == "Acme", "unlabelled fields keep the model's answer"
    assert set(ada) == set(SCHEMA.field_names), "the full model_dump of the validated model"
    bea = _arguments(lines["b_failed_labeled.txt"])
    assert (bea["applicant_name"], bea["language"], bea["skills"], bea["email"]) == ("Bea Boole", "de", [], None)
    assert _arguments(lines["d_agreed.txt"])["skills"] == ["Go"]
    assert _arguments(lines["l_newest_high.txt"])["applicant_name"] == "Lee Lo"

    line = lines["a_labeled.txt"]
    assert set(line) == {"messages", "tools", "parallel_tool_calls"} and line["parallel_tool_calls"] is False
    system, user, assistant = line["messages"]
    assert system == {"role": "system", "content": system_prompt(SCHEMA, examples=False)}
    assert "Example 1" not in system["content"]
    assert user == {"role": "user", "content": wrap_document(DOCS["a_labeled.txt"])}
    (call,) = assistant["tool_calls"]
    assert assistant["role"] == "assistant" and call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "CoverLetter"
    (tool,) = line["tools"]
    sent = instructor.openai_schema(SCHEMA.model).openai_schema
    assert tool == {"type": "function", "function": {"name": "CoverLetter", "description": sent["description"],
                                                     "parameters": sent["parameters"]}}
    assert len({call["id"] for call in (ln["messages"][-1]["tool_calls"][0] for ln in lines.values())}) == 4


def test_the_exported_tool_and_answer_are_the_backends_own(project: Path, fake_server: FakeOpenAI) -> None:
    """The tool every example carries is the one the backend sends where it builds a request itself (n=K samples,
    Batch API lines), and the example's answer reads back the way the backend reads a server's answer."""
    report = export_finetune(_config(project, val_fraction=0.0))
    line = _lines(report.train_path)[0]
    system, user, answer = line["messages"]

    async def sent() -> tuple[dict, dict]:
        async with open_openai_backend(make_config(project, fake_server)) as backend:
            batch = backend.batch_api(0.0)
            assert batch is not None
            return backend.request_params(SCHEMA.model, 0.7), batch.request_line("a", [system, user], SCHEMA.model)

    params, batch_line = asyncio.run(sent())
    assert line["tools"] == params["tools"] == batch_line["body"]["tools"]
    assert params["tool_choice"]["function"]["name"] == answer["tool_calls"][0]["function"]["name"]
    choice = Choice.model_validate({"index": 0, "finish_reason": "tool_calls", "message": {**answer, "content": None}})
    parsed = parse_choice(SCHEMA.model, choice)
    assert parsed is not None and parsed.model_dump(mode="json") == _arguments(line)


def test_exclusions_and_skips_are_counted_with_reasons(project: Path) -> None:
    report = export_finetune(_config(project))
    used = set(report.train_doc_ids + report.validation_doc_ids)
    assert used == set(LABELED + AGREED)
    assert report.not_agreed == 4, "e (low), f (unmeasured), k (one sample), m (newest measurement low)"
    assert report.skipped_counts() == {MISSING: 1, CHANGED: 1, INCOMPLETE: 1, INVALID: 1, NOT_IN_RESULTS: 1}
    by_doc = {s.doc_id: s for s in report.skipped}
    assert by_doc["g_missing.txt"].kind == MISSING and "g_missing.txt" in by_doc["g_missing.txt"].detail
    assert by_doc["i_changed.txt"].kind == CHANGED
    assert by_doc["c_failed_partial.txt"].kind == INCOMPLETE and "language" in by_doc["c_failed_partial.txt"].detail
    assert by_doc["j_invalid.txt"].kind == INVALID and "notice_period_days" in by_doc["j_invalid.txt"].detail
    assert by_doc["zz_not_in_results.txt"].kind == NOT_IN_RESULTS
    text = report.as_text()
    assert "2 labelled, 2 agreed at consistency >= 0.9" in text
    assert f"{MISSING}: 1 (g_missing.txt)" in text and "4 unlabelled ok document(s)" in text


def test_the_export_says_how_far_it_is_from_the_break_even_and_what_to_do_next(project: Path) -> None:
    """Issue 28 item 9: a handful of examples is far below what the break-even prices, and the export says so and
    what comes next: train, measure the fine-tuned model as a variant, read the verdict."""
    report = export_finetune(_config(project))
    text = " ".join(report.as_text().split())
    assert (f"warning: {report.train_count} training example(s) is far below the 500 `extractor breakeven` "
            "assumes a fine-tune needs (--training-examples)") in text
    assert "Next: 1. upload " in text and "start a fine-tuning job of gpt-4.1-nano-2025-04-14" in text
    assert ("2. measure it as a variant beside today's prompt: `extractor experiment INPUT_DIR --labels FILE "
            "--variant examples=static --variant model=ft:...`") in text
    assert f"the {report.validation_count} validation document(s) are held out of training" in text
    assert "3. read the verdict: `extractor breakeven --target 0.95`" in text


def test_without_metrics_only_labelled_documents_are_used(project: Path) -> None:
    (project / "out" / "cover_letter" / "metrics.parquet").unlink()
    report = export_finetune(_config(project))
    assert (report.labeled, report.agreed, report.not_agreed) == (2, 0, 0)
    assert report.metrics_path is None
    assert any("metrics.parquet" in note for note in report.notes)
    assert "no unlabelled documents: no metrics.parquet" in report.as_text()


def test_threshold_is_configurable(project: Path) -> None:
    report = export_finetune(_config(project, min_agreement=0.4))
    assert report.agreed == 3 and "e_low.txt" in report.train_doc_ids + report.validation_doc_ids


def test_every_written_line_passes_the_validator(project: Path) -> None:
    report = export_finetune(_config(project, val_fraction=0.5))
    for path in (report.train_path, report.validation_path):
        assert path is not None and validate_file(path) == []
        for line in _lines(path):
            assert validate_line(line) == []
    assert not list(report.out_dir.glob(".*.tmp")), "no temporary files left behind"


def _good_line() -> dict:
    return {
        "messages": [
            {"role": "system", "content": "Extract."},
            {"role": "user", "content": "<document>\nHi\n</document>"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": "CoverLetter", "arguments": '{"applicant_name": "Ada", "language": "en"}'}}]},
        ],
        "tools": [{"type": "function", "function": {"name": "CoverLetter", "description": "Fields.",
                                                    "parameters": {"type": "object", "properties": {}}}}],
        "parallel_tool_calls": False,
    }


def _broken(edit) -> dict:
    line = copy.deepcopy(_good_line())
    edit(line)
    return line


def _call(line: dict) -> dict:
    return line["messages"][2]["tool_calls"][0]


BROKEN = [
    (lambda ln: ln.update(extra=1), "extra: Extra inputs are not permitted"),
    (lambda ln: ln.pop("messages"), "messages: Field required"),
    (lambda ln: ln.update(messages=[]), "messages: List should have at least 1 item"),
    (lambda ln: ln["messages"][0].update(role="developer"),
     "messages.0: Input tag 'developer' found using 'role' does not match any of the expected tags: "
     "'system', 'user', 'assistant', 'tool'"),
    (lambda ln: ln["messages"][1].update(content=["<document>"]), "messages.1.content: Input should be a valid string"),
    (lambda ln: ln["messages"][0].update(content=""), "messages.0.content: String should have at least 1 character"),
    (lambda ln: ln["messages"][1].update(weight=1), "messages.1.weight: Extra inputs are not permitted"),
    (lambda ln: ln["messages"][1].update(tool_calls=[]), "messages.1.tool_calls: Extra inputs are not permitted"),
    (lambda ln: ln["messages"].pop(), "messages.1: the last message must be the assistant's answer, not role 'user'"),
    (lambda ln: ln["messages"][2].pop("tool_calls"), "messages.2: an assistant message needs content or tool_calls"),
    (lambda ln: ln["messages"][2].update(tool_calls=[]), "messages.2.tool_calls: List should have at least 1 item"),
    (lambda ln: ln["messages"][2].update(content=7), "messages.2.content: Input should be a valid string (got 7)"),
    (lambda ln: _call(ln).pop("id"), "messages.2.tool_calls.0.id: Field required"),
    (lambda ln: _call(ln).update(type="tool"), "messages.2.tool_calls.0.type: Input should be 'function' (got 'tool')"),
    (lambda ln: ln["messages"][2]["tool_calls"].append(copy.deepcopy(_call(ln))),
     "messages.2.tool_calls.1.id: 'call_1' is used twice"),
    (lambda ln: _call(ln)["function"].update(name="Resume"),
     "messages.2.tool_calls.0.function.name: 'Resume' is not in tools (defined: CoverLetter)"),
    (lambda ln: ln.pop("tools"),
     "messages.2.tool_calls.0.function.name: 'CoverLetter' is called but the line has no tools"),
    (lambda ln: _call(ln)["function"].update(arguments='{"applicant_name": "Ada"'),
     "messages.2.tool_calls.0.function.arguments: Invalid JSON: EOF while parsing an object at line 1 column 24"),
    (lambda ln: _call(ln)["function"].update(arguments='["Ada"]'),
     "messages.2.tool_calls.0.function.arguments: Input should be a valid dictionary"),
    (lambda ln: _call(ln)["function"].update(arguments={"applicant_name": "Ada"}),
     "messages.2.tool_calls.0.function.arguments: JSON input should be string, bytes or bytearray"),
    (lambda ln: ln["tools"][0].update(type="retrieval"), "tools.0.type: Input should be 'function' (got 'retrieval')"),
    (lambda ln: ln["tools"][0]["function"].update(name="Cover Letter"),
     "tools.0.function.name: String should match pattern '^[A-Za-z0-9_-]{1,64}$' (got 'Cover Letter')"),
    (lambda ln: ln["tools"][0]["function"].pop("parameters"), "tools.0.function.parameters: Field required"),
    (lambda ln: ln["tools"][0]["function"]["parameters"].update(type="array"),
     "tools.0.function.parameters.type: Input should be 'object' (got 'array')"),
    (lambda ln: ln["tools"].append(copy.deepcopy(ln["tools"][0])),
     "tools.1.function.name: 'CoverLetter' is defined twice"),
    (lambda ln: ln.update(tools=[]), "tools: List should have at least 1 item"),
    (lambda ln: ln.update(parallel_tool_calls="no"), "parallel_tool_calls: Input should be a valid boolean (got 'no')"),
    (lambda ln: ln["messages"].append({"role": "tool", "tool_call_id": "call_9", "content": "ok"}),
     "messages.3.tool_call_id: 'call_9' answers no earlier tool call"),
    (lambda ln: ln["messages"][2].update(weight=0.5), "messages.2.weight: Input should be 0 or 1 (got 0.5)"),
]


def test_the_reference_line_is_valid() -> None:
    assert validate_line(_good_line()) == []
    assert validate_line([]) == ["Input should be a valid dictionary or instance of FinetuneLine"]
    # a tool result that answers the call, then the final answer; weight 0 keeps the first answer untrained
    line = _broken(lambda ln: ln["messages"][2].update(weight=0))
    line["messages"] += [{"role": "tool", "tool_call_id": "call_1", "content": "ok"},
                         {"role": "assistant", "content": "Done."}]
    assert validate_line(line) == []


@pytest.mark.parametrize(("edit", "expected"), BROKEN, ids=[str(i) for i in range(len(BROKEN))])
def test_each_rule_violation_is_named_precisely(edit, expected: str) -> None:
    problems = validate_line(_broken(edit))
    assert any(p.startswith(expected) for p in problems), problems


def test_validate_file_numbers_lines(tmp_path: Path) -> None:
    good = json.dumps(_good_line())
    bad = json.dumps(_broken(lambda ln: _call(ln).update(type="tool")))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([good, bad, "", "{not json", good]) + "\n")
    problems = validate_file(path)
    assert problems[0] == "line 2: messages.2.tool_calls.0.type: Input should be 'function' (got 'tool')"
    assert problems[1] == "line 3: blank line"
    assert problems[2].startswith("line 4: not valid JSON")
    assert len(problems) == 3
    (tmp_path / "empty.jsonl").write_text("")
    assert validate_file(tmp_path / "empty.jsonl") == [f"{tmp_path / 'empty.jsonl'}: no examples"]


def test_a_line_that_fails_validation_writes_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = request.tool

    def renamed(model):
        tool = real(model)
        tool["function"]["name"] = "Cover Letter"  # not a valid function name
        return tool

    monkeypatch.setattr(request, "tool", renamed)  # the one builder the export and the backend share
    with pytest.raises(FinetuneFormatError, match=r"example for a_labeled.txt breaks .*tools\.0\.function\.name"):
        export_finetune(_config(project))
    assert not (project / "out" / "cover_letter" / "finetune").exists()


@pytest.mark.parametrize(("n", "fraction", "expected"), [
    (0, 0.2, 0), (1, 0.2, 0), (2, 0.2, 1), (4, 0.2, 1), (10, 0.2, 2), (13, 0.2, 3), (10, 0.25, 3),
    (3, 0.9, 2), (5, 0.0, 0)])
def test_split_sizes(n: int, fraction: float, expected: int) -> None:
    assert finetune.split_sizes(n, fraction) == expected


def test_split_is_seeded_and_keeps_labelled_first(project: Path) -> None:
    first = export_finetune(_config(project, val_fraction=0.5, seed=7))
    bytes_first = first.train_path.read_bytes(), first.validation_path.read_bytes()
    again = export_finetune(_config(project, val_fraction=0.5, seed=7))
    assert (again.train_path.read_bytes(), again.validation_path.read_bytes()) == bytes_first
    assert (first.train_count, first.validation_count) == (2, 2)
    assert sorted(first.train_doc_ids + first.validation_doc_ids) == sorted(LABELED + AGREED)
    seeds = {tuple(export_finetune(_config(project, val_fraction=0.5, seed=s)).validation_doc_ids)
             for s in range(8)}
    assert len(seeds) > 1, "the seed chooses the validation set"
    for ids in (first.train_doc_ids, first.validation_doc_ids):
        order = [LABELED.index(d) if d in LABELED else 10 + AGREED.index(d) for d in ids]
        assert order == sorted(order)
    assert len(_lines(first.train_path)) == 2 and len(_lines(first.validation_path)) == 2


def _chars(path: Path | None) -> tuple[int, int]:
    """(system + document + answer characters, examples) of a written file, counted independently."""
    total, count = 0, 0
    for line in _lines(path):
        system, user, assistant = line["messages"]
        document = user["content"].removeprefix("<document>\n").removesuffix("\n</document>")
        total += len(system["content"]) + len(document) + len(assistant["tool_calls"][0]["function"]["arguments"])
        count += 1
    return total, count


def _billed(path: Path | None) -> int:
    """What the fake server would bill for the examples of a file: its prompt (the messages before the answer and
    the tools, as JSON, a token every 4 characters) and its answer, as it bills a request and a completion."""
    total = 0
    for line in _lines(path):
        prompt = json.dumps(line["messages"][:-1], ensure_ascii=False) + json.dumps(line["tools"])
        total += math.ceil(len(prompt) / 4) + math.ceil(len(line["messages"][-1]["tool_calls"][0]["function"][
            "arguments"]) / 4)
    return total


def test_calibrated_token_and_cost_estimate(project: Path) -> None:
    report = export_finetune(_config(project, epochs=4))
    with Journal.open_readonly(project / "out" / "cover_letter" / "journal.sqlite3") as journal:
        rate = example_rate(journal, "gpt-4o-mini")
    train_chars, _ = _chars(report.train_path)
    validation_chars, _ = _chars(report.validation_path)
    assert (report.train_chars, report.validation_chars) == (train_chars, validation_chars)
    # Counted as the break-even counts a fine-tuning example: the journal's one-call extractions' rate.
    assert report.token_basis == "calibrated" and report.tokens_per_char == pytest.approx(rate.rate.per_char)
    assert f"calibrated on gpt-4o-mini: {rate.basis}" in report.as_text()
    # Within 5% of what the server would bill for these very lines.
    assert report.train_tokens == pytest.approx(_billed(report.train_path), rel=0.05)
    assert report.training_price_per_mtok == 1.50  # gpt-4.1-nano-2025-04-14, the default target
    assert report.training_cost_usd == pytest.approx(report.train_tokens * 4 * 1.50 / 1e6)
    assert f"{report.train_tokens:,} tokens x 4 epoch(s) x $1.5/M tokens" in report.as_text()


def test_default_token_estimate_without_calibration(project: Path) -> None:
    db = sqlite3.connect(project / "out" / "cover_letter" / "journal.sqlite3")
    db.execute("UPDATE results SET prompt_chars = NULL")
    db.commit()
    db.close()
    report = export_finetune(_config(project, target_model="gpt-4o-mini-2024-07-18"))
    assert report.token_basis == "default" and "4 characters per token over everything sent" in report.as_text()
    # A token every 4 characters of everything sent: what the fake server bills for the same lines, within 1%.
    assert report.train_tokens == pytest.approx(_billed(report.train_path), rel=0.01)
    assert report.training_cost_usd == pytest.approx(report.train_tokens * 3 * 3.00 / 1e6)


def test_a_field_by_field_journal_does_not_calibrate_a_whole_schema_example(tmp_path: Path,
                                                                           fake_server: FakeOpenAI) -> None:
    """Field-by-field requests (one question each) say nothing about a whole-schema call's tokens a character:
    the export counts with the default rate, not one a dozen questions per document inflate."""
    write_docs(tmp_path / "in", {"a.txt": "Dear team, I am Ada Lovelace and I write programs. " * 20})
    runner.run(make_config(tmp_path, fake_server, strategy="fields"))
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"doc_id": "a.txt", "applicant_name": "Ada Lovelace", "language": "en"}) + "\n")
    with Labels(tmp_path / "out" / "cover_letter" / "journal.sqlite3") as store:
        store.add("a.txt", "applicant_name", "Ada Lovelace", source="test", content_sha256=None, kind=PERSON)
    report = export_finetune(_config(tmp_path, val_fraction=0.0))
    assert report.token_basis == "default" and "no one-call extraction by gpt-4o-mini" in report.as_text()
    assert report.train_tokens == pytest.approx(_billed(report.train_path), rel=0.01)


def test_price_override_and_unknown_target(project: Path) -> None:
    report = export_finetune(FinetuneConfig(
        settings=settings(project / "out", finetune_prices={"my-model": {
            "training_per_mtok": 2.0, "input_per_mtok": 1.0, "cached_input_per_mtok": 0.5, "output_per_mtok": 4.0}}),
        target_model="my-model"))
    assert report.training_cost_usd == pytest.approx(report.train_tokens * 3 * 2.0 / 1e6)
    unknown = export_finetune(_config(project, target_model="no-such-model"))
    assert unknown.training_cost_usd is None and unknown.train_path is not None
    assert any("no fine-tuning price for 'no-such-model'" in w for w in unknown.warnings)
    assert "train cost:  unknown" in unknown.as_text()


def test_config_defaults_and_checks(tmp_path: Path) -> None:
    config = FinetuneConfig(settings=RunConfig(schema="cover_letter", output_dir=tmp_path))
    assert config.out_dir == tmp_path / "cover_letter" / "finetune"
    assert (config.val_fraction, config.seed, config.min_agreement, config.epochs) == (0.2, 0, 0.9, 3)
    for bad in ({"val_fraction": 1.0}, {"min_agreement": 1.5}, {"epochs": 0}):
        with pytest.raises(finetune.ConfigError):
            FinetuneConfig(settings=RunConfig(schema="cover_letter"), **bad)
