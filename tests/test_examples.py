"""Retrieved examples (`--examples similar:K`), through real HTTP to the fake server."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from extractor.config import RunConfig
from extractor.errors import ConfigError
from extractor.extraction import retrieval as examples_module
from extractor.extraction import runner
from extractor.extraction.plan import plan
from extractor.extraction.prompts import system_prompt, wrap_document
from extractor.extraction.retrieval import NEAR_DUPLICATE, features
from extractor.schemas import load_schema
from extractor.store import LABELS_FILE, Labels
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, write_docs

DEV = ("Dear hiring team, I am applying for the backend engineer position. For six years I have built Python "
       "services on Kubernetes and PostgreSQL, designed REST APIs, tuned slow queries, and led the migration "
       "of a monolith to event driven microservices with Kafka. I mentor two junior developers, review code "
       "daily, and care about observability with Prometheus and Grafana. I would like a hybrid role. "
       "Kind regards, {name}")
DOCS = {
    # unlabeled: the documents whose examples are checked
    "dev_q.txt": DEV.format(name="Ada Lovelace"),
    "nurse_q.txt": "Dear matron, I am a registered nurse applying to your cardiology ward. I care for patients "
                   "after surgery, give medication, and train new nurses on the ward. Regards, Bea Quinn",
    # labeled
    "dev_twin.txt": DEV.format(name="Grace Hopper").replace("six years", "seven years")
                    .replace("two junior developers", "three interns").replace("hybrid", "remote")
                    + " P.S. I also know Terraform, Go, gRPC and Redis well, and I enjoy on-call work.",
    "dev_copy.txt": DEV.format(name="Ada Lovelace").upper().replace(" ", "  "),  # the query in other clothes
    "dev_a.txt": "Hello, I am a frontend developer: React, TypeScript and some Python on the backend, "
                 "REST APIs and code review. Yours, Carl Chen",
    "nurse_a.txt": "Dear ward manager, I am a nurse with ten years on a surgical ward: patients, medication, "
                   "wound care and night shifts. Sincerely, Dana Diaz",
    "chef_a.txt": "Chef, I would love to join your kitchen as a pastry cook: croissants, tarts, the menu "
                  "and early mornings in a busy restaurant. Eli Evans",
}
LABELS = {
    "dev_twin.txt": {"applicant_name": "Grace Hopper", "seniority": "senior", "remote_preference": "remote"},
    "dev_copy.txt": {"applicant_name": "ADA LOVELACE", "seniority": "mid"},
    "dev_a.txt": {"applicant_name": "Carl Chen", "skills": ["React", "TypeScript"]},
    "nurse_a.txt": {"applicant_name": "Dana Diaz", "years_experience": 10},
    "chef_a.txt": {"applicant_name": "Eli Evans", "desired_role": "pastry cook"},
    "gone.txt": {"applicant_name": "Nobody"},  # its text cannot be read: not in the pool
}
STATIC = system_prompt(load_schema(ROOT / "schemas", "cover_letter"))


def setup(tmp_path: Path, server: FakeOpenAI, labels: dict[str, dict[str, Any]] = LABELS,
          **overrides: Any) -> RunConfig:
    write_docs(tmp_path / "in", DOCS)
    config = make_config(tmp_path, server, **overrides)
    store_labels(config, labels)
    return config


def store_labels(config: RunConfig, labels: dict[str, dict[str, Any]]) -> None:
    with Labels(config.layout.journal) as store:
        for doc_id, values in labels.items():
            for field, value in values.items():
                store.add(doc_id, field, value, source="labels.jsonl", content_sha256=None, kind=LABELS_FILE)


def doc_of(text: str) -> str:
    return next(doc_id for doc_id, body in DOCS.items() if body == text)


def request_examples(record: dict[str, Any]) -> list[str]:
    """doc_ids of the examples a logged request carried, in order (from the second system message)."""
    systems = [m["content"] for m in record["messages"] if m["role"] == "system"]
    if len(systems) < 2:
        return []
    return [doc_of(text) for text in re.findall(r"<document>\n(.*?)\n</document>", systems[1], re.S)]


def request_doc(record: dict[str, Any]) -> str:
    user = next(m["content"] for m in record["messages"] if m["role"] == "user")
    return doc_of(user.removeprefix("<document>\n").removesuffix("\n</document>"))


def journal_rows(config: RunConfig) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(config.layout.journal) as db:
        return {doc_id: json.loads(row) for doc_id, row in db.execute(
            "SELECT doc_id, row_json FROM results ORDER BY finished_at")}


def test_the_nearest_labeled_documents_follow_the_static_prefix(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server, examples="similar:2")
    summary = runner.run(config)
    assert summary.ok == len(DOCS) and summary.failed == 0
    log = server_log(fake_server)
    assert len(log) == len(DOCS)
    sent = {request_doc(r): r for r in log}
    # the planted near-twin comes first; the document's own copy (same normalized text) never
    assert request_examples(sent["dev_q.txt"]) == ["dev_twin.txt", "dev_a.txt"]
    assert request_examples(sent["nurse_q.txt"])[0] == "nurse_a.txt"
    a, b = set(features(DOCS["dev_q.txt"])["tf"]), set(features(DOCS["dev_twin.txt"])["tf"])
    assert len(a & b) / len(a | b) < NEAR_DUPLICATE, "the twin is near, not a duplicate"
    for doc_id, record in sent.items():
        chosen = request_examples(record)
        assert doc_id not in chosen and len(chosen) <= 2
        assert not {doc_id, *chosen} >= {"dev_q.txt", "dev_copy.txt"}, "a near-duplicate is never an example"
        assert "gone.txt" not in chosen
        # the static prefix is the first message, byte-identical for every document; the document is last
        assert record["messages"][0] == {"role": "system", "content": STATIC}
        assert record["messages"][-1] == {"role": "user", "content": wrap_document(DOCS[doc_id])}
        # the example output is the labels as the schema validates them
        if chosen:
            fields = re.findall(r"\nFields: (.*)", record["messages"][1]["content"])
            assert json.loads(fields[0])["applicant_name"] == LABELS[chosen[0]]["applicant_name"]
    assert len({r["system_sha256"] for r in log}) == 1
    # the examples used are recorded with the result
    rows = journal_rows(config)
    assert rows["dev_q.txt"]["examples"] == ["dev_twin.txt", "dev_a.txt"]
    assert all(rows[d].get("examples") == request_examples(sent[d]) or not request_examples(sent[d]) for d in DOCS)
    # tokens and cost are the server's, longer prompts included
    assert summary.prompt_tokens == sum(r["prompt_tokens"] for r in log)
    assert summary.cached_tokens == sum(r["cached_tokens"] for r in log) > 0
    plain = sum(len(STATIC) + len(wrap_document(t)) for t in DOCS.values())
    assert sum(rows[d]["prompt_tokens"] for d in DOCS) == summary.prompt_tokens > plain / 4


def test_a_label_change_re_extracts_only_the_documents_it_was_shown_to(tmp_path: Path,
                                                                         fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server, examples="similar:2")
    runner.run(config)
    shown_twin = {d for d, row in journal_rows(config).items() if "dev_twin.txt" in row.get("examples", [])}
    assert "dev_q.txt" in shown_twin and "nurse_q.txt" not in shown_twin
    fake_server.reset()
    again = runner.run(config)
    assert again.cached == len(DOCS) and server_log(fake_server) == [], "unchanged labels: everything carried"
    store_labels(config, {"dev_twin.txt": {"seniority": "lead"}})  # a corrected label of one example
    fake_server.reset()
    third = runner.run(config)
    assert {request_doc(r) for r in server_log(fake_server)} == shown_twin
    assert third.cached == len(DOCS) - len(shown_twin)
    row = journal_rows(config)["dev_q.txt"]
    assert row["run_id"] == third.run_id and row["examples"][0] == "dev_twin.txt"
    sent = json.loads(re.findall(r"\nFields: (.*)", server_log(fake_server)[0]["messages"][1]["content"])[0])
    assert "seniority" in sent


def test_dry_run_estimates_from_the_real_messages(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server, examples="similar:2")
    planned = {d.doc_id: d.prompt_chars for d in plan(config).to_send}
    assert set(planned) == set(DOCS)
    runner.run(config)
    sent = {request_doc(r): sum(len(m["content"]) for m in r["messages"][:-1]) + len(DOCS[request_doc(r)])
            for r in server_log(fake_server)}
    assert planned == sent
    assert planned["dev_q.txt"] > len(STATIC) + len(wrap_document(DOCS["dev_q.txt"])) + len(DOCS["dev_twin.txt"])


def test_none_sends_no_examples_and_static_is_unchanged(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server)  # default: static
    assert config.examples == "static"
    runner.run(config)
    for record in server_log(fake_server):
        assert record["messages"] == [{"role": "system", "content": STATIC},
                                      {"role": "user", "content": wrap_document(DOCS[request_doc(record)])}]
    # static keeps today's keys: a config that never heard of examples carries everything
    keys = {row["doc_id"]: row for row in journal_rows(config).values()}
    assert keys
    fake_server.reset()
    none = make_config(tmp_path, fake_server, examples="none")
    summary = runner.run(none)
    assert summary.cached == 0, "no examples is another prompt: another identity"
    bare = system_prompt(load_schema(ROOT / "schemas", "cover_letter"), examples=False)
    assert "Example 1" in STATIC and "Example 1" not in bare
    for record in server_log(fake_server):
        assert [m["role"] for m in record["messages"]] == ["system", "user"]
        assert record["messages"][0]["content"] == bare


def test_similar_without_labels_keeps_the_static_identity(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server, labels={})
    runner.run(config)
    fake_server.reset()
    summary = runner.run(make_config(tmp_path, fake_server, examples="similar:3"))
    assert summary.cached == len(DOCS) and server_log(fake_server) == []


def test_features_are_computed_once_per_content(tmp_path: Path, fake_server: FakeOpenAI,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = setup(tmp_path, fake_server, examples="similar:2")
    calls: list[int] = []
    real = examples_module.features

    def counting(text: str) -> dict[str, Any]:
        calls.append(1)
        return real(text)

    monkeypatch.setattr(examples_module, "features", counting)
    runner.run(config)
    assert len(calls) == len(DOCS)  # each content once: the labeled ones for the pool, then the other two
    with sqlite3.connect(config.layout.journal) as db:
        assert db.execute("SELECT COUNT(*) FROM retrieval_features").fetchone()[0] == len(calls)
    calls.clear()
    runner.run(config)
    assert calls == [], "unchanged documents: nothing recomputed"


@pytest.mark.parametrize("value", ["similar", "similar:0", "similar:x", "dynamic", "similar:-1"])
def test_bad_examples_setting(tmp_path: Path, fake_server: FakeOpenAI, value: str) -> None:
    with pytest.raises(ConfigError, match="--examples"):
        make_config(tmp_path, fake_server, examples=value)


def test_batch_rows_record_their_examples_as_plain_rows_do(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server, examples="similar:2", batch=True)
    first = runner.run(config)
    assert first.submitted == len(DOCS)
    second = runner.run(config)  # collects the batch
    assert second.ok == len(DOCS)
    rows = journal_rows(config)
    sent = {request_doc(r): request_examples(r) for r in server_log(fake_server)}
    assert rows["dev_q.txt"]["examples"] == sent["dev_q.txt"] == ["dev_twin.txt", "dev_a.txt"]
    for doc_id in DOCS:  # the same rule as a plain run's rows (Recorder.base_row): none shown, none recorded
        assert rows[doc_id].get("examples", []) == sent[doc_id]


def test_the_fields_strategy_shows_each_question_the_retrieved_examples(tmp_path: Path,
                                                                        fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server, examples="similar:2", strategy="fields")
    summary = runner.run(config)
    assert summary.ok == len(DOCS) and summary.failed == 0
    asked = [r for r in server_log(fake_server) if r["messages"][-1]["content"].startswith(
        wrap_document(DOCS["dev_q.txt"]) + "\n\n")]
    name = next(m for r in asked if "Question: applicant name" in (m := r["messages"][-1]["content"]))
    # its nearest labeled letter's name, with the words around it, between the document and the question
    demo = next(line for line in name.splitlines() if "Grace Hopper" in line)
    assert demo.startswith('Example from a similar document: "...') and "Kind regards, Grace Hopper" in demo
    assert demo.endswith('" -> {"applicant_name": "Grace Hopper"}')
    assert name.index("Example from") < name.index("Question:")
    assert journal_rows(config)["dev_q.txt"]["examples"] == ["dev_twin.txt", "dev_a.txt"]
    # results of the field strategy from before it showed the examples (keys computed with commit eb04e0b) are
    # not carried; the whole-schema strategy, which always showed them, keeps its keys
    def key(strategy: str) -> str:
        return RunConfig(base_url="http://x/v1", strategy=strategy, examples="similar:2").cache_key(
            "abc", "v1", examples="d")

    assert key("fields") != "e4d4d70120cff84c9d791be4bc074245bc4cb734d2ebb2c50f734fd3c30210cd"
    assert key("whole") == "9cd67e4428728ed48a239ce3badabca650a2f3548162cd0fb8a973906369ba8c"
