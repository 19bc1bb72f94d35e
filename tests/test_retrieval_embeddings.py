"""`retrieval = "embeddings"`: retrieved examples ranked by the server's embeddings, through real HTTP."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.config import build_config
from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.llm.pricing import Pricer
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, server_log, serving
from .test_examples import DOCS, journal_rows, request_doc, request_examples, setup


def embedding_calls(server: FakeOpenAI) -> list[dict[str, object]]:
    return [r for r in server_log(server) if r.get("embeddings")]


def test_examples_ranked_by_embeddings_each_text_embedded_once(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config = setup(tmp_path, fake_server, examples="similar:2", retrieval="embeddings")
    summary = runner.run(config)
    assert summary.ok == len(DOCS)
    chats = [r for r in server_log(fake_server) if not r.get("embeddings")]
    sent = {request_doc(r): r for r in chats}
    # the planted near-twin is nearest by these vectors too; never the document or its copy
    assert request_examples(sent["dev_q.txt"])[0] == "dev_twin.txt"
    assert request_examples(sent["nurse_q.txt"])[0] == "nurse_a.txt"
    for doc_id, record in sent.items():
        assert doc_id not in request_examples(record)
        assert not {doc_id, *request_examples(record)} >= {"dev_q.txt", "dev_copy.txt"}
    assert journal_rows(config)["dev_q.txt"]["examples"][0] == "dev_twin.txt"

    # The pool in one request (5 readable labeled letters), then each unlabeled letter once; a labeled
    # letter's own vector serves it as a query too.
    calls = embedding_calls(fake_server)
    assert [c["inputs"] for c in calls] == [5, 1, 1]
    assert {c["model"] for c in calls} == {"text-embedding-3-small"}
    tokens = sum(int(c["prompt_tokens"]) for c in calls)  # type: ignore[call-overload]
    assert summary.embedding_tokens == tokens > 0
    priced = Pricer("text-embedding-3-small", base_url=config.base_url, overrides={}).cost(tokens, 0, 0)
    assert priced is not None and summary.embedding_cost_usd == pytest.approx(priced)
    rows = journal_rows(config)
    assert summary.cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows.values()) + priced)

    # Kept by content hash: the next run embeds nothing, and a new letter only itself.
    fake_server.reset()
    again = runner.run(config)
    assert embedding_calls(fake_server) == [] and again.cached == len(DOCS) and again.embedding_tokens == 0
    (tmp_path / "in" / "dev_new.txt").write_text(DOCS["dev_q.txt"].replace("Ada Lovelace", "Alan Kay")
                                                 .replace("six years", "nine years"), encoding="utf-8")
    runner.run(config)
    assert [c["inputs"] for c in embedding_calls(fake_server)] == [1]


def test_a_server_without_embeddings_stops_the_run_with_what_to_do(tmp_path: Path) -> None:
    with serving(embeddings=False) as server:
        config = setup(tmp_path, server, examples="similar:2", retrieval="embeddings:my-embedder")
        with pytest.raises(ConfigError, match=r"retrieval = embeddings:my-embedder: the server's embeddings "
                                              r"endpoint failed: HTTP 404.*retrieval = bm25"):
            runner.run(config)
        result = CliRunner().invoke(app, [
            "run", str(tmp_path / "in"), "--examples", "similar:2", "--base-url", server.base_url,
            "--output", str(tmp_path / "out"), "--schemas", str(ROOT / "schemas"), "--no-progress",
            "--config", str(_config_file(tmp_path, "embeddings:my-embedder"))],
            env={"OPENAI_API_KEY": "sk-test-0000000000"})
        assert result.exit_code == 2 and "retrieval = bm25" in result.output


def _config_file(tmp_path: Path, retrieval: str) -> Path:
    path = tmp_path / "extractor.toml"
    path.write_text(f'retrieval = "{retrieval}"\n', encoding="utf-8")
    return path


def test_retrieval_is_checked_with_the_settings() -> None:
    with pytest.raises(ConfigError, match="retrieval must be bm25 or embeddings"):
        build_config({"retrieval": "cosine"}, env={})
    with pytest.raises(ConfigError, match="retrieval must be bm25 or embeddings"):
        build_config({"retrieval": "embeddings:"}, env={})
    with pytest.raises(ConfigError, match="needs an OpenAI-compatible server"):
        build_config({"retrieval": "embeddings", "examples": "similar:3"}, env={})  # the embedded model
    assert build_config({"retrieval": "embeddings:bge-m3", "examples": "similar:3", "base_url": "http://x/v1"},
                        env={}).embedding_model == "bge-m3"
    assert build_config({"retrieval": "embeddings"}, env={}).embedding_model == "text-embedding-3-small"


def test_a_dry_run_sends_no_embeddings_request(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    from extractor.extraction.plan import plan

    config = setup(tmp_path, fake_server, examples="similar:2", retrieval="embeddings")
    planned = plan(config)
    assert server_log(fake_server) == [] and len(planned.to_send) == len(DOCS)
    bare = plan(dataclasses.replace(config, examples="static"))
    # ranked by BM25 instead: the examples' lengths are in the estimate all the same
    assert planned.prompt_tokens > bare.prompt_tokens


def test_the_pool_is_embedded_in_batches(tmp_path: Path, fake_server: FakeOpenAI,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from extractor.extraction import retrieval as examples

    monkeypatch.setattr(examples, "EMBED_BATCH", 2)
    config = setup(tmp_path, fake_server, examples="similar:2", retrieval="embeddings")
    runner.run(config)
    assert [c["inputs"] for c in embedding_calls(fake_server)] == [2, 2, 1, 1, 1]  # 5 pool texts, 2 new letters
