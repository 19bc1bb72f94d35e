"""The ladder end to end, through the commands a team types: a nightly run, an experiment over labeled
documents with two variants, `breakeven --target` and `report --target` (rendered in headless Chromium)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.formatting import usd
from extractor.table import OVERALL

from .conftest import ROOT, server_log, serving, write_docs

pytestmark = pytest.mark.integration  # the commands end to end as a team types them, the report in Chromium

CHROMIUM = Path("/usr/bin/chromium")
NAMES = {"ada": "Ada Lovelace", "bob": "Bob Stone", "cy": "Cy Young", "dee": "Dee Ray", "eve": "Eve Moss",
         "fay": "Fay Wray"}
# The documents say who wrote them; the cheaper model gets the name wrong on two of them, the bigger one never.
LETTERS = {f"{key}.txt": f"Dear team, I would like to join you as an engineer. Regards, {name} (letter {key})"
           for key, name in NAMES.items()}
LABELS = [{"doc_id": f"{key}.txt", "applicant_name": name} for key, name in NAMES.items()]
RIGHT = {f"(letter {key})": {"applicant_name": name} for key, name in NAMES.items()}
WRONG = {"(letter ada)": {"applicant_name": "A. Lovelace"}, "(letter bob)": {"applicant_name": "Robert"}}


def test_label_experiment_and_read_the_recommendation(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", LETTERS)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(row) + "\n" for row in LABELS), encoding="utf-8")
    common = ["--output", str(tmp_path / "out"), "--schemas", str(ROOT / "schemas")]
    env = {"OPENAI_API_KEY": "sk-test-0000000000"}
    cli = CliRunner()
    with serving(answers=RIGHT, model_answers={"gpt-4o-mini": WRONG}) as server:
        server_flags = ["--base-url", server.base_url]
        nightly = cli.invoke(app, ["run", str(tmp_path / "in"), "--no-progress", *server_flags, *common], env=env)
        assert nightly.exit_code == 0, nightly.output

        experiment = cli.invoke(app, [
            "experiment", str(tmp_path / "in"), "--labels", str(labels), "--variant", "examples=static",
            "--variant", "model=gpt-4.1-mini,examples=static", "--no-progress", *server_flags, *common], env=env)
        assert experiment.exit_code == 0, experiment.output
        requests = len(server_log(server))

    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "experiments.parquet")
    overall = {r["variant"]: r for r in frame.filter(pl.col("field") == OVERALL).to_dicts()}
    assert overall["examples=static"]["accuracy"] == pytest.approx(4 / 6)
    assert overall["model=gpt-4.1-mini,examples=static"]["accuracy"] == pytest.approx(1.0)
    assert overall["model=gpt-4.1-mini,examples=static"]["cost_usd_per_doc"] > overall["examples=static"][
        "cost_usd_per_doc"] > 0
    assert requests == 6 + 6 + 6  # the nightly run and each variant

    # breakeven --target: the cheapest option reaching 95% is the bigger model, priced at the nightly volume.
    decision = cli.invoke(app, ["breakeven", "--target", "0.95", *common])
    assert decision.exit_code == 0, decision.output
    said = " ".join(decision.output.split())
    assert said.count("Verdict: ") == 1, "one verdict"
    assert re.search(r"Verdict: Use a stronger model with the same prompt, model=gpt-4\.1-mini,examples=static: "
                     r"100\.0% of 6 fields over 6 documents \(95% interval [\d.]+-100\.0%\)", said)
    assert "Volume: 180 documents a month, 6 new documents a night" in said
    lower = cli.invoke(app, ["breakeven", "--target", "0.6", *common])
    assert re.search(r"Verdict: Keep prompting with examples=static: 66\.7% of 6 fields over 6 documents",
                     " ".join(lower.output.split()))

    # One output, the same figures (issue 28): with --docs-per-month, the terminal, --json and the report all
    # price 3,000 documents a month, and the fine-tuned model's month is one number wherever it is shown.
    volume = ["--docs-per-month", "3000", "--target", "0.95", *common]
    terminal = " ".join(cli.invoke(app, ["breakeven", *volume]).output.split())
    as_json = cli.invoke(app, ["breakeven", "--json", *volume])
    assert as_json.exit_code == 0, as_json.output
    figures = json.loads(as_json.output)
    assert figures["cost"]["docs_per_month"] == figures["comparison"]["docs_per_month"] == 3000
    finetuned = figures["cost"]["finetuned"]
    options = {o["label"]: o for o in figures["comparison"]["options"]}
    priced = options["fine-tuned gpt-4.1-nano-2025-04-14 (not measured)"]
    assert priced["per_month_usd"] == pytest.approx(finetuned["per_month_usd"])
    assert priced["training_usd"] == pytest.approx(finetuned["training_usd"])
    assert "180 documents" not in terminal.split("Assumptions:")[0] and "3,000 documents a month" in terminal
    assert figures["verdict"]["text"] in terminal
    page = cli.invoke(app, ["report", "--docs-per-month", "3000", "--target", "0.95", *common])
    assert page.exit_code == 0, page.output
    report_text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", (tmp_path / "out" / "cover_letter" /
                                                                 "report.html").read_text())).split())
    assert "a month (3,000 documents)" in report_text and "a month (180 documents)" not in report_text
    assert figures["verdict"]["text"] in report_text
    for where in (terminal, report_text):
        month = usd(finetuned["per_month_usd"])
        assert where.count(month) >= 2, f"the fine-tuned month {month} in the cost block and the comparison"
        for o in figures["comparison"]["options"]:
            assert usd(o["per_month_usd"]) in where and usd(o["per_doc_usd"]) in where, o["label"]
    # No other figure for the fine-tuned model's month: the training is its own column, once.
    assert usd(finetuned["per_month_usd"] + finetuned["training_usd"] / 3) not in report_text

    # report --target: the page carries the comparison, and Chromium renders it.
    page = cli.invoke(app, ["report", "--target", "0.95", *common])
    assert page.exit_code == 0, page.output
    path = tmp_path / "out" / "cover_letter" / "report.html"
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's headless Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={profile}", "--dump-dom",
                              path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    section = re.search(r'<section id="experiments">(.*?)</section>', dom, re.S)
    assert section is not None
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section.group(1))).split())
    assert "model=gpt-4.1-mini,examples=static" in text and "100.0%" in text and "66.7%" in text
    verdict = re.search(r'<section id="verdict">(.*?)</section>', dom, re.S)
    assert verdict is not None
    assert "Use a stronger model with the same prompt, model=gpt-4.1-mini,examples=static" in " ".join(
        html.unescape(re.sub(r"<[^>]+>", " ", verdict.group(1))).split())

