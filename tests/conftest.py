"""Shared fixtures: a fault-injecting OpenAI-compatible server on loopback and config builders."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extractor.config import RunConfig, build_config
from extractor.fakeserver import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent


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
