"""Self-consistency (K samples, n=K where the server supports it) and drift between versions."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from extractor.config import RunConfig
from extractor.extraction import runner
from extractor.extraction.plan import plan
from extractor.extraction.sampling import draw, scope
from extractor.schemas import load_schema
from extractor.store import Journal
from extractor.testing.fakeserver import FakeOpenAI
from extractor.values.metrics import consensus

from .conftest import ROOT, make_config, server_log, serving, write_docs

COVER = load_schema(ROOT / "schemas", "cover_letter").model


def _metrics(config) -> dict[str, dict]:
    return {r["doc_id"]: r for r in pl.read_parquet(config.schema_output_dir / "metrics.parquet").to_dicts()}


@pytest.mark.parametrize("supports_n", [True, False])
def test_samples_majority_and_agreement(tmp_path: Path, supports_n: bool) -> None:
    with serving(supports_n=supports_n) as server:
        write_docs(tmp_path / "in", {
            "vary.txt": 'Letter [[vary:seniority=senior|senior|mid]] [[vary:skills=["a","b"]|["a"]|["a","b"]]]',
            "steady.txt": "Letter steady",
        })
        config = make_config(tmp_path, server, samples=3)
        summary = runner.run(config)
        log = server_log(server)
    requests = [r for r in log if "vary" in r["first_user"]]
    if supports_n:
        assert len(requests) == 1 and requests[0]["choices"] == 3, "one request with n=3: prompt billed once"
    else:
        assert len(requests) == 3 and all(r["choices"] == 1 for r in requests)
    rows = {r["doc_id"]: r for r in pl.read_parquet(config.schema_output_dir / "results.parquet").to_dicts()}
    assert rows["vary.txt"]["seniority"] == "senior" and rows["vary.txt"]["skills"] == ["a", "b"]
    assert rows["vary.txt"]["prompt_tokens"] == sum(r["prompt_tokens"] for r in requests)
    assert rows["vary.txt"]["completion_tokens"] == sum(r["completion_tokens"] for r in requests)
    metrics = _metrics(config)
    assert (metrics["vary.txt"]["schema_version"], metrics["vary.txt"]["model"]) == (
        rows["vary.txt"]["schema_version"], rows["vary.txt"]["model"])
    assert metrics["vary.txt"]["agree_seniority"] == pytest.approx(2 / 3)
    assert metrics["vary.txt"]["agree_skills"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert metrics["vary.txt"]["agree_applicant_name"] == 1.0
    assert metrics["steady.txt"]["consistency"] == 1.0 and metrics["vary.txt"]["consistency"] < 1.0
    assert summary.sampled == 2
    # steady.txt's samples give no seniority at all: no answer to agree on, not 100% agreement
    assert metrics["steady.txt"].get("agree_seniority") is None
    assert summary.mean_agreement["seniority"] == pytest.approx(2 / 3)
    shares = summary.as_dict()["agreement"]
    assert shares["seniority"] == pytest.approx(2 / 3, abs=1e-6), "run_summary.json holds shares, not sums"
    assert all(0.0 <= v <= 1.0 for v in shares.values())


def test_invalid_samples_count_as_disagreement(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter [[invalid-every-4th]]"})
    config = make_config(tmp_path, fake_server, samples=4)
    runner.run(config)
    metrics = _metrics(config)["a.txt"]
    assert (metrics["samples"], metrics["valid_samples"]) == (4, 3)
    assert metrics["agree_applicant_name"] == pytest.approx(3 / 4)


def test_sample_fraction_draws_the_stated_share_and_keeps_each_decision_as_the_folder_grows(
        tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter {i}" for i in range(24)})
    config = make_config(tmp_path, fake_server, samples=3, sample_fraction=0.25)
    summary = runner.run(config)
    assert summary.sampled == 6, "25% of 24 letters is 6 (independent draws gave 8)"
    chosen = set(_metrics(config))
    assert len(chosen) == 6
    again = runner.run(config)
    assert again.cached == 24 and again.sampled == 0, "the same documents are drawn: their results are reused"
    # Eight more letters: 25% of 32 is 8, the six drawn before stay drawn (their keys do not flip), two new join.
    write_docs(tmp_path / "in", {f"e{i:02}.txt": f"Letter e{i}" for i in range(8)})
    grown = runner.run(config)
    assert grown.cached == 24 and grown.sampled == 2
    assert chosen < set(_metrics(config)) and len(_metrics(config)) == 8
    # Another seed is another draw, exact too (and it takes its own decisions, not the first seed's).
    other = runner.run(make_config(tmp_path, fake_server, samples=3, sample_fraction=0.25, sample_seed=7, force=True))
    assert other.sampled == 8


def test_the_draw_is_exact_to_within_one_document_and_keeps_remembered_decisions() -> None:
    config = RunConfig(samples=3, sample_fraction=0.25)
    for n in (1, 2, 3, 7, 24, 25, 99):
        ids = [f"doc{i}" for i in range(n)]
        assert len(draw(config, ids, {}).sampled) == math.floor(0.25 * n + 0.5)
    ids = [f"doc{i}" for i in range(24)]
    first = draw(config, ids, {})
    remembered = first.new
    assert draw(config, ids, remembered).sampled == first.sampled and draw(config, ids, remembered).new == {}
    more = draw(config, ids + [f"new{i}" for i in range(12)], remembered)
    assert first.sampled < more.sampled and len(more.sampled) == 9
    assert not any(more.new[d] for d in more.new if d.startswith("doc"))
    assert draw(RunConfig(samples=1, sample_fraction=0.25), ids, {}).sampled == frozenset()


def test_a_dry_run_previews_the_draw_without_remembering_it(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i:02}.txt": f"Letter {i}" for i in range(8)})
    config = make_config(tmp_path, fake_server, samples=3, sample_fraction=0.5)
    runner.run(make_config(tmp_path, fake_server))  # a journal exists, with no draw in it
    plan(config)
    with Journal(config.layout.journal) as journal:
        assert journal.sample_decisions(scope(config), [f"d{i:02}.txt" for i in range(8)]) == {}
    assert runner.run(config).sampled == 4


def test_consensus_falls_back_when_no_sample_is_valid() -> None:
    result = consensus(COVER, [None, None])
    assert result.value is None and result.valid_samples == 0 and result.consistency == 0.0


def test_all_samples_invalid_fails_the_document(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {"a.txt": "Letter [[fault:invalid*9]]"})
    config = make_config(tmp_path, fake_server, samples=3)
    summary = runner.run(config)
    row = pl.read_parquet(config.schema_output_dir / "results.parquet").row(0, named=True)
    assert row["status"] == "failed" and "none of the 3 samples" in row["error_message"]
    assert row["prompt_tokens"] > 0 and summary.failed == 1


def test_drift_between_models_is_reported_per_field(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i} [[vary:seniority=senior|mid]]" for i in range(4)}
               | {"same.txt": "Letter same"})
    first = runner.run(make_config(tmp_path, fake_server, model="gpt-4o-mini"))
    assert first.drift == {}
    second = runner.run(make_config(tmp_path, fake_server, model="gpt-4o"))
    (label, drift), = second.drift.items()
    assert "gpt-4o-mini" in label and "(gpt-4o)" in label
    assert drift["documents"] == 5
    assert drift["changed"] == {"seniority": 4}


def test_sampling_under_the_field_strategy_asks_field_questions_and_stores_shares(tmp_path: Path) -> None:
    letter = "Hi, Bob Stone here: bob@stone.io, Berlin. Thanks!"
    with serving(answers={"Bob Stone": {"applicant_name": "Bob Stone"}}) as server:
        write_docs(tmp_path / "one", {"bob.txt": letter})
        runner.run(make_config(tmp_path / "a", server, input_dir=tmp_path / "one", strategy="fields"))
        once = len(server_log(server))
        write_docs(tmp_path / "in", {"bob.txt": letter})
        config = make_config(tmp_path, server, strategy="fields", samples=3)
        summary = runner.run(config)
        log = server_log(server)[once:]
    assert summary.ok == 1 and summary.sampled == 1
    assert log and not any(r["tools"] for r in log), "no whole-schema call: field questions only"
    assert {r["temperature"] for r in log} == {config.sample_temperature}
    assert len(log) == 3 * once, "each sample asked field by field, as the unsampled document was"
    metrics = _metrics(config)["bob.txt"]
    agreements = {k: v for k, v in metrics.items() if k.startswith("agree_") and v is not None}
    assert agreements and all(0.0 <= v <= 1.0 for v in agreements.values())
    assert "agree_company" not in agreements, "a field no sample answered has no agreement"
    shares = summary.as_dict()["agreement"]
    assert shares and all(0.0 <= v <= 1.0 for v in shares.values())
