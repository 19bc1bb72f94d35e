"""Settings every command takes from the config file (folders, [prices]), one price lookup for recorded costs and
the break-even, break-even defaults owned by the library, and the report's break-even being the command's."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from extractor.cli import app
from extractor.config import ModelPrice, RunConfig, build_config, given
from extractor.errors import ConfigError
from extractor.extraction import runner
from extractor.ladder import breakeven, costmodel, finetune, verdict
from extractor.ladder.breakeven import BreakEvenConfig, breakeven_analysis
from extractor.ladder.costmodel import Assumptions, observed_from_journal
from extractor.llm.pricing import Pricer, list_cost, unit_prices
from extractor.schemas import load_schema
from extractor.testing.fakeserver import FakeOpenAI
from extractor.views.htmlreport import ReportConfig, build_report

from .conftest import ROOT, make_config, settings, write_docs

FT_PRICE = ModelPrice(input_per_mtok=0.3, output_per_mtok=1.2)
FT_PRICES_TOML = '[prices."my-finetune"]\ninput_per_mtok = 0.3\noutput_per_mtok = 1.2\n'


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([sys.executable, "-m", "extractor", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


# -- 1. [prices."<model>"] reaches the break-even and the report ---------------------------------------------


@pytest.mark.integration
def test_config_file_prices_reach_breakeven_and_report(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i} " + "text " * (20 * i) for i in range(4)})
    (tmp_path / "extractor.toml").write_text('model = "my-finetune"\n' + FT_PRICES_TOML)
    common = ["--output", str(tmp_path / "out"), "--schemas", str(ROOT / "schemas")]
    run = cli("run", str(tmp_path / "in"), "--base-url", fake_server.base_url, *common, cwd=tmp_path)
    assert run.returncode == 0, run.stderr

    result = cli("breakeven", *common, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("my-finetune costs $0.3 per Mtok of input, $0.3 cached and $1.2 of output "
            "([prices.'my-finetune'] in the config file)") in result.stdout
    assert "Verdict:" in result.stdout

    report = cli("report", *common, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Verdict:" in report.stdout and "break-even:" not in report.stdout
    page = (tmp_path / "out" / "cover_letter" / "report.html").read_text()
    assert html.escape("([prices.'my-finetune'] in the config file)") in page


def test_prices_in_the_library_configs(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i}" for i in range(3)})
    runner.run(make_config(tmp_path, fake_server, model="my-finetune"))
    where = settings(tmp_path / "out")
    with_prices = settings(tmp_path / "out", prices={"my-finetune": FT_PRICE})
    with pytest.raises(ConfigError, match="cannot price today's model: no price known for model 'my-finetune'"):
        breakeven_analysis(BreakEvenConfig(settings=where))
    priced = breakeven_analysis(BreakEvenConfig(settings=with_prices))
    assert priced.current_price == ModelPrice(0.3, 1.2, 0.3)
    assert priced.current_price_source == "[prices.'my-finetune'] in the config file"
    data = build_report(ReportConfig(settings=with_prices))
    assert data.breakeven == priced and "breakeven" not in data.notes
    unpriced = build_report(ReportConfig(settings=where))
    assert unpriced.breakeven is None
    assert unpriced.notes["breakeven"].startswith("Cannot price today's model: no price known for model 'my-finetune'")


def test_one_unit_price_lookup_for_recorded_costs_and_the_break_even() -> None:
    assert costmodel.current_prices is unit_prices
    overrides = {"my-finetune": ModelPrice(input_per_mtok=0.3, output_per_mtok=1.2)}
    # The override: cached input at the input rate when it has no cached price, as before.
    pricer = Pricer("my-finetune", base_url="http://127.0.0.1:9/v1", overrides=overrides)
    assert pricer.cost(1000, 200, 400) == (600 * 0.3 + 400 * 0.3 + 200 * 1.2) / 1e6
    assert unit_prices("my-finetune", overrides=overrides) == ModelPrice(0.3, 1.2, 0.3)
    cached = {"m": ModelPrice(input_per_mtok=1.0, output_per_mtok=4.0, cached_input_per_mtok=0.25)}
    assert unit_prices("m", overrides=cached) == ModelPrice(1.0, 4.0, 0.25)
    assert list_cost("m", 1000, 100, 600, overrides=cached) == (400 * 1.0 + 600 * 0.25 + 100 * 4.0) / 1e6
    # genai-prices: the recorded cost of a request is the unit prices times its tokens.
    known = unit_prices("gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    assert known == ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6, cached_input_per_mtok=0.075)
    cost = Pricer("gpt-4o-mini", base_url=None, overrides={}).cost(10_000, 1_000, 4_000)
    assert cost == pytest.approx((6_000 * 0.15 + 4_000 * 0.075 + 1_000 * 0.6) / 1e6)
    assert Pricer("gpt-4o-mini", base_url=None, overrides={}, discount=0.5).cost(10_000, 1_000, 4_000) == \
        pytest.approx(cost / 2)
    # Unknown: None, and one warning that Pricer keeps.
    assert unit_prices("acme-local-7b") is None and list_cost("acme-local-7b", 10, 1, 0) is None
    unknown = Pricer("acme-local-7b", base_url=None, overrides={})
    assert unknown.cost(10, 1, 0) is None and unknown.warning is not None
    assert "[prices.'acme-local-7b']" in unknown.warning
    assert Pricer("acme-local-7b", base_url=None, overrides={}, free=True).cost(10, 1, 0) == 0.0


# -- 2. every command reads output_dir / schemas_dir from the config file ------------------------------------


def _dirs(settings: RunConfig) -> tuple[Path, Path]:
    return settings.schemas_dir, settings.output_dir


def test_one_settings_object_resolves_flags_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('output_dir = "cfg-out"\nschemas_dir = "my-schemas"\nbase_url = "http://file/v1"\n'
                      + FT_PRICES_TOML + '[finetune_prices."ft-x"]\ntraining_per_mtok = 1.0\n')
    env = {"OPENAI_BASE_URL": "http://env/v1"}
    assert _dirs(build_config({}, config, env)) == (Path("my-schemas"), Path("cfg-out")), "relative to the cwd"
    assert _dirs(build_config({"schemas_dir": Path("s"), "output_dir": Path("o")}, config, env)) == (
        Path("s"), Path("o"))
    assert _dirs(build_config({"output_dir": Path("o"), "schemas_dir": None}, config, env)) == (
        Path("my-schemas"), Path("o"))
    settings = build_config({}, config, env)
    assert settings.prices == {"my-finetune": FT_PRICE}
    assert settings.finetune_prices == {"ft-x": {"training_per_mtok": 1.0}}
    assert settings.base_url == "http://file/v1"
    assert build_config({"base_url": "http://flag/v1"}, config, env).base_url == "http://flag/v1"
    assert settings.layout.journal == Path("cfg-out") / "cover_letter" / "journal.sqlite3"
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert _dirs(build_config({}, empty, env)) == (Path("schemas"), Path("outputs"))
    assert build_config({}, empty, env).prices == {}
    assert build_config({}, empty, env).base_url == "http://env/v1"
    assert build_config({}, empty, {}).base_url is None
    typo = tmp_path / "typo.toml"
    typo.write_text('output_dri = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown setting.*output_dri.*known settings:.*output_dir"):
        build_config({}, typo, env)
    with pytest.raises(ConfigError, match="does not exist"):
        build_config({}, tmp_path / "nope.toml", env)
    assert given(a=None, b=0, c="x") == {"b": 0, "c": "x"}


def test_the_config_file_is_read_once_per_command(tmp_path: Path, fake_server: FakeOpenAI,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from extractor import config as config_module

    write_docs(tmp_path / "in", {"a.txt": "Letter A"})
    (tmp_path / "extractor.toml").write_text(f'base_url = "{fake_server.base_url}"\nmodel = "gpt-4o-mini"\n'
                                             f'output_dir = "{tmp_path / "out"}"\n'
                                             f'schemas_dir = "{ROOT / "schemas"}"\n')
    reads: list[Path | None] = []
    original = config_module._read_config_file

    def counting(path: Path | None) -> dict[str, Any]:
        reads.append(path)
        return original(path)

    monkeypatch.setattr(config_module, "_read_config_file", counting)
    monkeypatch.chdir(tmp_path)
    runner_cli = CliRunner()
    for args in (["run", "in", "--no-progress"], ["run", "in", "--dry-run"], ["breakeven"], ["report"],
                 ["export"], ["eval"], ["runs"], ["schemas"], ["export", "finetune"]):
        reads.clear()
        result = runner_cli.invoke(app, args)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        assert len(reads) == 1, f"{args}: the config file was read {len(reads)} times"


@pytest.mark.integration
def test_every_command_reads_folders_from_the_config_file(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    (tmp_path / "my-schemas").mkdir()
    shutil.copy(ROOT / "schemas" / "cover_letter.py", tmp_path / "my-schemas" / "cover_letter.py")
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i} [[vary:seniority=senior|senior|mid]]" for i in range(3)})
    (tmp_path / "extractor.toml").write_text(
        'output_dir = "cfg-out"\nschemas_dir = "my-schemas"\nmodel = "gpt-4o-mini"\n')
    out = tmp_path / "cfg-out" / "cover_letter"
    run = cli("run", str(tmp_path / "in"), "--base-url", fake_server.base_url, "--samples", "3", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (out / "results.parquet").exists()

    schemas = cli("schemas", cwd=tmp_path)
    assert schemas.returncode == 0, schemas.stderr
    assert "cover_letter" in schemas.stdout and "resume" not in schemas.stdout
    runs = cli("runs", cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    assert "gpt-4o-mini" in runs.stdout
    export = cli("export", "--format", "csv", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert (out / "results.csv").exists()
    imported = cli("import-corrections", str(out / "results.csv"), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "3 row(s) read, 0 correction(s)" in imported.stdout
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps({"doc_id": f"d{i}.txt", "language": "en"}) for i in range(3)))
    evaluated = cli("eval", "--labels", str(labels), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    finetune_export = cli("export", "finetune", "--min-agreement", "0.5", cwd=tmp_path)
    assert finetune_export.returncode == 0, finetune_export.stderr
    assert (out / "finetune" / "train.jsonl").exists()
    analysis = cli("breakeven", cwd=tmp_path)
    assert analysis.returncode == 0, analysis.stderr
    assert "Verdict:" in analysis.stdout
    report = cli("report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert (out / "report.html").exists()
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "schemas").exists()

    # --config from anywhere; its relative folders are relative to the working directory, as for `run`.
    named = tmp_path / "named.toml"
    named.write_text(f'output_dir = "{tmp_path / "cfg-out"}"\nschemas_dir = "{tmp_path / "my-schemas"}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert cli("runs", "--config", str(named), cwd=elsewhere).returncode == 0
    listed = cli("schemas", "--config", str(named), cwd=elsewhere)
    assert listed.returncode == 0 and "cover_letter" in listed.stdout
    # A flag beats the file.
    flagged = cli("runs", "--output", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert flagged.returncode == 2 and "nowhere" in flagged.stderr
    typo = tmp_path / "typo.toml"
    typo.write_text('output_dri = "x"\n')
    refused = cli("runs", "--config", str(typo), cwd=tmp_path)
    assert refused.returncode == 2 and "unknown setting(s) in config file: output_dri" in refused.stderr


# -- 3. break-even defaults belong to the library; bad assumptions are ConfigErrors ------------------------


@dataclasses.dataclass(frozen=True)
class _OtherDefaults(Assumptions):
    target_model: str = "other-target"
    training_examples: int = 123
    epochs: int = 7
    reask_rate_finetuned: float = 0.5


def _capture_breakeven(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    monkeypatch.setattr(breakeven, "breakeven_analysis", lambda config: seen.append(config) or "analysis")
    monkeypatch.setattr(verdict, "render_text", lambda result: f"rendered {result}")
    monkeypatch.setattr(breakeven, "verdict_for", lambda config, cost, comparison: "verdict")
    monkeypatch.setattr(verdict, "render_verdict", lambda chosen: f"said {chosen}")
    return seen


def test_breakeven_flags_default_to_the_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no extractor.toml here
    seen = _capture_breakeven(monkeypatch)
    monkeypatch.setattr(costmodel, "Assumptions", _OtherDefaults)
    result = CliRunner().invoke(app, ["breakeven"])
    assert result.exit_code == 0, result.output
    assert seen[-1].assumptions == _OtherDefaults()
    result = CliRunner().invoke(app, ["breakeven", "--epochs", "2", "--target-model", "t", "--reask-rate", "0"])
    assert result.exit_code == 0, result.output
    assert seen[-1].assumptions == _OtherDefaults(epochs=2, target_model="t", reask_rate_finetuned=0.0)


def test_report_and_finetune_export_target_defaults_to_the_library(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)

    @dataclasses.dataclass(frozen=True)
    class OtherFinetune(finetune.FinetuneConfig):
        target_model: str = "other-target"

    seen: list[Any] = []

    class Report:
        def as_text(self) -> str:
            return "exported"

    monkeypatch.setattr(finetune, "FinetuneConfig", OtherFinetune)
    monkeypatch.setattr(finetune, "export_finetune", lambda config: seen.append(config) or Report())
    result = CliRunner().invoke(app, ["export", "finetune"])
    assert result.exit_code == 0, result.output
    assert seen[-1].target_model == "other-target"

    import extractor.views.htmlreport as htmlreport

    monkeypatch.setattr(costmodel, "Assumptions", _OtherDefaults)
    monkeypatch.setattr(htmlreport, "build_report", lambda config: seen.append(config) or None)
    monkeypatch.setattr(htmlreport, "write_report", lambda config, data: tmp_path / "r.html")
    monkeypatch.setattr(htmlreport, "print_report_summary", lambda data, console: None)
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert seen[-1].assumptions == _OtherDefaults()


@pytest.mark.integration
def test_bad_assumptions_are_config_errors(tmp_path: Path) -> None:
    for bad in ({"epochs": -1}, {"training_examples": -5}, {"reask_rate_finetuned": -0.1},
                {"nights_per_month": 0}, {"finetuned_cached_fraction": 2.0}, {"horizon_docs": 0}):
        with pytest.raises(ConfigError):
            Assumptions(**bad)
    result = cli("breakeven", "--epochs", "-1", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and "error: training_examples and epochs must not be negative" in result.stderr
    assert "Traceback" not in result.stderr


# -- 4. the report's break-even is `extractor breakeven`'s ------------------------------------------------------


def test_report_breakeven_is_the_breakeven_analysis(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i} " + "words " * (15 * i) for i in range(6)})
    runner.run(make_config(tmp_path, fake_server))
    assumptions = Assumptions(training_examples=100, epochs=5, reask_rate_finetuned=0.1)
    where = settings(tmp_path / "out")
    config = ReportConfig(settings=where, assumptions=assumptions)
    data = build_report(config)
    expected = breakeven_analysis(BreakEvenConfig(settings=where, assumptions=assumptions))
    assert data.breakeven == expected and data.breakeven.assumptions is assumptions
    # The shorthands fold into the one Assumptions, through dataclasses.replace too.
    price = ModelPrice(input_per_mtok=0.5, output_per_mtok=1.5)
    short = dataclasses.replace(config, target_model="my-tiny-ft", current_price=price)
    assert short.assumptions == dataclasses.replace(assumptions, target_model="my-tiny-ft", current_price=price)
    assert dataclasses.replace(short, quality_versions=2).assumptions == short.assumptions
    # A workload the journal does not have: the command's error, as the report's note.
    journal = tmp_path / "out" / "cover_letter" / "journal.sqlite3"
    db = sqlite3.connect(journal)
    db.execute("UPDATE results SET row_json = json_set(row_json, '$.prompt_tokens', 0)")
    db.commit()
    db.close()
    note = build_report(config).notes["breakeven"]
    with pytest.raises(ConfigError) as error:
        breakeven_analysis(BreakEvenConfig(settings=where, assumptions=assumptions))
    assert note == str(error.value)[:1].upper() + str(error.value)[1:] + "."
    assert "no billed extraction by 'gpt-4o-mini'" in note


# -- 5. observed_from_journal counts each paid extraction once without de-duplicating -------------------------


def test_each_paid_extraction_counts_once(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i}" for i in range(4)})
    runner.run(make_config(tmp_path, fake_server))
    write_docs(tmp_path / "in", {"new.txt": "A letter that arrived on the second night"})
    runner.run(make_config(tmp_path, fake_server))  # four carried over, not paid again; one new
    journal = tmp_path / "out" / "cover_letter" / "journal.sqlite3"
    db = sqlite3.connect(journal)
    try:
        keys = {row[1]: row[5] for row in db.execute("PRAGMA table_info(results)") if row[5]}
    finally:
        db.close()
    assert keys == {"run_id": 1, "doc_id": 2}, "PRIMARY KEY (run_id, doc_id): no row twice under one run"
    observed = observed_from_journal(journal, load_schema(ROOT / "schemas", "cover_letter"), "gpt-4o-mini")
    assert observed is not None and observed.documents == 5 and observed.nights == 2


@pytest.mark.parametrize(("toml", "message"), [
    ('concurrency = "eight"', "setting concurrency must be a whole number, not 'eight'"),
    ("force = 1", "setting force must be true or false, e.g. False, not 1"),
    ('max_cost_usd = "5"', "setting max_cost_usd must be a number, not '5'"),
    ('[prices."my-ft"]\ninput_per_mtok = 0.2', "[prices.'my-ft'] in the config file needs input_per_mtok and "
                                               "output_per_mtok"),
    ('mode = "xml"', "must be one of tools, json_schema, json, md_json, not 'xml'"),
])
def test_config_errors_name_the_setting_the_value_and_what_it_must_be(tmp_path: Path, toml: str,
                                                                       message: str) -> None:
    config = tmp_path / "extractor.toml"
    config.write_text(toml + "\n")
    with pytest.raises(ConfigError) as raised:
        build_config({}, config, {})
    assert message in str(raised.value)
    assert build_config({}, _written(tmp_path, "temperature = 1\n"), {}).temperature == 1, "an int is a number"


def _written(folder: Path, text: str) -> Path:
    path = folder / "other.toml"
    path.write_text(text)
    return path


def test_a_flat_price_is_looked_up_once_and_costs_what_the_table_says() -> None:
    from genai_prices import Usage, calc_price

    from extractor.llm.pricing import Pricer, flat_rates

    assert flat_rates("gpt-4o-mini") is not None
    pricer = Pricer("gpt-4o-mini", base_url=None, overrides={})
    for prompt, completion, cached in ((512, 64, 0), (1200, 300, 1024), (7, 0, 0)):
        expected = float(calc_price(Usage(input_tokens=prompt, output_tokens=completion,
                                          cache_read_tokens=cached or None), "gpt-4o-mini").total_price)
        assert pricer.cost(prompt, completion, cached) == pytest.approx(expected, rel=1e-12)
    assert flat_rates("acme-local-7b") is None
    assert Pricer("acme-local-7b", base_url=None, overrides={}).cost(1, 1, 0) is None
