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
    assert re.search(r"Recommendation for 95\.0% of fields right: .*model=gpt-4\.1-mini,examples=static", said)
    assert "Volume: 180 documents a month, 6 a night" in said
    lower = cli.invoke(app, ["breakeven", "--target", "0.6", *common])
    assert re.search(r"Recommendation for 60\.0% of fields right: [^.]*examples=static[^,]",
                     " ".join(lower.output.split()))

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
    assert "For 95.0% of fields right" in text

