"""The CLI as a user runs it: a subprocess, real flags, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, serving, write_docs

pytestmark = pytest.mark.integration  # every test runs the CLI as a subprocess


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([sys.executable, "-m", "extractor", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=cwd, timeout=120)


def test_help_is_fast() -> None:
    best = min(_timed_help() for _ in range(3))
    assert best < 0.5, f"extractor --help took {best:.2f}s"


def _timed_help() -> float:
    started = time.perf_counter()
    result = cli("--help")
    assert result.returncode == 0 and "run" in result.stdout
    return time.perf_counter() - started


def test_schemas_lists_cover_letter() -> None:
    result = cli("schemas")
    assert result.returncode == 0
    assert "cover_letter" in result.stdout


def test_run_exit_codes(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "ok", {"a.txt": "Letter one", "b.md": "Letter two"})
    write_docs(tmp_path / "mixed", {"a.txt": "Letter", "b.txt": "Letter [[fault:400]]"})
    common = ["--base-url", fake_server.base_url, "--output", str(tmp_path / "out"), "--model", "gpt-4o-mini"]
    ok = cli("run", str(tmp_path / "ok"), *common)
    assert ok.returncode == 0, ok.stderr
    assert "2 ok, 0 failed, 0 skipped" in ok.stdout
    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet")
    assert frame.height == 2
    mixed = cli("run", str(tmp_path / "mixed"), *common)
    assert mixed.returncode == 1
    assert "1 ok, 1 failed" in mixed.stdout


def test_a_run_in_a_folder_without_schemas_says_where_it_looked_and_what_to_do(tmp_path: Path) -> None:
    write_docs(tmp_path / "inputs", {"a.txt": "Letter"})
    result = cli("run", "inputs", "--base-url", "http://127.0.0.1:9/v1", cwd=tmp_path)
    assert result.returncode == 2
    assert f"schemas folder schemas does not exist (looked in {tmp_path / 'schemas'})" in result.stderr
    assert "--schemas DIR" in result.stderr and "schemas_dir in extractor.toml" in result.stderr


def test_a_named_model_without_a_server_stops_the_run_before_anything_is_stored(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter"})
    result = cli("run", str(tmp_path / "in"), "--model", "gpt-4.1-mini", "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "model 'gpt-4.1-mini' cannot be reached" in result.stderr
    assert not (tmp_path / "out").exists()


def test_skipped_files_are_named_in_the_summary(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter", "part.stl": bytes(64), "empty.txt": "", "song.mp3": b"ID3\x03"})
    result = cli("run", str(tmp_path / "in"), "--base-url", fake_server.base_url, "--output", str(tmp_path / "out"),
                 "--model", "gpt-4o-mini")
    assert result.returncode == 0, result.stderr
    assert "1 ok, 0 failed, 3 skipped" in result.stdout
    skipped = result.stdout[result.stdout.index("skipped: 3 file(s)"):]
    for name, why in (("part.stl", "unsupported file type '.stl'"), ("song.mp3", "unsupported file type '.mp3'"),
                      ("empty.txt", "empty file")):
        assert f"{name}: {why}" in skipped.replace("\n  ", " "), result.stdout


def test_run_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = cli("run", str(tmp_path / "nope"), "--base-url", "http://127.0.0.1:9/v1")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_schema = cli("run", str(tmp_path), "--schema", "nosuch", "--base-url", "http://127.0.0.1:9/v1")
    assert bad_schema.returncode == 2 and "no schema named 'nosuch'" in bad_schema.stderr
    bad_mode = cli("run", str(tmp_path), "--mode", "xml", "--base-url", "http://127.0.0.1:9/v1")
    assert bad_mode.returncode == 2 and "--mode" in bad_mode.stderr


def test_settings_from_config_file_and_env(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter"})
    (tmp_path / "extractor.toml").write_text(
        f'output_dir = "{tmp_path / "cfg-out"}"\nmodel = "gpt-4o-mini"\nconcurrency = 2\n')
    result = cli("run", str(tmp_path / "in"), "--schemas", str(ROOT / "schemas"), cwd=tmp_path,
                 env={"OPENAI_BASE_URL": fake_server.base_url, "OPENAI_API_KEY": "sk-from-env-123456"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cfg-out" / "cover_letter" / "results.parquet").exists()


def test_sigterm_stops_cleanly_and_keeps_finished_rows(tmp_path: Path) -> None:
    import signal

    with serving(latency_s=0.2) as server:
        write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter {i}" for i in range(60)})
        base = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--base-url", server.base_url,
             "--output", str(tmp_path / "out"), "--model", "gpt-4o-mini", "--concurrency", "2",
             "--schemas", str(ROOT / "schemas")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base)
        time.sleep(2.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet")
    assert 0 < frame.height < 60
    assert set(frame["status"]) == {"ok"}


def test_json_schema_mode_for_servers_without_tools(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": 'Letter [[answer:{"applicant_name": "Mo Diaz"}]]'})
    result = cli("run", str(tmp_path / "in"), "--base-url", fake_server.base_url, "--mode", "json_schema",
                 "--output", str(tmp_path / "out"), "--model", "gpt-4o-mini")
    assert result.returncode == 0, result.stderr
    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet")
    assert frame["applicant_name"].to_list() == ["Mo Diaz"]


def test_missing_model_path_is_a_usage_error(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter"})
    result = cli("run", str(tmp_path / "in"), "--backend", "embedded", "--model-path", str(tmp_path / "no.gguf"),
                 "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no.gguf does not exist" in result.stderr


def test_samples_breakeven_and_finetune_export_from_the_cli(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i} [[vary:seniority=senior|senior|mid]]" for i in range(6)})
    common = ["--output", str(tmp_path / "out"), "--schemas", str(ROOT / "schemas")]
    run = cli("run", str(tmp_path / "in"), "--base-url", fake_server.base_url, "--model", "gpt-4o-mini",
              "--samples", "3", *common)
    assert run.returncode == 0, run.stderr
    assert "self-consistency over 6 sampled document(s)" in run.stdout and "seniority 67%" in run.stdout
    metrics = pl.read_parquet(tmp_path / "out" / "cover_letter" / "metrics.parquet")
    assert metrics.height == 6 and metrics["agree_seniority"].to_list() == [round(2 / 3, 6)] * 6
    breakeven = cli("breakeven", *common)
    assert breakeven.returncode == 0, breakeven.stderr
    assert "Verdict: " in breakeven.stdout and "gpt-4o-mini" in breakeven.stdout
    # Every document was answered 3 times: no unsampled row, so the means are the sampled rows' (K answers).
    assert "documents answered K times" not in breakeven.stdout
    finetune = cli("export", "finetune", "--min-agreement", "0.5", *common)
    assert finetune.returncode == 0, finetune.stderr
    train = tmp_path / "out" / "cover_letter" / "finetune" / "train.jsonl"
    assert "6 agreed at consistency >= 0.5" in finetune.stdout and train.exists()
    report = cli("report", *common)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "out" / "cover_letter" / "report.html").read_text()
    assert "Verdict:" in report.stdout and html.count("<svg") >= 4 and "<script" not in html
    strict = cli("export", "finetune", "--min-agreement", "0.99", *common)
    assert "0 agreed" in strict.stdout or "examples:    0" in strict.stdout


def test_finetune_prices_from_the_config_file(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i}" for i in range(3)})
    common = ["--output", str(tmp_path / "out"), "--schemas", str(ROOT / "schemas")]
    (tmp_path / "extractor.toml").write_text(
        'model = "gpt-4o-mini"\n[finetune_prices."my-tiny-ft"]\ntraining_per_mtok = 0.5\ninput_per_mtok = 0.01\n'
        "cached_input_per_mtok = 0.005\noutput_per_mtok = 0.02\n")
    run = cli("run", str(tmp_path / "in"), "--base-url", fake_server.base_url, *common, cwd=tmp_path)
    assert run.returncode == 0, run.stderr  # the table does not disturb run settings
    result = cli("breakeven", "--target-model", "my-tiny-ft", *common, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "my-tiny-ft" in result.stdout and "$0.5 per Mtok" in result.stdout.replace("$0.50", "$0.5")
