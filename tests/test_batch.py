"""`run --batch`: the OpenAI Batch API through the fake server's files and batches endpoints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest
from genai_prices import Usage, calc_price

from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.extraction.prompts import wrap_document
from extractor.ladder.costmodel import observed_from_journal
from extractor.schemas import load_schema
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, serving, write_docs

LETTERS = {f"d{i}.txt": f"Cover letter number {i}." for i in range(4)}


def _results(config) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    path = config.schema_output_dir / "results.parquet"
    return {r["doc_id"]: r for r in pl.read_parquet(path).to_dicts()} if path.exists() else {}


def _sql(config, statement: str) -> None:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(config.schema_output_dir / "journal.sqlite3")
    try:
        db.execute(statement)
        db.commit()
    finally:
        db.close()


def test_submit_then_collect_at_half_price(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {**LETTERS, "bad.txt": "Letter [[fault:invalid]]", "empty.txt": ""})
    config = make_config(tmp_path, fake_server, batch=True)

    first = runner.run(config)
    assert (first.submitted, first.skipped, first.ok, first.exit_code) == (5, 1, 0, 0)
    assert len(first.batches) == 1 and list(fake_server.batches) == first.batches
    assert server_log(fake_server) == [], "nothing is answered before the batch runs"
    assert set(_results(config)) == {"empty.txt"}, "submitted documents have no row yet"

    second = runner.run(config)  # the fake batch is done when first retrieved
    rows = _results(config)
    assert (second.ok, second.failed, second.submitted) == (4, 1, 0)
    log = {r["first_user"]: r for r in server_log(fake_server)}
    for name, text in LETTERS.items():
        row, billed = rows[name], log[wrap_document(text)]
        assert row["status"] == "ok" and row["batch_id"] == first.batches[0] and row["attempts"] == 1
        assert row["prompt_tokens"] == billed["prompt_tokens"]
        assert row["completion_tokens"] == billed["completion_tokens"]
        full = calc_price(Usage(input_tokens=billed["prompt_tokens"], output_tokens=billed["completion_tokens"],
                                cache_read_tokens=billed["cached_tokens"] or None), "gpt-4o-mini").total_price
        assert row["cost_usd"] == pytest.approx(float(full) / 2), "the Batch API bills half"
    assert rows["bad.txt"]["status"] == "failed" and rows["bad.txt"]["error_type"] == "ValidationError"
    found = pl.read_parquet(config.layout.evidence)
    assert set(found["doc_id"]) == set(LETTERS), "batch answers are grounded in their documents too"
    assert "cannot re-ask" in rows["bad.txt"]["error_message"]

    third = runner.run(config)  # the failed document is submitted again; the others are carried
    assert (third.submitted, third.cached, len(fake_server.batches)) == (1, 4, 2)
    fourth = runner.run(config)
    assert _results(config)["bad.txt"]["status"] == "ok" and fourth.ok == 5
    assert observed_from_journal(config.schema_output_dir / "journal.sqlite3", load_schema(ROOT / "schemas",
                                 "cover_letter"), "gpt-4o-mini") is None, "batch rows are not prompting costs"


def test_a_batch_still_running_is_neither_sent_again_nor_rowed(tmp_path: Path) -> None:
    with serving(batch_polls=2) as server:
        write_docs(tmp_path / "in", LETTERS)
        config = make_config(tmp_path, server, batch=True)
        assert runner.run(config).submitted == 4
        for _ in range(2):
            waiting = runner.run(config)
            assert (waiting.pending, waiting.submitted, waiting.ok, len(server.batches)) == (4, 0, 0, 1)
        done = runner.run(config)
        assert (done.ok, done.pending, len(server.batches)) == (4, 0, 1)


def test_documents_an_expired_batch_left_unanswered_are_submitted_again(tmp_path: Path) -> None:
    with serving(batch_expires=True) as server:
        write_docs(tmp_path / "in", LETTERS)
        config = make_config(tmp_path, server, batch=True)
        runner.run(config)
        second = runner.run(config)
        assert (second.ok, second.submitted, len(server.batches)) == (2, 2, 2)
        assert any("ended expired with 2 of 4 document(s) unanswered" in w for w in second.warnings)


def test_a_batch_created_just_before_a_crash_is_adopted_not_paid_again(tmp_path: Path,
                                                                      fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", LETTERS)
    config = make_config(tmp_path, fake_server, batch=True)
    assert runner.run(config).submitted == 4
    _sql(config, "UPDATE batch_submissions SET batch_id = NULL")  # as if killed right after the create call
    adopted = runner.run(config)
    assert (adopted.ok, adopted.submitted, len(fake_server.batches)) == (4, 0, 1)


def test_a_submission_the_provider_never_received_is_sent_again(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", LETTERS)
    config = make_config(tmp_path, fake_server, batch=True)
    runner.run(config)
    # As if killed before the create call: the journal knows a submission no batch carries.
    _sql(config, "UPDATE batch_submissions SET batch_id = NULL, submission_id = 'ghost'")
    _sql(config, "UPDATE batch_documents SET submission_id = 'ghost'")
    again = runner.run(config)
    assert (again.submitted, again.ok, len(fake_server.batches)) == (4, 0, 2)
    assert runner.run(config).ok == 4


def test_dry_run_prices_a_batch_at_the_discount(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    from extractor.extraction.plan import plan

    write_docs(tmp_path / "in", LETTERS)
    full = plan(make_config(tmp_path, fake_server)).cost_usd
    half = plan(make_config(tmp_path, fake_server, batch=True)).cost_usd
    assert full and half == pytest.approx(full / 2)


def test_batch_needs_a_server_and_no_samples(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    with pytest.raises(ConfigError, match="--batch needs"):
        make_config(tmp_path, fake_server, batch=True, base_url=None, api_key=None)
    with pytest.raises(ConfigError, match="samples"):
        make_config(tmp_path, fake_server, batch=True, samples=3)


@pytest.mark.integration
def test_batch_from_the_command_line(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    import os
    import subprocess
    import sys

    write_docs(tmp_path / "in", LETTERS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    command = [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--batch", "--base-url",
               fake_server.base_url, "--model", "gpt-4o-mini", "--output", str(tmp_path / "out"),
               "--schemas", str(ROOT / "schemas"), "--no-progress"]
    submitted = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    assert "4 document(s) submitted" in " ".join(submitted.stdout.split())
    collected = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert collected.returncode == 0 and "4 ok" in collected.stdout
    runs = subprocess.run([sys.executable, "-m", "extractor", "runs", "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert "batch: 4 submitted" in " ".join(runs.stdout.split())


def test_a_plain_run_does_not_pay_again_for_documents_waiting_in_a_batch(tmp_path: Path) -> None:
    with serving(batch_polls=5) as server:
        write_docs(tmp_path / "in", LETTERS)
        assert runner.run(make_config(tmp_path, server, batch=True)).submitted == 4
        plain = runner.run(make_config(tmp_path, server))
        assert (plain.pending, plain.ok, server_log(server)) == (4, 0, [])
        assert any("run with --batch to collect" in w for w in plain.warnings)


def test_a_batch_create_whose_answer_is_lost_is_not_repeated_but_adopted(tmp_path: Path) -> None:
    # The create happened but answered 500: retrying it (as chat completions are) would pay twice.
    with serving(batch_answers_lost=1) as server:
        write_docs(tmp_path / "in", LETTERS)
        config = make_config(tmp_path, server, batch=True)
        lost = runner.run(config)
        assert (lost.submitted, len(server.batches)) == (0, 1)
        assert lost.batch_failed is not None and "could not submit" in lost.batch_failed
        assert lost.exit_code == 1 and "checks whether it was created" in lost.batch_failed
        adopted = runner.run(config)
        assert (adopted.ok, adopted.submitted, len(server.batches)) == (4, 0, 1)


def test_a_server_without_the_batch_api_strands_nothing(tmp_path: Path) -> None:
    from extractor.extraction.plan import plan

    with serving(batch_api=False) as server:
        write_docs(tmp_path / "in", LETTERS)
        failed = runner.run(make_config(tmp_path, server, batch=True))
        assert (failed.submitted, failed.pending, failed.exit_code) == (0, 0, 1)
        assert failed.batch_failed is not None and "HTTP 404" in failed.batch_failed
        assert "no Batch API: run without --batch" in failed.batch_failed
        dry = plan(make_config(tmp_path, server))
        assert (len(dry.to_send), dry.pending) == (4, 0), "nothing waits for a batch that was never created"
        plain = runner.run(make_config(tmp_path, server))
        assert (plain.ok, plain.pending) == (4, 0)
        assert len(server_log(server)) == 4
