"""Long documents: 100-page packs made from the sample letters, extracted through a fake server with a 4,096-token
context that answers each chunk only with what that chunk shows (scripts/make_long_documents.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor.documents import read_text
from extractor.extraction import runner
from extractor.extraction.plan import plan
from extractor.llm.tokens import answer_tokens
from extractor.schemas import load_schema
from extractor.values.metrics import score
from tests.conftest import ROOT, load_script, make_config, server_log, serving

SCRIPT = ROOT / "scripts" / "make_long_documents.py"
LETTERS = ("jonas_berg", "anna_schmidt")


def _script() -> Any:
    return load_script(SCRIPT, "make_long_documents_under_test")


packs = _script()


def _oracle() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for _, text, label in packs.letters(LETTERS):
        out.update(packs.anchors(text, label))
    return out


def _inner(first_user: str) -> str:
    return first_user.removeprefix("<document>\n").removesuffix("\n</document>")


@pytest.fixture(scope="module")
def oracle() -> dict[str, dict[str, Any]]:
    return _oracle()


@pytest.mark.parametrize("fmt", ["txt", "pdf", "docx"])
def test_every_long_pack_is_ok_and_each_labeled_value_equals_its_label(
        tmp_path: Path, fmt: str, oracle: dict[str, dict[str, Any]]) -> None:
    labels = {w["doc_id"]: w for w in packs.write_packs(tmp_path / "in", pages=100, names=LETTERS, formats=[fmt],
                                                         labels=tmp_path / "labels.jsonl")}
    with serving(context_tokens=4096, anchored=oracle) as server:
        config = make_config(tmp_path, server, context_tokens=4096)
        summary = runner.run(config)
        log = server_log(server)
    frame = pl.read_parquet(config.layout.results)
    rows = frame.to_dicts()
    assert summary.failed == 0 and {r["status"] for r in rows} == {"ok"}, summary.failures
    assert not [r for r in log if r["status"] != 200], "every chunk fits the server's context"
    model = load_schema(ROOT / "schemas", "cover_letter").model
    wrong = [(s.field, s.accuracy) for s in score(rows, labels, model) if s.accuracy != 1.0]
    assert wrong == [], wrong
    evidence = pl.read_parquet(config.layout.evidence)
    for row in rows:
        assert row["chunks"] > 20 and row["conflicts"] == 0
        text = read_text(tmp_path / "in" / row["doc_id"], max_chars=10**9, timeout_s=60).text
        # the row's prompt tokens are the server's usage summed over the chunks of this document
        mine = [r for r in log if _inner(r["first_user"]) in text]
        assert len(mine) == row["attempts"] >= row["chunks"]
        assert row["prompt_tokens"] == sum(r["prompt_tokens"] for r in mine)
        assert row["completion_tokens"] == sum(r["completion_tokens"] for r in mine)
        found = evidence.filter(pl.col("doc_id") == row["doc_id"], pl.col("start").is_not_null())
        for item in found.to_dicts():
            assert text[item["start"]:item["end"]] == item["quote"], item
        # pay and notice stand near the end of the pack: their evidence indexes into the whole text
        assert found["start"].max() > len(text) * 0.9  # type: ignore[operator]


def test_a_server_refusing_a_chunk_as_too_long_gets_it_in_halves(tmp_path: Path,
                                                                  oracle: dict[str, dict[str, Any]]) -> None:
    labels = {w["doc_id"]: w for w in packs.write_packs(tmp_path / "in", pages=100, names=LETTERS[:1],
                                                         formats=["txt"], labels=tmp_path / "labels.jsonl")}
    with serving(context_tokens=4096, anchored=oracle) as server:
        # the setting claims four times the server's real context: the server refuses, the chunks are split
        config = make_config(tmp_path, server, context_tokens=16384)
        summary = runner.run(config)
        log = server_log(server)
    refused = [r for r in log if r["status"] == 400]
    assert refused and all(r["fault"] == "context" for r in refused)
    rows = pl.read_parquet(config.layout.results).to_dicts()
    assert summary.ok == 1 and rows[0]["status"] == "ok"
    model = load_schema(ROOT / "schemas", "cover_letter").model
    assert [s.field for s in score(rows, labels, model) if s.accuracy != 1.0] == []
    assert rows[0]["attempts"] == len(log) and rows[0]["prompt_tokens"] == sum(r["prompt_tokens"] for r in log)


def test_the_dry_run_counts_and_prices_the_chunks_of_a_long_document(tmp_path: Path) -> None:
    packs.write_packs(tmp_path / "in", pages=100, names=LETTERS[:1], formats=["txt"], labels=tmp_path / "l.jsonl")
    with serving() as server:
        config = make_config(tmp_path, server, context_tokens=4096)
        planned = plan(config)
    (doc,) = planned.to_send
    assert doc.chunks > 20
    assert planned.over_context == [doc]
    # With no history, each chunk's answer is the schema's estimate (llm.tokens.answer_tokens), not a flat 200.
    assert doc.completion_tokens == doc.chunks * round(answer_tokens(load_schema(ROOT / "schemas", "cover_letter")))
    assert planned.cost_usd is not None and planned.cost_usd > 0


def test_a_long_document_is_admitted_under_max_cost_only_if_all_its_chunks_fit(tmp_path: Path) -> None:
    packs.write_packs(tmp_path / "in", pages=100, names=LETTERS[:1], formats=["txt"], labels=tmp_path / "l.jsonl")
    with serving(context_tokens=4096) as server:
        # gpt-4o-mini: ~60k prompt tokens over ~70 chunks cost ~$0.01; a cent's limit admits none of it
        config = make_config(tmp_path, server, context_tokens=4096, max_cost_usd=0.001)
        summary = runner.run(config)
        assert server_log(server) == []
    assert summary.deferred == 1 and summary.cost_limited


def test_past_max_chars_a_document_fails_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "junk.txt").write_text("junk " * 50_000)
    with serving() as server:
        config = make_config(tmp_path, server, max_chars=100_000)
        summary = runner.run(config)
        assert server_log(server) == []
    assert summary.failed == 1 and "max_chars" in summary.failures[0][2]


def test_a_long_document_goes_through_the_batch_api_as_one_line_per_chunk(
        tmp_path: Path, oracle: dict[str, dict[str, Any]]) -> None:
    labels = {w["doc_id"]: w for w in packs.write_packs(tmp_path / "in", pages=100, names=LETTERS, formats=["txt"],
                                                         labels=tmp_path / "labels.jsonl")}
    with serving(context_tokens=4096, anchored=oracle) as server:
        config = make_config(tmp_path, server, context_tokens=4096, batch=True)
        first = runner.run(config)
        assert first.submitted == 2 and first.ok == 0
        (batch,) = server.batches.values()
        lines = server.files[batch["input_file_id"]].decode().splitlines()
        second = runner.run(config)
        log = server_log(server)
    assert second.ok == 2 and second.failed == 0, second.failures
    rows = pl.read_parquet(config.layout.results).to_dicts()
    assert sum(r["chunks"] for r in rows) == len(lines) == len(log)
    model = load_schema(ROOT / "schemas", "cover_letter").model
    assert [s.field for s in score(rows, labels, model) if s.accuracy != 1.0] == []
    assert sum(r["prompt_tokens"] for r in rows) == sum(r["prompt_tokens"] for r in log)
    assert all(r["batch_id"] == batch["id"] and r["grounded"] == 1.0 for r in rows)


def test_field_by_field_each_chunk_is_asked_only_what_the_whole_document_does_not_settle(
        tmp_path: Path, oracle: dict[str, dict[str, Any]]) -> None:
    labels = {w["doc_id"]: w for w in packs.write_packs(tmp_path / "in", pages=100, names=LETTERS[:1],
                                                         formats=["txt"], labels=tmp_path / "labels.jsonl")}
    with serving(context_tokens=4096, anchored=oracle) as server:
        config = make_config(tmp_path, server, context_tokens=4096, strategy="fields")
        summary = runner.run(config)
        log = server_log(server)
    (row,) = pl.read_parquet(config.layout.results).to_dicts()
    assert summary.ok == 1 and row["chunks"] > 10
    asked = {r["messages"][-1]["content"].rsplit("Question: ", 1)[-1].split(" (")[0] for r in log}
    # one e-mail address, one phone number, the salary's amounts: found in the whole text, asked in no chunk
    assert asked and not asked & {"email", "phone", "salary"}, asked
    assert all(r["status"] == 200 for r in log)
    model = load_schema(ROOT / "schemas", "cover_letter").model
    right = {s.field for s in score([row], labels, model) if s.accuracy == 1.0}
    assert {"applicant_name", "email", "phone", "desired_role", "company", "salary.min", "salary.currency"} <= right
    assert row["prompt_tokens"] == sum(r["prompt_tokens"] for r in log) and row["attempts"] == len(log)


# `extractor ARGS...` in this process, then its peak RSS in KiB, its own or its workers' (whichever is higher), to
# the file named first. Its own is VmHWM, not getrusage's ru_maxrss: Linux carries the forking process's high
# water mark across exec into ru_maxrss, so a child of a pytest process that had grown to 1.2 GB read 1.2 GB.
_PEAK_RSS = """
import re, resource, sys
out, sys.argv = sys.argv[1], ["extractor", *sys.argv[2:]]
try:
    from extractor.cli import main
    main()
finally:
    own = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
    open(out, "w").write(str(max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)))
"""


@pytest.mark.integration
def test_a_600000_character_document_finishes_in_bounded_time_and_memory(
        tmp_path: Path, oracle: dict[str, dict[str, Any]]) -> None:
    import os
    import subprocess
    import time

    packs.write_packs(tmp_path / "in", pages=334, names=LETTERS[:1], formats=["txt"], labels=tmp_path / "l.jsonl")
    (pack,) = (tmp_path / "in").iterdir()
    assert len(pack.read_text(encoding="utf-8")) > 600_000
    with serving(context_tokens=4096, anchored=oracle) as server:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS, str(tmp_path / "peak"), "run", str(tmp_path / "in"),
             "--schemas", str(ROOT / "schemas"),
             "--output", str(tmp_path / "out"), "--base-url", server.base_url, "--model", "gpt-4o-mini",
             "--context-tokens", "4096", "--no-progress"],
            env={**os.environ, "OPENAI_API_KEY": "sk-test-0000000000", "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - began
    assert done.returncode == 0, done.stderr[-2000:]
    # the run's own peak and its workers' (not RUSAGE_CHILDREN here: that is every child this test process ever
    # waited for, a browser or a model server of an earlier test included: 1,235 MB in a full suite)
    peak_mb = float((tmp_path / "peak").read_text()) / 1024
    (row,) = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet").to_dicts()
    assert row["status"] == "ok" and row["chunks"] > 100
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"
    assert wall < 240, f"{wall:.0f} s"  # measured ~10 s quiet; a bound, not a benchmark (bench/longdocs.py)


@pytest.mark.parametrize("said", [
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",  # OpenAI, vLLM
    "the request exceeds the available context size, try increasing it",  # llama.cpp's server
    "Requested tokens (9000) exceed context window of 8192",  # llama-cpp-python
    "input length exceeds the context length",  # Ollama
])
def test_the_context_refusals_of_known_servers_are_recognized(said: str) -> None:
    from extractor.llm.backends import _over_context

    assert _over_context(ValueError(said))


def test_other_refusals_are_not_context_refusals() -> None:
    from extractor.llm.backends import _over_context

    assert not _over_context(ValueError("Invalid schema for function 'CoverLetter': 'enum' must be an array"))


def test_a_sampled_long_document_merges_each_sample_over_the_chunks(
        tmp_path: Path, oracle: dict[str, dict[str, Any]]) -> None:
    labels = {w["doc_id"]: w for w in packs.write_packs(tmp_path / "in", pages=100, names=LETTERS[:1],
                                                         formats=["txt"], labels=tmp_path / "labels.jsonl")}
    with serving(context_tokens=4096, anchored=oracle) as server:
        config = make_config(tmp_path, server, context_tokens=4096, samples=3)
        summary = runner.run(config)
        log = server_log(server)
    (row,) = pl.read_parquet(config.layout.results).to_dicts()
    assert summary.ok == 1 and summary.sampled == 1 and row["chunks"] > 20
    assert {r["choices"] for r in log} == {3} and len(log) == row["chunks"]  # one n=3 request per chunk
    metrics = pl.read_parquet(config.layout.metrics).to_dicts()
    assert metrics[0]["consistency"] == 1.0  # the oracle answers every sample alike
    model = load_schema(ROOT / "schemas", "cover_letter").model
    assert [s.field for s in score([row], labels, model) if s.accuracy != 1.0] == []
    assert row["prompt_tokens"] == sum(r["prompt_tokens"] for r in log)


def test_retrieved_examples_are_chosen_once_per_long_document_and_sent_with_every_chunk(
        tmp_path: Path, oracle: dict[str, dict[str, Any]]) -> None:
    import json
    import sqlite3

    from extractor.store import LABELS_FILE, Labels

    labels = {w["doc_id"]: w for w in packs.write_packs(tmp_path / "in", pages=60, names=LETTERS[:1],
                                                         formats=["txt"], labels=tmp_path / "labels.jsonl")}
    shown = {}  # two short labeled letters, the examples the pack may be shown
    for line in (ROOT / "bench" / "labels" / "cover_letters.jsonl").read_text().splitlines():
        label = json.loads(line)
        if label["doc_id"] in ("daniel_whitaker.txt", "priya_raman.txt"):
            shown[label.pop("doc_id")] = label
    for doc_id in shown:
        (tmp_path / "in" / doc_id).write_text((ROOT / "inputs" / doc_id).read_text())
    with serving(context_tokens=4096, anchored=oracle) as server:
        config = make_config(tmp_path, server, context_tokens=4096, examples="similar:1")
        with Labels(config.layout.journal) as store:
            for doc_id, values in shown.items():
                for name, value in values.items():
                    store.add(doc_id, name, value, source="labels.jsonl", content_sha256=None, kind=LABELS_FILE)
        summary = runner.run(config)
        log = server_log(server)
    rows = {r["doc_id"]: r for r in pl.read_parquet(config.layout.results).to_dicts()}
    (pack,) = labels
    assert summary.failed == 0 and rows[pack]["status"] == "ok" and rows[pack]["chunks"] > 5
    text = read_text(tmp_path / "in" / pack, max_chars=10**9, timeout_s=60).text
    mine = [r for r in log if _inner(r["first_user"]) in text]
    assert len(mine) == rows[pack]["chunks"] and not [r for r in mine if r["status"] != 200]
    # one choice of examples for the whole document: every chunk's request carries the same second system message
    examples = {next(m["content"] for m in r["messages"][1:] if m["role"] == "system") for r in mine}
    assert len(examples) == 1
    (sent,) = examples
    assert sum((ROOT / "inputs" / d).read_text()[:200] in sent for d in shown) == 1, "one example, a labeled one"
    with sqlite3.connect(config.layout.journal) as db:
        (recorded,) = db.execute("SELECT row_json FROM results WHERE doc_id = ?", (pack,)).fetchone()
    assert json.loads(recorded)["examples"] in ([d] for d in shown)
    model = load_schema(ROOT / "schemas", "cover_letter").model
    assert [s.field for s in score([rows[pack]], labels, model) if s.accuracy != 1.0] == []


def test_the_context_is_an_experiment_variant_measured_like_any_other(
        tmp_path: Path, oracle: dict[str, dict[str, Any]]) -> None:
    from extractor.ladder.experiment import ExperimentConfig, run_experiment

    packs.write_packs(tmp_path / "in", pages=60, names=LETTERS[:1], formats=["txt"], labels=tmp_path / "l.jsonl")
    with serving(context_tokens=8192, anchored=oracle) as server:
        config = make_config(tmp_path, server)
        report = run_experiment(ExperimentConfig(settings=config, labels_file=tmp_path / "l.jsonl",
                                                 variants=("context_tokens=4096", "context_tokens=8192")))
        log = server_log(server)
    assert report.exit_code == 0 and not [r for r in log if r["status"] != 200], "each variant's chunks fit"
    overall = {v.spec: v.overall for v in report.variants}
    small, large = overall["context_tokens=4096"], overall["context_tokens=8192"]
    assert small["accuracy"] == large["accuracy"] == 1.0
    # the smaller context asks the same pack in more, smaller requests: what the variant names is what ran
    assert small["requests_per_doc"] > 1.5 * large["requests_per_doc"] > 1.5
    assert small["prompt_tokens_per_doc"] > large["prompt_tokens_per_doc"], "the fixed prompt repeats per chunk"
    assert sum(r["prompt_tokens"] for r in log) == pytest.approx(
        small["prompt_tokens_per_doc"] + large["prompt_tokens_per_doc"])
