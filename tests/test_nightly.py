"""Unattended nightly runs: incremental, durable across kill -9, locked, stoppable, auditable."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.extraction.lock import RunLock, RunLocked
from extractor.extraction.prompts import wrap_document
from extractor.formatting import usd
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, server_log, serving, write_docs


def results(config) -> pl.DataFrame:
    return pl.read_parquet(config.schema_output_dir / "results.parquet")


def test_second_run_sends_nothing_and_carries_results(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i}" for i in range(5)})
    config = make_config(tmp_path, fake_server)
    first = runner.run(config)
    assert first.ok == 5 and first.cached == 0 and len(server_log(fake_server)) == 5
    second = runner.run(config)
    assert len(server_log(fake_server)) == 5, "a second run over unchanged documents must send nothing"
    assert (second.ok, second.cached, second.prompt_tokens, second.cost_usd) == (5, 5, 0, 0.0)
    frame = results(config)
    assert frame.height == 5 and set(frame["status"]) == {"ok"}
    assert set(frame["run_id"]) == {first.run_id}, "carried rows keep the run that paid for them"
    forced = runner.run(make_config(tmp_path, fake_server, force=True))
    assert forced.cached == 0 and len(server_log(fake_server)) == 10


def test_a_folder_left_in_place_does_not_grow_the_journal(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    folder = tmp_path / "in"
    write_docs(folder, {f"d{i}.txt": f"Letter {i}" for i in range(5)})
    config = make_config(tmp_path, fake_server)
    first = runner.run(config)
    journal = config.schema_output_dir / "journal.sqlite3"

    def stored() -> int:
        db = sqlite3.connect(journal)
        try:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            db.close()

    for _ in range(3):  # nights with nothing new: everything carried, nothing stored again
        assert runner.run(config).cached == 5
    assert stored() == 5
    (folder / "d0.txt").rename(folder / "renamed.txt")  # same bytes, new name: one new row says so
    assert runner.run(config).cached == 5
    assert stored() == 6
    frame = results(config)
    assert sorted(frame["doc_id"]) == ["d1.txt", "d2.txt", "d3.txt", "d4.txt", "renamed.txt"]
    assert set(frame["run_id"]) == {first.run_id} and set(frame["status"]) == {"ok"}


def test_changes_are_sent_and_the_table_follows_the_folder(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    folder = tmp_path / "in"
    write_docs(folder, {"keep.txt": "Letter keep", "change.txt": "Letter v1", "gone.txt": "Letter gone",
                        "bad.txt": "Letter [[fault:400]]"})
    config = make_config(tmp_path, fake_server)
    runner.run(config)
    (folder / "change.txt").write_text("Letter v2")
    (folder / "gone.txt").unlink()
    (folder / "new.txt").write_text("Letter new")
    (folder / "moved.txt").write_bytes((folder / "keep.txt").read_bytes())  # same bytes, second name
    second = runner.run(config)
    sent = Counter(r["first_user"] for r in server_log(fake_server))
    assert sent[wrap_document("Letter v2")] == 1 and sent[wrap_document("Letter new")] == 1
    assert sent[wrap_document("Letter keep")] == 1, "the same bytes under another name are not paid twice"
    assert sent[wrap_document("Letter [[fault:400]]")] == 2, "a failed document is tried again next run"
    assert second.cached == 2
    assert sorted(results(config)["doc_id"]) == ["bad.txt", "change.txt", "keep.txt", "moved.txt", "new.txt"]


def test_reverted_file_gets_its_old_result_back_as_newest(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    folder = tmp_path / "in"
    write_docs(folder, {"a.txt": "Letter original"})
    config = make_config(tmp_path, fake_server)
    runner.run(config)
    (folder / "a.txt").write_text("Letter broken [[fault:400*9]]")
    assert runner.run(config).failed == 1
    (folder / "a.txt").write_text("Letter original")
    third = runner.run(config)
    assert third.cached == 1
    assert results(config)["status"].to_list() == ["ok"], "the carried ok row, not the older failure"


def test_another_model_or_schema_version_is_not_reused(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter"})
    runner.run(make_config(tmp_path, fake_server))
    other = runner.run(make_config(tmp_path, fake_server, model="gpt-4o"))
    assert other.cached == 0 and len(server_log(fake_server)) == 2
    hotter = runner.run(make_config(tmp_path, fake_server, model="gpt-4o", temperature=0.7))
    assert hotter.cached == 0 and len(server_log(fake_server)) == 3


@pytest.mark.integration
def test_runs_history_and_jsonl_log(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter", "b.txt": "", "c.txt": "Letter [[fault:400*9]]"})
    config = make_config(tmp_path, fake_server)
    first = runner.run(config)
    second = runner.run(config)
    runs = pl.read_parquet(config.schema_output_dir / "runs.parquet")
    assert runs["run_id"].to_list() == [first.run_id, second.run_id]
    latest = runs.row(1, named=True)
    assert {k: latest[k] for k in ("ok", "failed", "skipped", "cached")} == {"ok": 1, "failed": 1, "skipped": 1,
                                                                              "cached": 1}
    assert runs["schema_version"][0] == first.schema_version and runs["model"][0] == "gpt-4o-mini"
    events = [json.loads(line) for line in
              (config.schema_output_dir / "logs" / f"{second.run_id}.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["run_started", "document", "document", "document", "run_finished"]
    by_doc = {e["doc_id"]: e for e in events if e["event"] == "document"}
    assert by_doc["a.txt"]["cached"] is True
    assert by_doc["c.txt"]["status"] == "failed" and by_doc["c.txt"]["error_type"] == "BadRequestError"
    assert by_doc["c.txt"]["prompt_tokens"] == 0 and by_doc["c.txt"]["attempts"] == 1
    cli = subprocess.run([sys.executable, "-m", "extractor", "runs", "--output", str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert cli.returncode == 0 and second.run_id[:15] in cli.stdout


@pytest.mark.integration
def test_a_second_run_is_refused_while_one_is_active(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter"})
    config = make_config(tmp_path, fake_server)
    with RunLock(config.schema_output_dir / "run.lock"):
        with pytest.raises(RunLocked, match="another run is active"):
            runner.run(config)
        cli = subprocess.run(
            [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--base-url", fake_server.base_url,
             "--output", str(tmp_path / "out"), "--schemas", str(ROOT / "schemas")],
            capture_output=True, text=True, timeout=60)
        assert cli.returncode == 3 and "another run is active" in cli.stderr and f"pid {os.getpid()}" in cli.stderr
    assert len(server_log(fake_server)) == 0
    assert runner.run(config).ok == 1


@pytest.mark.integration
def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter"})
    config = make_config(tmp_path, fake_server)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path\n"
         "from extractor.extraction.lock import RunLock\n"
         f"with RunLock(Path({str(config.schema_output_dir / 'run.lock')!r})):\n"
         "    print('locked', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunLocked):
        runner.run(config)
    holder.kill()
    holder.wait()
    assert runner.run(config).ok == 1


def _cli_run(folder: Path, out: Path, server: FakeOpenAI, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "extractor", "run", str(folder), "--base-url", server.base_url, "--output", str(out),
         "--model", "gpt-4o-mini", "--schemas", str(ROOT / "schemas"), "--no-progress", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finished_in_journal(out: Path, folder: Path) -> set[str]:
    """Documents whose current bytes have an ok row in the journal (what a kill must not lose)."""
    import hashlib

    current = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    db = sqlite3.connect(out / "cover_letter" / "journal.sqlite3")
    try:
        rows = db.execute("SELECT doc_id, content_sha256 FROM results WHERE status = 'ok'").fetchall()
    finally:
        db.close()
    return {doc_id for doc_id, sha in rows if current.get(doc_id) == sha}


@pytest.mark.integration
def test_sigkill_at_random_points_loses_and_repays_nothing(tmp_path: Path) -> None:
    server = FakeOpenAI(latency_s=0.05)
    server.start()
    rng = random.Random(20261128)
    folder, out = tmp_path / "in", tmp_path / "out"
    docs = {f"d{i:03}.txt": f"Letter number {i}" for i in range(120)}
    write_docs(folder, docs)
    try:
        for _ in range(3):
            proc = _cli_run(folder, out, server, "--concurrency", "4")
            time.sleep(rng.uniform(1.0, 2.5))  # interpreter start-up is ~1 s: kills land mid-run
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            journal = out / "cover_letter" / "journal.sqlite3"
            finished = _finished_in_journal(out, folder) if journal.exists() else set()
            before = Counter(r["first_user"] for r in server_log(server))
            final = _cli_run(folder, out, server, "--concurrency", "4")
            _, stderr = final.communicate(timeout=120)
            assert final.returncode == 0, stderr
            after = Counter(r["first_user"] for r in server_log(server))
            for doc_id in finished:
                prompt = wrap_document(docs[doc_id])
                assert after[prompt] == before[prompt], f"{doc_id} had finished before the kill and was sent again"
            frame = pl.read_parquet(out / "cover_letter" / "results.parquet")
            assert sorted(frame["doc_id"]) == sorted(docs), "every document exactly one row"
            assert set(frame["status"]) == {"ok"}
            # evidence.parquet in step: the evidence of exactly the result each document has now
            found = pl.read_parquet(out / "cover_letter" / "evidence.parquet")
            newest = {r["doc_id"]: r["extracted_at"].isoformat(timespec="microseconds")
                      for r in frame.iter_rows(named=True)}
            assert {(r["doc_id"], r["extracted_at"]) for r in found.iter_rows(named=True)} == set(newest.items())
            # next round starts from scratch on fresh inputs
            for name in list(docs):
                docs[name] = docs[name] + " again"
            write_docs(folder, docs)
        counts = Counter(r["first_user"] for r in server_log(server))
    finally:
        server.stop()
    assert all(n <= 2 for n in counts.values()), "at most the ones in flight at the kill are paid twice"


@pytest.mark.integration
def test_graceful_stop_lets_in_flight_documents_finish(tmp_path: Path) -> None:
    with serving(latency_s=1.0) as server:
        write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter {i}" for i in range(20)})
        proc = _cli_run(tmp_path / "in", tmp_path / "out", server, "--concurrency", "4")
        deadline = time.monotonic() + 20
        while len(server_log(server)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        sent_at_signal = len(server_log(server))
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "stopped by SIGTERM" in stderr
    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet")
    assert set(frame["status"]) == {"ok"}, "in-flight documents finished instead of being cancelled"
    assert frame.height >= sent_at_signal >= 4
    assert frame.height < 20


def test_archive_moves_only_durable_ok_inputs(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"sub/a.txt": "Letter", "b.txt": "Letter [[fault:400]]", "c.txt": ""})
    config = make_config(tmp_path, fake_server, archive_dir=tmp_path / "archive")
    runner.run(config)
    assert (tmp_path / "archive" / "sub" / "a.txt").read_text() == "Letter"
    assert not (tmp_path / "in" / "sub" / "a.txt").exists()
    assert (tmp_path / "in" / "b.txt").exists(), "a failed document stays to be tried again"
    assert (tmp_path / "in" / "c.txt").exists()


def test_parse_time_limit_stops_a_slow_parser(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    import copy

    import docx

    document = docx.Document()
    paragraph = document.add_paragraph("Paragraph 0 of a very long application letter.")._p
    for i in range(19999, 0, -1):  # 20000 paragraphs, ~0.4 s to parse here, 4x the limit
        added = copy.deepcopy(paragraph)  # the same XML as add_paragraph, which takes seconds for 20000
        added.xpath(".//w:t")[0].text = f"Paragraph {i} of a very long application letter."
        paragraph.addnext(added)
    (tmp_path / "in").mkdir()
    document.save(tmp_path / "in" / "long.docx")
    write_docs(tmp_path / "in", {"ok.txt": "Letter"})
    config = make_config(tmp_path, fake_server, parse_timeout_s=0.1)
    summary = runner.run(config)
    rows = {r["doc_id"]: r for r in results(config).to_dicts()}
    assert rows["long.docx"]["status"] == "failed"
    assert "parsing took longer than parse_timeout_s = 0.1s" in rows["long.docx"]["error_message"]
    assert rows["long.docx"]["content_sha256"] is not None
    assert rows["ok.txt"]["status"] == "ok" and summary.ok == 1


def test_a_dry_run_names_the_documents_over_the_models_context_window(tmp_path: Path,
                                                                        fake_server: FakeOpenAI) -> None:
    import io

    from rich.console import Console

    from extractor.extraction.plan import plan
    from extractor.views.terminal import print_plan

    # gpt-4o-mini reads 128,000 tokens (genai-prices' table): ~600,000 characters do not fit
    write_docs(tmp_path / "in", {"short.txt": "Letter", "pack.txt": "lorem ipsum " * 50_000})
    planned = plan(make_config(tmp_path, fake_server, max_chars=2_000_000))
    assert planned.context_tokens == 128_000
    assert [d.doc_id for d in planned.over_context] == ["pack.txt"]
    console = Console(file=io.StringIO(), width=200)
    print_plan(planned, console)
    printed = " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]  # as read, not as wrapped
    assert "over the context window: 1 document(s) would not fit the 128,000 tokens gpt-4o-mini reads" in printed
    assert "pack.txt (~" in printed and "each is asked in chunks" in printed and "2 chunks)" in printed


@pytest.mark.integration
def test_dry_run_sends_nothing_and_estimates_from_history(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    from extractor.extraction.plan import plan

    letters = {f"d{i}.txt": f"Letter {i} " + "lorem ipsum " * (20 + 30 * i) for i in range(4)}
    write_docs(tmp_path / "in", letters)
    config = make_config(tmp_path, fake_server)
    fresh = plan(config)
    assert [d.reason for d in fresh.to_send] == ["new"] * 4 and "4 characters per token" in fresh.calibration
    assert len(server_log(fake_server)) == 0
    runner.run(config)
    observed = {r["doc_id"]: r["prompt_tokens"] for r in results(config).to_dicts()}
    write_docs(tmp_path / "in", {"d1.txt": letters["d1.txt"] + " changed", "new.txt": letters["d2.txt"] + "!",
                                 "empty.txt": ""})
    sent_before = len(server_log(fake_server))
    later = plan(config)
    assert len(server_log(fake_server)) == sent_before, "a dry run sends nothing"
    assert {d.doc_id: d.reason for d in later.to_send} == {"d1.txt": "changed", "new.txt": "new"}
    assert later.cached == 3 and later.not_sendable == [("empty.txt", "skipped", "empty file (0 bytes)")]
    assert "calibrated on 4" in later.calibration
    estimate = {d.doc_id: d.prompt_tokens for d in later.to_send}
    assert estimate["new.txt"] == pytest.approx(observed["d2.txt"], rel=0.05)
    assert later.cost_usd is not None and later.cost_usd > 0
    cli = subprocess.run(
        [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--dry-run", "--base-url",
         fake_server.base_url, "--model", "gpt-4o-mini", "--output", str(tmp_path / "out"),
         "--schemas", str(ROOT / "schemas")], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "2 of 6 document(s) would be sent" in cli.stdout
    assert len(server_log(fake_server)) == sent_before
    limited = plan(make_config(tmp_path, fake_server, max_cost_usd=1e-9))
    assert (limited.fit_under_limit, limited.max_cost_usd) == (0, 1e-9)
    roomy = plan(make_config(tmp_path, fake_server, max_cost_usd=later.cost_usd * 2))
    assert roomy.fit_under_limit == 2
    cli = subprocess.run(
        [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--dry-run", "--base-url",
         fake_server.base_url, "--model", "gpt-4o-mini", "--output", str(tmp_path / "out"),
         "--schemas", str(ROOT / "schemas"), "--max-cost", "0.0000001"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "about 0 of 2 document(s) fit" in " ".join(cli.stdout.split())


def _pdf_bytes(text: str | None, encrypt: bool = False) -> bytes:
    import io

    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF()
    pdf.add_page()
    if text is None:
        pdf.rect(20, 20, 100, 60, style="F")  # a page with a picture and no text layer
    else:
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    raw = bytes(pdf.output())
    if not encrypt:
        return raw
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(raw)))
    writer.encrypt(user_password="secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_bad_input_corpus_one_clear_row_each(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    import email.message
    import io
    import zipfile

    rng = random.Random(1)
    good_pdf = _pdf_bytes("Dear team, I am Ravi Kumar and I apply for the analyst job.")
    not_docx = io.BytesIO()
    with zipfile.ZipFile(not_docx, "w") as archive:
        archive.writestr("notes.txt", "not a word document")
    no_body = email.message.EmailMessage()
    no_body["From"] = "a@example.com"
    no_body["Subject"] = "Application"
    corpus: dict[str, str | bytes] = {
        "empty.txt": b"", "blank.md": b"   \n\t\n  ", "random.pdf": rng.randbytes(4000),
        "truncated.pdf": good_pdf[: len(good_pdf) // 2], "encrypted.pdf": _pdf_bytes("secret", encrypt=True),
        "scan.pdf": _pdf_bytes(None), "random.docx": rng.randbytes(3000), "notes.docx": not_docx.getvalue(),
        "latin1.txt": "Bewerbung von Jürgen Müller aus Zürich, Gehalt 90.000 €".encode("cp1252"),
        "utf16.txt": "Candidature de Renée Dupont, Genève".encode("utf-16"),
        "nul.txt": b"Letter from Ann\x00 Lee, data engineer", "huge.txt": b"x" * (20 * 1024 * 1024),
        "letter-without-extension": b"Letter without an extension, from Bo Chen",
        "README": b"# Drop folder\nPut the letters here.", "LICENSE": b"MIT License\nCopyright",
        "sheet.xlsx": b"PK\x03\x04" + rng.randbytes(100),
        "with space.txt": "Letter from Sam Ode", "new\nline.txt": "Letter from Kim Ito",
        "-dash.txt": "Letter from Lu Wei", "naïve résumé ü.txt": "Letter from Zoë Ådne",
        "script.html": b"<html><script>alert(1)</script></html>", "nobody.eml": bytes(no_body),
        "good.pdf": good_pdf, "good.txt": "Letter from Ola Nordmann",
    }
    write_docs(tmp_path / "in", corpus)
    config = make_config(tmp_path, fake_server, parse_timeout_s=20)
    started = time.monotonic()
    runner.run(config)
    assert time.monotonic() - started < 60, "no hang"
    frame = results(config)
    assert sorted(frame["doc_id"]) == sorted(corpus), "exactly one row per file"
    rows = {r["doc_id"]: r for r in frame.to_dicts()}
    expect = {
        "empty.txt": ("skipped", "empty file"), "blank.md": ("skipped", "no text"),
        "random.pdf": ("failed", "not a PDF"), "truncated.pdf": ("failed", "PDF"),
        "encrypted.pdf": ("failed", "encrypted"), "scan.pdf": ("skipped", "no text layer"),
        "random.docx": ("failed", "docx"), "notes.docx": ("failed", "docx"),
        "huge.txt": ("failed", "above the limit"), "sheet.xlsx": ("skipped", "unsupported"),
        "script.html": ("skipped", "no text"), "nobody.eml": ("skipped", "no text body"),
        "README": ("skipped", "not a document"), "LICENSE": ("skipped", "not a document"),
    }
    for doc_id, (status, words) in expect.items():
        assert rows[doc_id]["status"] == status, (doc_id, rows[doc_id]["error_message"])
        assert words in rows[doc_id]["error_message"], (doc_id, rows[doc_id]["error_message"])
    readable = set(corpus) - set(expect)
    for doc_id in readable:
        assert rows[doc_id]["status"] == "ok", (doc_id, rows[doc_id]["error_message"])
    sent = "\n".join(r["first_user"] for r in server_log(fake_server))
    assert "Jürgen Müller aus Zürich" in sent and "Renée Dupont, Genève" in sent and "Ann Lee" in sent


def test_cost_limit_leaves_the_rest_for_the_next_run(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    folder = tmp_path / "in"
    write_docs(folder, {f"d{i:02}.txt": f"Letter number {i:02}" for i in range(20)})  # equal lengths
    probe = runner.run(make_config(tmp_path / "probe", fake_server, input_dir=folder, concurrency=1))
    per_doc = (probe.cost_usd or 0.0) / 20
    assert per_doc > 0
    config = make_config(tmp_path, fake_server, concurrency=1, max_cost_usd=5.5 * per_doc)
    first = runner.run(config)
    # Five documents fit; a sixth would be expected to cost 6 x per_doc > 5.5 x per_doc.
    assert (first.ok, first.deferred, first.documents) == (5, 15, 5)
    assert (first.cost_usd or 0.0) <= config.max_cost_usd  # type: ignore[operator]
    assert first.exit_code == 4 and first.cost_limited and "left for the next run" in first.cost_limited
    assert usd(first.cost_usd) in first.cost_limited, "the real spend, settled in-flight documents included"
    assert results(config).height == 5, "documents not sent have no row yet"
    # Carried results are free: a run whose budget is already too small still carries them.
    tiny = runner.run(make_config(tmp_path, fake_server, concurrency=1, max_cost_usd=per_doc / 2))
    assert (tiny.cached, tiny.deferred, tiny.cost_usd) == (5, 15, 0.0)
    second = runner.run(make_config(tmp_path, fake_server, concurrency=4, max_cost_usd=100 * per_doc))
    assert (second.ok, second.cached, second.deferred, second.exit_code) == (20, 5, 0, 0)
    assert results(config).height == 20
    runs = pl.read_parquet(config.schema_output_dir / "runs.parquet")
    assert runs["deferred"].to_list() == [15, 15, 0]


def test_cost_limit_with_concurrency_counts_what_is_in_flight(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter number {i:02}" for i in range(40)})
    probe = runner.run(make_config(tmp_path / "probe", fake_server, input_dir=tmp_path / "in"))
    per_doc = (probe.cost_usd or 0.0) / 40
    limit = 10.5 * per_doc
    summary = runner.run(make_config(tmp_path, fake_server, concurrency=8, max_cost_usd=limit))
    # The first 8 go out before any cost is known, reserved at their estimated cost (no history: 4
    # characters a token); once documents settle, estimates are scaled by actual / estimated cost.
    assert (summary.ok, summary.deferred) == (10, 30)
    assert (summary.cost_usd or 0.0) <= limit


def test_cost_limit_needs_a_price(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter"})
    with pytest.raises(ConfigError, match="cannot be enforced"):
        runner.run(make_config(tmp_path, fake_server, model="my-self-hosted-model", max_cost_usd=1.0))
    assert len(server_log(fake_server)) == 0


@pytest.mark.integration
def test_cost_limit_from_the_command_line_exits_4(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter a", "b.txt": "Letter b"})
    proc = _cli_run(tmp_path / "in", tmp_path / "out", fake_server, "--max-cost", "0.0000001")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 4, stderr
    assert "cost limit $1e-07 reached after spending $0" in stderr and "2 document(s) were not sent" in stderr
    assert stderr.count("cost limit") == 1 and "cost limit" not in stdout, "said once"
    assert len(server_log(fake_server)) == 0


def test_the_same_bytes_twice_in_one_run_are_paid_once(tmp_path: Path) -> None:
    with serving(latency_s=0.1) as server:
        docs = {f"copy{i}.txt": "The same letter, sent six times." for i in range(6)}
        docs.update({"unique1.txt": "Letter one", "unique2.txt": "Letter two",
                     "bad1.txt": "Broken [[fault:400*9]]", "bad2.txt": "Broken [[fault:400*9]]"})
        write_docs(tmp_path / "in", docs)
        summary = runner.run(make_config(tmp_path, server, concurrency=10))  # all in flight at once
        sent = Counter(r["first_user"] for r in server_log(server))
        forced = runner.run(make_config(tmp_path, server, concurrency=10, force=True))
        sent_forced = Counter(r["first_user"] for r in server_log(server)) - sent
    assert sent[wrap_document("The same letter, sent six times.")] == 1
    assert (summary.ok, summary.cached, summary.failed) == (8, 5, 2)
    # A failed answer is not shared: the other copy tries for itself (a 400 bills nothing).
    assert sent[wrap_document("Broken [[fault:400*9]]")] == 2
    assert sorted(results(make_config(tmp_path, server))["doc_id"]) == sorted(docs)
    # --force re-extracts the bytes once for this run and shares that fresh answer, not an older one.
    assert sent_forced[wrap_document("The same letter, sent six times.")] == 1
    assert (forced.ok, forced.cached) == (8, 5)
    frame = results(make_config(tmp_path, server))
    assert set(frame.filter(pl.col("doc_id").str.starts_with("copy"))["run_id"]) == {forced.run_id}


def test_a_nightly_feed_that_archives_keeps_its_rows(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    from extractor.views.spreadsheets import ExportConfig, export

    drop, done = tmp_path / "drop", tmp_path / "done"
    write_docs(drop, {"mon1.txt": "Letter one", "mon2.txt": "Letter two"})
    config = make_config(tmp_path, fake_server, input_dir=drop, archive_dir=done)
    runner.run(config)
    assert sorted(p.name for p in done.iterdir()) == ["mon1.txt", "mon2.txt"] and not list(drop.iterdir())

    write_docs(drop, {"tue1.txt": "Letter three"})  # the next night: a new drop
    tuesday = runner.run(config)
    frame = results(config)
    assert sorted(frame["doc_id"]) == ["mon1.txt", "mon2.txt", "tue1.txt"], "last night's rows and the history"
    archived = dict(zip(frame["doc_id"], frame["archived_to"], strict=True))
    assert archived == {name: str(done / name) for name in ("mon1.txt", "mon2.txt", "tue1.txt")}
    assert tuesday.ok == 1

    empty = runner.run(config)  # a night with nothing in the drop
    assert results(config).height == 3
    assert any("no documents found" in w for w in empty.warnings)
    sheet = export(ExportConfig(settings=config, fmt="csv", out=tmp_path / "morning.csv"))
    assert sheet.read_text(encoding="utf-8-sig").count("\n") == 4, "header + 3 rows in the morning's sheet"


@pytest.mark.integration
def test_the_summary_says_what_a_person_needs_next(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["COLUMNS"] = "250"  # the summary table on one line per row, as a wide terminal shows it

    def run(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "extractor", "run", str(folder), "--base-url", fake_server.base_url,
             "--output", str(tmp_path / "out"), "--model", "gpt-4o-mini", "--schemas", str(ROOT / "schemas"),
             "--concurrency", "4", *extra], capture_output=True, text=True, env=env, timeout=60)

    write_docs(tmp_path / "in", {f"bad{i}.txt": f"Letter {i} [[fault:400]]" for i in range(7)})
    failing = run(tmp_path / "in")  # progress on: no terminal here, so log lines
    assert failing.returncode == 1, failing.stderr
    text = " ".join(failing.stdout.split())
    assert "failed: 7 document(s)" in text and "and 2 more; see" in text, "the first five, then a count and where"
    assert "bad0.txt: BadRequestError: HTTP 400" in text
    assert "progress: started: 7 document(s)" in failing.stderr and "progress: 7/7 document(s) done" in \
        failing.stderr, "a run without a terminal logs its progress"

    write_docs(tmp_path / "good", {"a.txt": "Letter good", "copy-of-a.txt": "Letter good"})
    first = " ".join(run(tmp_path / "good", "--no-progress").stdout.split())
    assert "2 ok (1 reused without a request, 1 of them copies answered once in this run)" in first
    again = " ".join(run(tmp_path / "good", "--no-progress").stdout.split())
    assert "2 ok (2 reused without a request)" in again and "(nothing was sent)" in again
    assert "documents/s" not in again
