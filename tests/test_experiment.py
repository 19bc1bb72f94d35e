"""`extractor experiment`: variants over a labeled sample, through the ordinary runner and real HTTP."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.errors import ConfigError
from extractor.ladder.experiment import (
    ExperimentConfig,
    parse_variant,
    plan_experiment,
    run_experiment,
    sample_of,
    variant_settings,
)
from extractor.llm.pricing import Pricer
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.store import PERSON, Labels
from extractor.table import OVERALL, experiments_schema
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import make_config, server_log, write_docs

ANSWER = '[[answer:{{"applicant_name": "{name}", "seniority": "{level}"}}]]'
LETTERS = {
    "ada.txt": "Dear team, I build Python services and REST APIs on Kubernetes. " + ANSWER.format(
        name="Ada Lovelace", level="senior"),
    "bob.txt": "Dear team, I build Python services and REST APIs with Django and Postgres. " + ANSWER.format(
        name="Bob Stone", level="mid"),
    "cy.txt": "Dear matron, I am a nurse on a cardiology ward caring for patients after surgery. " + ANSWER.format(
        name="Cy Young", level="junior"),
    "dee.txt": "Dear matron, I am a nurse on a surgical ward, medication and wound care. " + ANSWER.format(
        name="Dee Ray", level="senior"),
    "unlabeled.txt": "Dear chef, I bake bread. " + ANSWER.format(name="Eve Bake", level="junior"),
}
LABELS = [  # two values wrong against what the server answers: ada's seniority, cy's name
    {"doc_id": "ada.txt", "applicant_name": "Ada Lovelace", "seniority": "lead"},
    {"doc_id": "bob.txt", "applicant_name": "Bob Stone", "seniority": "mid"},
    {"doc_id": "cy.txt", "applicant_name": "Cyrus Young", "seniority": "junior"},
    {"doc_id": "dee.txt", "applicant_name": "Dee Ray", "seniority": "senior"},
]


def setup(tmp_path: Path, server: FakeOpenAI, **overrides: Any) -> tuple[Any, Path]:
    write_docs(tmp_path / "in", LETTERS)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(row) + "\n" for row in LABELS), encoding="utf-8")
    return make_config(tmp_path, server, **overrides), labels


def docs_in(record: dict[str, Any]) -> list[str]:
    """Which letters a request carried: the document (user message) first, then its retrieved examples (the
    schema's static examples are not letters of this folder)."""
    found = {}
    for message in sorted(record["messages"], key=lambda m: m["role"] != "user"):
        for body in re.findall(r"<document>\n(.*?)\n</document>", message["content"], re.S):
            found.update({d: None for d, text in LETTERS.items() if text == body})
    return list(found)


def test_a_variant_is_comma_separated_settings_with_their_types() -> None:
    assert parse_variant("examples=similar:3") == {"examples": "similar:3"}
    assert parse_variant("model=gpt-4.1-mini, samples=3,temperature=0.2") == {
        "model": "gpt-4.1-mini", "samples": 3, "temperature": 0.2}
    assert parse_variant("schemas=schemas_v2,strategy=whole") == {"schemas_dir": Path("schemas_v2"),
                                                                 "strategy": "whole"}
    assert parse_variant("max_tokens=none") == {"max_tokens": None}
    assert parse_variant("logprobs=true") == {"logprobs": True} and parse_variant("logprobs=off") == {"logprobs": False}
    for bad, said in (("examples", "not setting=value"), ("api_key=sk-x", "cannot vary"),
                      ("samples=three", "must be a number"), ("model=a,model=b", "twice"),
                      ("logprobs=maybe", "true or false"),
                      ("output_dir=/tmp", "cannot vary")):
        with pytest.raises(ConfigError, match=said):
            parse_variant(bad)


def test_a_variant_is_checked_like_any_setting_and_never_archives(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, _ = setup(tmp_path, fake_server, archive_dir=tmp_path / "archive")
    with pytest.raises(ConfigError, match=r"variant 'examples=similar:0'.*--examples"):
        variant_settings(config, "examples=similar:0")
    with pytest.raises(ConfigError, match="variant 'strategy=guess'"):
        variant_settings(config, "strategy=guess")
    variant = variant_settings(config, "examples=none")
    assert variant.archive_dir is None and not variant.batch
    assert variant.layout.root == config.layout.experiment_output / "cover_letter"


def test_two_variants_end_to_end(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, labels = setup(tmp_path, fake_server)
    report = run_experiment(ExperimentConfig(settings=config, variants=("examples=none", "examples=similar:2"),
                                             labels_file=labels))
    assert report.sample == 4 and report.labeled == 4 and report.imported == 8 and report.exit_code == 0
    frame = pl.read_parquet(config.layout.experiments)
    assert frame.schema == pl.Schema(experiments_schema())
    assert set(frame["variant"]) == {"examples=none", "examples=similar:2"}
    assert set(frame["experiment_id"]) == {report.experiment_id}

    # The similar variant's requests carry the 2 nearest labeled letters, never the letter itself;
    # the unlabeled letter is not in the sample.
    log = server_log(fake_server)
    assert len(log) == 8
    first, second = log[:4], log[4:]
    assert all(len(docs_in(r)) == 1 for r in first)
    for record in second:
        doc, *examples = docs_in(record)
        assert len(examples) == 2 and doc not in examples
        assert doc != "unlabeled.txt"
    # a planted near-twin is retrieved first: the other developer / the other nurse
    twins = {"ada.txt": "bob.txt", "bob.txt": "ada.txt", "cy.txt": "dee.txt", "dee.txt": "cy.txt"}
    assert all(docs_in(r)[1] == twins[docs_in(r)[0]] for r in second)

    # Tokens reconcile with what the server reported; the longer prompts show in the per-document figures.
    by_variant = {v.spec: v.overall for v in report.variants}
    for records, spec in ((first, "examples=none"), (second, "examples=similar:2")):
        overall = by_variant[spec]
        assert overall["prompt_tokens_per_doc"] == pytest.approx(sum(r["prompt_tokens"] for r in records) / 4)
        assert overall["completion_tokens_per_doc"] == pytest.approx(sum(r["completion_tokens"] for r in records) / 4)
        assert overall["requests_per_doc"] == 1.0 and overall["cost_usd_per_doc"] > 0
        priced = sum(Pricer.for_config(config).cost(r["prompt_tokens"], r["completion_tokens"], r["cached_tokens"])
                     or 0.0 for r in records)
        assert overall["cost_usd_per_doc"] == pytest.approx(priced / 4)
        assert overall["spent_usd"] == pytest.approx(overall["cost_usd_per_doc"] * 4)
    assert by_variant["examples=similar:2"]["prompt_tokens_per_doc"] > by_variant["examples=none"][
        "prompt_tokens_per_doc"] + 300  # the static examples and two letters

    # Accuracy is eval's scoring of the variant's results: 2 of 8 labeled values wrong.
    for variant in report.variants:
        assert variant.overall["accuracy"] == pytest.approx(6 / 8)
        per_field = {r["field"]: r["accuracy"] for r in variant.rows[1:]}
        assert per_field == {"applicant_name": pytest.approx(0.75), "seniority": pytest.approx(0.75)}
        scored = evaluate(EvalConfig(settings=variant.settings))
        assert {s.field: s.accuracy for s in scored.scores} == per_field
        assert variant.overall["not_found_share"] is not None  # evidence was computed for the values

    # The team's results are untouched: the variants ran in their own output folder.
    assert not config.layout.results.exists()
    assert (config.layout.experiment_output / "cover_letter" / "results.parquet").exists()


def test_running_an_experiment_again_reuses_what_it_paid_for(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, labels = setup(tmp_path, fake_server)
    experiment = ExperimentConfig(settings=config, variants=("examples=static", "examples=similar:1"),
                                  labels_file=labels)
    first = run_experiment(experiment)
    requests = len(server_log(fake_server))
    second = run_experiment(experiment)
    assert len(server_log(fake_server)) == requests  # nothing sent again
    for before, after in zip(first.variants, second.variants, strict=True):
        assert after.summary.cached == 4 and after.overall["spent_usd"] == 0
        for key in ("accuracy", "prompt_tokens_per_doc", "cost_usd_per_doc", "latency_s_per_doc"):
            assert after.overall[key] == before.overall[key]
    frame = pl.read_parquet(config.layout.experiments)
    assert frame["experiment_id"].n_unique() == 2 and second.imported == 0


def test_a_changed_label_changes_the_identity_of_the_results_it_was_an_example_for(
        tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, labels = setup(tmp_path, fake_server)
    experiment = ExperimentConfig(settings=config, variants=("examples=similar:1",), labels_file=labels)
    run_experiment(experiment)
    with Labels(config.layout.journal) as store:  # a person corrects bob's name in the team's store
        store.add("bob.txt", "applicant_name", "Robert Stone", source="sheet (corrections)", content_sha256=None,
                  kind=PERSON)
    fake_server.reset()
    again = run_experiment(ExperimentConfig(settings=config, variants=("examples=similar:1",)))
    # ada.txt was shown bob.txt as its example: only ada is extracted again; bob's own result stays valid
    assert sorted(docs_in(r)[0] for r in server_log(fake_server)) == ["ada.txt"]
    assert again.variants[0].summary.cached == 3
    per_field = {r["field"]: r["accuracy"] for r in again.variants[0].rows[1:]}
    assert per_field["applicant_name"] == pytest.approx(0.5)  # bob's label now differs from the answer


def test_the_sample_is_the_labeled_documents_and_a_limit_draws_stably(tmp_path: Path,
                                                                       fake_server: FakeOpenAI) -> None:
    from extractor.documents import discover

    config, labels = setup(tmp_path, fake_server)
    files = discover(tmp_path / "in")
    labeled = {row["doc_id"]: row for row in LABELS}
    assert [f.doc_id for f in sample_of(files, labeled, None)] == ["ada.txt", "bob.txt", "cy.txt", "dee.txt"]
    two = {f.doc_id for f in sample_of(files, labeled, 2)}
    three = {f.doc_id for f in sample_of(files, labeled, 3)}
    assert len(two) == 2 and two < three and two == {f.doc_id for f in sample_of(files, labeled, 2)}
    report = run_experiment(ExperimentConfig(settings=config, variants=("examples=none",), labels_file=labels,
                                             limit=2))
    assert report.sample == 2 and len(server_log(fake_server)) == 2


def test_without_labels_or_without_labeled_documents_it_says_what_to_do(tmp_path: Path,
                                                                        fake_server: FakeOpenAI) -> None:
    config, _ = setup(tmp_path, fake_server)
    with pytest.raises(ConfigError, match="no labels for schema cover_letter: give --labels"):
        run_experiment(ExperimentConfig(settings=config, variants=("examples=none",)))
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text(json.dumps({"doc_id": "2026/ada.txt", "applicant_name": "Ada"}) + "\n")
    with pytest.raises(ConfigError, match=r"none of the 1 labeled documents is in .*'2026/ada.txt'"):
        run_experiment(ExperimentConfig(settings=config, variants=("examples=none",), labels_file=elsewhere))
    with pytest.raises(ConfigError, match="given twice"):
        run_experiment(ExperimentConfig(settings=config, variants=("examples=none", "examples=none")))


def test_the_command(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", LETTERS)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(row) + "\n" for row in LABELS), encoding="utf-8")
    result = CliRunner().invoke(app, [
        "experiment", str(tmp_path / "in"), "--labels", str(labels), "--variant", "examples=none",
        "--variant", "examples=similar:2", "--base-url", fake_server.base_url, "--model", "gpt-4o-mini",
        "--output", str(tmp_path / "out"), "--schemas", str(Path(__file__).parent.parent / "schemas"),
        "--no-progress"], env={"OPENAI_API_KEY": "sk-test-0000000000"})
    assert result.exit_code == 0, result.output
    assert "examples=similar:2" in result.output and "75.0%" in result.output
    assert "accuracy per field" in result.output
    # 75% against 75% on a handful of documents: a tie, marked as a tie (no star), as the report page does.
    assert "75.0%*" not in result.output and "tie" in result.output
    assert "fields right with its 95% interval: examples=none" in " ".join(result.output.split())
    frame = pl.read_parquet(tmp_path / "out" / "cover_letter" / "experiments.parquet")
    assert frame.filter(pl.col("field") == OVERALL).height == 2
    bad = CliRunner().invoke(app, ["experiment", str(tmp_path / "in"), "--variant", "api_key=x",
                                   "--output", str(tmp_path / "out"),
                                   "--schemas", str(Path(__file__).parent.parent / "schemas")])
    assert bad.exit_code == 2 and "cannot vary" in bad.output


def test_a_variant_naming_a_model_that_cannot_be_reached_stops_before_anything_is_stored(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", LETTERS)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(row) + "\n" for row in LABELS), encoding="utf-8")
    result = CliRunner().invoke(app, [  # no key and no base URL: only the embedded model could answer
        "experiment", str(tmp_path / "in"), "--labels", str(labels), "--variant", "model=gpt-4.1-mini",
        "--output", str(tmp_path / "out"), "--schemas", str(Path(__file__).parent.parent / "schemas"),
        "--no-progress"], env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None})
    assert result.exit_code == 2, result.output
    assert "model 'gpt-4.1-mini' cannot be reached" in result.output and "OPENAI_API_KEY" in result.output
    assert not (tmp_path / "out").exists(), "nothing stored: no journal, no labels, no experiments.parquet"


def test_a_variant_whose_model_the_server_does_not_serve_is_not_measured(tmp_path: Path) -> None:
    from extractor.errors import ExperimentStopped

    from .conftest import serving

    with serving(models={"gpt-4o-mini"}) as server:
        config, labels = setup(tmp_path, server)
        with pytest.raises(ExperimentStopped, match=r"variant model=gpt-4\.1-mini was not measured: .*no model "
                                                    r"'gpt-4\.1-mini' \(HTTP 404"):
            run_experiment(ExperimentConfig(settings=config, variants=("examples=none", "model=gpt-4.1-mini"),
                                            labels_file=labels))
        log = server_log(server)
    frame = pl.read_parquet(config.layout.experiments)
    assert set(frame["variant"]) == {"examples=none"}, "the model that never ran has no figures"
    refused = sum(r["status"] == 404 for r in log)
    assert 1 <= refused <= config.resolved_concurrency, "no document is sent after the first refusal"


def test_a_prompt_version_is_a_variant_too(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, labels = setup(tmp_path, fake_server)
    v2 = tmp_path / "schemas_v2"
    v2.mkdir()
    source = (config.schemas_dir / "cover_letter.py").read_text(encoding="utf-8")
    assert 'INSTRUCTIONS = """\\\n' in source
    (v2 / "cover_letter.py").write_text(source.replace('INSTRUCTIONS = """\\\n',
                                                       'INSTRUCTIONS = """\\\nRead the whole letter first.\n'),
                                        encoding="utf-8")
    report = run_experiment(ExperimentConfig(settings=config, variants=("examples=static", f"schemas={v2}"),
                                             labels_file=labels))
    versions = [v.overall["schema_version"] for v in report.variants]
    assert versions[0] != versions[1]
    assert "Read the whole letter first." in server_log(fake_server)[-1]["messages"][0]["content"]
    assert report.variants[1].summary.cached == 0  # another prompt: another identity, extracted again


def test_a_variant_is_measured_on_its_own_rows_only(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    # The variants share one journal: a document a capped variant never sent must not be measured by the
    # row another variant left for it.
    config, labels = setup(tmp_path, fake_server, max_cost_usd=1e-9)
    free = dataclasses.replace(config, max_cost_usd=None)
    run_experiment(ExperimentConfig(settings=free, variants=("examples=none",), labels_file=labels))
    capped = run_experiment(ExperimentConfig(settings=config, variants=("examples=similar:2",)))
    overall = capped.variants[0].overall
    assert capped.variants[0].summary.deferred == 4 and capped.exit_code == 4
    assert overall["documents"] == 0 and overall["accuracy"] is None and overall["ok"] == 0
    assert len(capped.variants[0].rows) == 1  # no field was measured


def test_a_dry_run_prices_each_variant_and_writes_nothing(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, labels = setup(tmp_path, fake_server)
    experiment = ExperimentConfig(settings=config, variants=("examples=none", "examples=similar:2"),
                                  labels_file=labels)
    planned = plan_experiment(experiment)
    assert not (tmp_path / "out").exists() and server_log(fake_server) == []
    assert planned.sample == 4 and planned.labeled == 4
    (_, none), (_, similar) = planned.variants
    assert [d.doc_id for d in none.to_send] == ["ada.txt", "bob.txt", "cy.txt", "dee.txt"]
    # the examples come from the labels file, though nothing was stored: two letters more in each prompt
    for bare, shown in zip(none.to_send, similar.to_send, strict=True):
        assert shown.prompt_chars > bare.prompt_chars + 2 * 60
    assert planned.cost_usd == pytest.approx((none.cost_usd or 0) + (similar.cost_usd or 0))
    run_experiment(experiment)
    again = plan_experiment(experiment)
    assert all(p.cached == 4 and not p.to_send for _, p in again.variants)


def test_another_schema_module_with_the_same_fields_is_a_variant_and_other_fields_are_refused(
        tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, labels = setup(tmp_path, fake_server)
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cover_letter_v2.py").write_text((config.schemas_dir / "cover_letter.py").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    with pytest.raises(ConfigError, match="schema resume has other fields than cover_letter"):
        run_experiment(ExperimentConfig(settings=config, variants=("schema=resume",), labels_file=labels))
    report = run_experiment(ExperimentConfig(settings=config, variants=(f"schemas={v2},schema=cover_letter_v2",),
                                             labels_file=labels))
    variant = report.variants[0]
    assert variant.settings.layout.root == config.layout.experiment_output / "cover_letter_v2"
    assert variant.overall["accuracy"] == pytest.approx(6 / 8)  # the team's labels reached its own journal
    assert pl.read_parquet(config.layout.experiments)["variant"].to_list()[0].startswith("schemas=")


def test_a_sampled_variant_records_its_agreement(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    config, labels = setup(tmp_path, fake_server)
    report = run_experiment(ExperimentConfig(settings=config, variants=("examples=static", "samples=3"),
                                             labels_file=labels))
    plain, sampled = report.variants
    assert plain.overall["agreement"] is None and all(r["agreement"] is None for r in plain.rows)
    # the fake server answers each letter the same every time: full agreement, on every field
    assert sampled.overall["agreement"] == 1.0 and sampled.summary.sampled == 4
    assert {r["field"]: r["agreement"] for r in sampled.rows[1:]} == {"applicant_name": 1.0, "seniority": 1.0}
