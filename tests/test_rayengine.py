"""`--engine ray`: the same rows as one process, a dead worker's documents retried, a killed driver losing
nothing committed. Each test starts a small local Ray (2 CPUs) and shuts it down; the fake server answers over
HTTP from the test's process, the actors reach it as any client would."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import polars as pl
import pytest

from extractor.errors import Interrupted
from extractor.extraction import rayengine, runner
from extractor.extraction.intake import Intake
from extractor.layout import Layout
from extractor.llm.pricing import Pricer

from .conftest import ROOT, make_config, server_log, serving, write_docs

pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'extractor[ray]'")
pytestmark = pytest.mark.integration  # subprocesses: Ray's own, and the driver of the kill test

LETTER = ("Dear Hiring Team at Example GmbH,\n\nI am applying for the role of Data Engineer {i}. I have {y} years of "
          "experience with Python and SQL.\n\nBest regards,\nPat Doe {i}\npat{i}@example.com\n")
# Columns that say when and where a row was made, not what it is.
CIRCUMSTANCES = ("run_id", "extracted_at", "latency_s")


def letters(folder: Path, n: int) -> dict[str, str]:
    docs = {f"letter_{i:03}.txt": LETTER.format(i=i, y=2 + i % 9) for i in range(n)}
    docs["copy_of_letter_000.txt"] = docs["letter_000.txt"]  # the same bytes twice: paid once
    docs["empty.txt"] = ""  # skipped, on either engine
    write_docs(folder, docs)
    return docs


def results(config: Any) -> pl.DataFrame:
    return pl.read_parquet(config.layout.results).drop(CIRCUMSTANCES).sort("doc_id")


def test_the_ray_engine_gives_the_rows_tokens_and_costs_of_one_process(tmp_path: Path) -> None:
    letters(tmp_path / "in", 24)
    with serving(latency_s=0.02) as server:
        local_config = make_config(tmp_path, server, output_dir=tmp_path / "local")
        local = runner.run(local_config)
        sent_locally = len(server_log(server))
        server.reset()  # the fake server bills a prompt prefix it has seen as cached tokens: start both alike
        remote_config = make_config(tmp_path, server, output_dir=tmp_path / "ray", engine="ray", concurrency=6)
        remote = runner.run(remote_config)
        sent = len(server_log(server))
    assert (remote.ok, remote.skipped, remote.deduplicated) == (local.ok, local.skipped, local.deduplicated) == (
        25, 1, 1)
    assert sent == sent_locally == 24, "each distinct letter asked once, on either engine"
    for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "requests", "not_found_values",
                 "flagged_documents"):
        assert getattr(remote, name) == pytest.approx(getattr(local, name)), name
    # Which request of the run first sends the shared prompt prefix (and so is billed it uncached) depends on the
    # order answers come in, on either engine: per row, cached tokens and cost are compared as their sums above
    # and as the price of the row's own tokens here.
    by_order = ["cached_tokens", "cost_usd"]
    local_rows, ray_rows = results(local_config), results(remote_config)
    pricer = Pricer.for_config(remote_config)
    for row in ray_rows.iter_rows(named=True):
        assert row["cost_usd"] == pytest.approx(
            pricer.cost(row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) or 0.0)
    local_rows, ray_rows = local_rows.drop(by_order), ray_rows.drop(by_order)
    assert ray_rows.columns == local_rows.columns
    differ = [c for c in ray_rows.columns if not ray_rows[c].equals(local_rows[c])]
    assert not differ, {c: (ray_rows[c].to_list()[:3], local_rows[c].to_list()[:3]) for c in differ}
    local_evidence, ray_evidence = (
        pl.read_parquet(Layout.of(tmp_path / out, "cover_letter").evidence).drop(CIRCUMSTANCES, strict=False)
        .sort("doc_id", "field") for out in ("local", "ray"))
    differ = [c for c in ray_evidence.columns if not ray_evidence[c].equals(local_evidence[c])]
    assert not differ, {c: (ray_evidence[c].to_list()[:3], local_evidence[c].to_list()[:3]) for c in differ}


def test_a_worker_killed_mid_run_pays_no_committed_document_twice(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    letters(tmp_path / "in", 40)
    engines: list[rayengine.RayEngine] = []
    start = rayengine.RayEngine.start

    def remembered(*args: Any, **kwargs: Any) -> Any:  # the test's handle on the run's actors
        manager = start(*args, **kwargs)

        class Keep:
            def __enter__(self) -> rayengine.RayEngine:
                engines.append(manager.__enter__())
                return engines[-1]

            def __exit__(self, *exc: Any) -> Any:
                return manager.__exit__(*exc)

        return Keep()

    monkeypatch.setattr(rayengine.RayEngine, "start", remembered)
    killed: list[int] = []

    class KillAfterTen:
        def started(self, total: int, backend: str, model: str) -> None: ...

        def finished(self, row: dict[str, Any], totals: Any) -> None:
            if totals.documents == 10 and not killed:  # kill -9 one actor while others are in flight
                import ray

                pid = ray.get(engines[0].actors[0].pid.remote())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    # 1 s answers: when the kill comes, the dead actor's requests are at the server.
    with serving(latency_s=1.0) as server:
        config = make_config(tmp_path, server, engine="ray", concurrency=8)
        summary = runner.run(config, observer=KillAfterTen())
        log = server_log(server)
    assert killed, "an actor was killed mid-run"
    assert summary.ok == 41 and summary.failed == 0, summary.failures
    with sqlite3.connect(config.layout.journal) as db:
        committed = Counter(doc for (doc,) in db.execute("SELECT doc_id FROM results WHERE status = 'ok'"))
    assert set(committed.values()) == {1}, "no document has two committed rows"
    asked = Counter(entry["first_user"] for entry in log if entry.get("status") == 200)
    again = sum(n - 1 for n in asked.values())
    # Only what the dead actor had in flight (at most its share of the concurrency, 4) can be asked again: its
    # answers never reached the driver. No committed document was. The first asking of a re-sent document need
    # not be in the log (the server's handler is cancelled when its client dies; a fresh clone's CI saw 0 at
    # 1 s answers), so the re-sending itself is shown by every document ending ok above.
    assert again <= 4, asked


def test_kill_9_of_the_driver_then_a_rerun_sends_only_what_had_no_committed_row(tmp_path: Path) -> None:
    letters(tmp_path / "in", 60)
    with serving(latency_s=0.2) as server:
        args = [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--schema", "cover_letter",
                "--schemas", str(ROOT / "schemas"), "--output", str(tmp_path / "out"), "--base-url",
                server.base_url, "--model", "gpt-4o-mini", "--concurrency", "4", "--engine", "ray",
                "--no-progress"]
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-0000000000", "PYTHONPATH": str(ROOT)}
        journal = Layout.of(tmp_path / "out", "cover_letter").journal
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and _committed(journal) < 8:
                time.sleep(0.2)
            os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its Ray must not keep sending either
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        time.sleep(1.0)  # anything still in flight from the dead driver's actors has landed by now
        committed = _committed(journal)
        assert 8 <= committed < 60, "killed mid-run"
        before = len(server_log(server))
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        rerun = [entry for entry in server_log(server)[before:] if entry.get("status") == 200]
        with contextlib.suppress(ProcessLookupError):  # what the dead driver's Ray left in its session, if any
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(rerun) == 60 - committed, "the rerun asked exactly the letters that had no committed row"
    frame = pl.read_parquet(Layout.of(tmp_path / "out", "cover_letter").results)
    assert (frame["status"] == "ok").sum() == 61


def test_sigterm_stops_a_ray_run_cleanly_and_keeps_its_finished_rows(tmp_path: Path) -> None:
    # ray.init sets a SIGTERM handler of its own (sys.exit): the run's graceful stop must still be the one.
    letters(tmp_path / "in", 60)
    with serving(latency_s=0.2) as server:
        args = [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--schemas", str(ROOT / "schemas"),
                "--output", str(tmp_path / "out"), "--base-url", server.base_url, "--model", "gpt-4o-mini",
                "--concurrency", "2", "--engine", "ray", "--no-progress"]
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-0000000000", "PYTHONPATH": str(ROOT)}
        journal = Layout.of(tmp_path / "out", "cover_letter").journal
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and _committed(journal) < 3:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert "Token authentication" not in stderr, "a local Ray's authentication notice is not printed"
    frame = pl.read_parquet(Layout.of(tmp_path / "out", "cover_letter").results)
    assert 3 <= frame.height < 62 and set(frame["status"]) <= {"ok", "skipped"}  # empty.txt: skipped


SCANNED = {"Schmidt": ["Dear Hiring Team at Orbital Freight,", "I am applying for the role of Data Engineer.",
                       "Best regards,", "Anna Schmidt", "anna.schmidt@web.de"],
           "Okafor": ["Dear Hiring Team at Lumen Labs,", "I would like to join you as a Product Designer.",
                      "Kind regards,", "Chidi Okafor", "chidi.okafor@example.org"]}


@pytest.mark.slow  # OCR: seconds a page on 2 quiet cores, more when they are shared
def test_a_scans_folder_is_read_in_the_actors_with_the_rows_and_evidence_of_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rapidocr", reason="the OCR extra is not installed (pip install -e '.[ocr]')")
    from .test_ocr import png_bytes, small_page

    write_docs(tmp_path / "in", {f"scan_{name.lower()}.png": png_bytes(small_page(lines))
                                 for name, lines in SCANNED.items()})
    answers = {name: {"applicant_name": lines[3], "email": lines[4], "company": lines[0].split(" at ")[1][:-1]}
               for name, lines in SCANNED.items()}
    with serving(answers=answers) as server:
        options: dict[str, Any] = dict(parse_timeout_s=300, ocr_page_timeout_s=300)
        local_config = make_config(tmp_path, server, output_dir=tmp_path / "local", **options)
        local = runner.run(local_config)
        server.reset()
        remote_config = make_config(tmp_path, server, output_dir=tmp_path / "ray", engine="ray", **options)

        async def not_here(self: Any, fresh: Any) -> Any:
            raise AssertionError(f"{fresh.identity.src.doc_id} was read (OCR) in the driver, not in an actor")

        # The actors import extractor afresh in their own processes: only the driver's reading is refused.
        monkeypatch.setattr(Intake, "prepare", not_here)
        remote = runner.run(remote_config)
    assert local.ok == remote.ok == len(SCANNED), (local.failures, remote.failures)
    assert (remote.prompt_tokens, remote.cached_tokens, remote.cost_usd) == pytest.approx(
        (local.prompt_tokens, local.cached_tokens, local.cost_usd))
    # Which document's request is billed the shared prompt prefix uncached is the order answers come in: per row,
    # cached tokens and cost are compared as their sums above (see the first test).
    local_rows, ray_rows = (results(c).drop("cached_tokens", "cost_usd") for c in (local_config, remote_config))
    assert ray_rows.columns == local_rows.columns
    differ = [c for c in ray_rows.columns if not ray_rows[c].equals(local_rows[c])]
    assert not differ, {c: (ray_rows[c].to_list(), local_rows[c].to_list()) for c in differ}
    assert set(ray_rows["company"]) == {"Orbital Freight", "Lumen Labs"}
    local_evidence, ray_evidence = (
        pl.read_parquet(Layout.of(tmp_path / out, "cover_letter").evidence).drop(CIRCUMSTANCES, strict=False)
        .sort("doc_id", "field") for out in ("local", "ray"))
    boxed = ray_evidence.filter(pl.col("bbox").is_not_null())
    assert boxed.height >= 2 * len(SCANNED) and set(boxed["page"]) == {1}, "OCR-read values with a page and box"
    differ = [c for c in ray_evidence.columns if not ray_evidence[c].equals(local_evidence[c])]
    assert not differ, {c: (ray_evidence[c].to_list(), local_evidence[c].to_list()) for c in differ}


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_document_cancelled_past_the_grace_period_keeps_the_tokens_and_cost_it_was_answered(
        tmp_path: Path, engine: str) -> None:
    # Its first answer breaks the schema (answered and billed), the re-ask hangs: SIGTERM then, and the grace
    # period ends with the re-ask in flight. The cancelled row still has the first answer's tokens and cost (on
    # Ray the actor's meter comes back with its cancellation).
    write_docs(tmp_path / "in", {"hangs.txt": "Dear team, I am Pat Doe. [[fault:invalid]][[fault:slow]]"})
    with serving(slow_s=8) as server:  # the re-ask answers after 8 s, long past the grace period
        config = make_config(tmp_path, server, engine=engine, concurrency=2, grace_s=0.5)
        hanging = threading.Event()

        def terminate_mid_request() -> None:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not any(e.get("fault") == "slow" for e in list(server.log)):
                time.sleep(0.05)
            time.sleep(0.3)  # the re-ask is at the server, waiting its 8 s
            hanging.set()
            os.kill(os.getpid(), signal.SIGTERM)

        thread = threading.Thread(target=terminate_mid_request, daemon=True)
        thread.start()
        with pytest.raises(Interrupted):
            runner.run(config)
        thread.join()
        answered = [e for e in server.log if e.get("status") == 200 and e.get("fault") != "slow"]
    assert hanging.is_set() and len(answered) == 1, "one answer came back, the re-ask was cancelled in flight"
    [row] = pl.read_parquet(config.layout.results).to_dicts()
    assert (row["status"], row["error_type"]) == ("failed", "Cancelled")
    counted = {name: sum(e[name] for e in answered) for name in ("prompt_tokens", "completion_tokens",
                                                                  "cached_tokens")}
    assert counted["prompt_tokens"] > 0
    assert {name: row[name] for name in counted} == counted
    price = Pricer.for_config(config).cost(counted["prompt_tokens"], counted["completion_tokens"],
                                           counted["cached_tokens"])
    assert price and row["cost_usd"] == pytest.approx(price)


def _committed(journal: Path) -> int:
    """Distinct letters (not the copy) with a committed ok row."""
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
            return len({sha for (sha,) in db.execute(
                "SELECT content_sha256 FROM results WHERE status = 'ok'")})
    except sqlite3.OperationalError:  # created, not yet migrated
        return 0


def test_without_ray_the_engine_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extractor.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'extractor\[ray\]'"):
        rayengine._import_ray()


def test_the_embedded_model_is_refused_with_why_and_what_to_run_instead(tmp_path: Path) -> None:
    from extractor.config import build_config
    from extractor.errors import ConfigError

    config = build_config(dict(input_dir=tmp_path, schema="cover_letter", schemas_dir=ROOT / "schemas",
                               output_dir=tmp_path / "out", engine="ray"), env={})
    assert config.resolved_backend == "embedded"
    with (pytest.raises(ConfigError, match=r"one request at a time.*--engine local.*--base-url"),
          rayengine.RayEngine.start(config, cast(Any, None), cast(Any, None))):
        pass
