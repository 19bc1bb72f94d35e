"""Shared fixtures: a fault-injecting OpenAI-compatible server on loopback and config builders."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extractor.config import RunConfig, build_config
from extractor.testing.fakeserver import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test starts in an empty working folder, with none of the variables extractor or the OpenAI client
    read (OPENAI_API_KEY, OPENAI_BASE_URL, any OPENAI_* or EXTRACTOR_*): a caller's key, server,
    ./extractor.toml, ./schemas or ./outputs never leak in. A test that needs the repository says so (ROOT)."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "EXTRACTOR_")):
            monkeypatch.delenv(name)
    cwd = tmp_path_factory.mktemp("cwd")  # not tmp_path: a test's own extractor.toml there is read only if asked
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(retry_after_s=0.05)
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def serving(**options: Any) -> Iterator[FakeOpenAI]:
    """A fake server with non-default behaviour (latency, faults, limits), stopped however the test ends."""
    server = FakeOpenAI(**options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def server_log(server: FakeOpenAI) -> list[dict[str, Any]]:
    """The request log, read over HTTP like any client would."""
    with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/_log") as response:
        return json.loads(response.read())


def make_config(tmp_path: Path, server: FakeOpenAI, **overrides: Any) -> RunConfig:
    flags: dict[str, Any] = dict(
        input_dir=tmp_path / "in", schema="cover_letter", schemas_dir=ROOT / "schemas",
        output_dir=tmp_path / "out", base_url=server.base_url, api_key="sk-test-0000000000",
        model="gpt-4o-mini", backoff_initial_s=0.01, backoff_max_s=0.2, concurrency=4)
    flags.update(overrides)
    return build_config(flags, env={})


def settings(output_dir: Path, **overrides: Any) -> RunConfig:
    """The settings of a command that reads a schema's outputs (export, eval, breakeven, report, ...):
    cover_letter from the repository's schemas, outputs under `output_dir`; built directly, so no
    ./extractor.toml and no environment variable can leak in."""
    values: dict[str, Any] = dict(schema="cover_letter", schemas_dir=ROOT / "schemas", output_dir=output_dir)
    values.update(overrides)
    return RunConfig(**values)


def write_docs(folder: Path, docs: dict[str, str | bytes]) -> None:
    for name, content in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def edit_xlsx(path: Path, edits: dict[tuple[str, str], object], extra_row: list[object] | None = None) -> None:
    """Edit cells of an exported results sheet as a reviewer would: {(doc_id, column): value}."""
    import openpyxl

    workbook = openpyxl.load_workbook(path)
    sheet = workbook["results"]
    header = [c.value for c in sheet[1]]
    for cells in sheet.iter_rows(min_row=2):
        for (doc_id, column), value in edits.items():
            if cells[0].value == doc_id:
                cells[header.index(column)].value = value
    if extra_row:
        sheet.append(extra_row)
    workbook.save(path)


def two_page_pdf(second_page: str) -> bytes:
    """A PDF whose first page is a short greeting and whose second page holds `second_page`."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Cover letter\n\nDear hiring team at Orbital Freight,\nplease read on.")
    pdf.add_page()
    pdf.multi_cell(0, 8, second_page)
    return bytes(pdf.output())


def write_experiments(path: Path, variants: list[dict[str, Any]]) -> None:
    """experiments.parquet as `extractor experiment` appends it: for each variant dict, one row per field of its
    `fields` ({name: accuracy}) plus the OVERALL row (`accuracy`), the per-document figures repeated on each.

    Keys: variant, accuracy, fields, and optionally experiment_id, finished_at, model, examples, documents,
    prompt_tokens, completion_tokens, cached_tokens, requests, cost (None: unpriced), latency, agreement,
    not_found. Appends to an existing file, as each experiment does."""
    import polars as pl

    from extractor.table import OVERALL, experiments_schema

    rows: list[dict[str, Any]] = []
    for v in variants:
        spec = v["variant"]
        parts = dict(p.split("=", 1) for p in spec.split(","))
        common = {
            "experiment_id": v.get("experiment_id", "e1"), "finished_at": v.get("finished_at", "2026-01-01T00:00:00"),
            "variant": spec, "schema_version": "v1", "backend": "openai",
            "model": v.get("model", parts.get("model", "gpt-4o-mini")), "examples": v.get(
                "examples", parts.get("examples", "static")), "strategy": "whole", "samples": 1, "run_id": "r1",
            "ok": v.get("documents", 20), "failed": 0,
            "prompt_tokens_per_doc": v.get("prompt_tokens", 2000.0),
            "completion_tokens_per_doc": v.get("completion_tokens", 200.0),
            "cached_tokens_per_doc": v.get("cached_tokens", 0.0), "requests_per_doc": v.get("requests", 1.0),
            "cost_usd_per_doc": v.get("cost"), "latency_s_per_doc": v.get("latency", 1.5), "spent_usd": 0.0,
            "labeled_pool": 24,
        }
        fields: dict[str, float] = v.get("fields", {})
        for name, accuracy in fields.items():
            rows.append({**common, "field": name, "documents": v.get("documents", 20), "accuracy": accuracy,
                         "labeled_values": 20, "agreement": v.get("agreement"), "not_found_share": v.get("not_found")})
        rows.append({**common, "field": OVERALL, "documents": v.get("documents", 20), "accuracy": v["accuracy"],
                     "labeled_values": 20 * max(1, len(fields)), "agreement": v.get("agreement"),
                     "not_found_share": v.get("not_found")})
    frame = pl.DataFrame(rows, schema=experiments_schema())
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        frame = pl.concat([pl.read_parquet(path), frame])
    frame.write_parquet(path)


def load_script(path: Path, name: str) -> Any:
    """A script of scripts/ or bench/ (not a package) imported as module `name`, registered in sys.modules (its
    dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
