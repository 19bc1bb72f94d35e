"""Issue 20's "done when" on the shipped invoice schema and its 30 sample invoices (samples/invoices/, labels in
bench/labels/invoices.jsonl): with a server that answers the labels, every item is exactly in line_items.parquet,
the line_items sheet and its CSV, and eval's item scores are 1.0; with one that drops, adds, alters and duplicates
items, eval measures exactly what it did; a person's correction of one item goes all the way through."""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pypdf
import pytest

from extractor.config import RunConfig
from extractor.errors import ExportRefused
from extractor.extraction import runner
from extractor.ladder.experiment import ExperimentConfig, run_experiment
from extractor.ladder.finetune import FinetuneConfig, export_finetune
from extractor.layout import Layout
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.table import OVERALL
from extractor.values.metrics import RecordScore
from extractor.views.spreadsheets import ExportConfig, ImportConfig, export, import_corrections

from .conftest import ROOT, make_config, serving

SAMPLES = ROOT / "samples" / "invoices"
LABELS = ROOT / "bench" / "labels" / "invoices.jsonl"
GOLD = {row["doc_id"]: row for row in map(json.loads, LABELS.read_text(encoding="utf-8").splitlines())}
ITEM_FIELDS = ("description", "quantity", "unit_price", "amount")
SURCHARGE = {"description": "Express surcharge (invented)", "quantity": 1.0, "unit_price": 17.5, "amount": 17.5}


def _answers(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The fake server's oracle: each invoice, recognized by its number in its text, answered with `rows`."""
    return {row["invoice_number"]: {k: v for k, v in row.items() if k != "doc_id"} for row in rows.values()}


@contextlib.contextmanager
def _run(tmp_path: Path, rows: dict[str, dict[str, Any]]) -> Iterator[RunConfig]:
    with serving(answers=_answers(rows)) as server:
        config = make_config(tmp_path, server, input_dir=SAMPLES, schema="invoice")
        summary = runner.run(config)
        assert summary.ok == len(GOLD), summary.failures
        yield config


@pytest.fixture
def answered(tmp_path: Path) -> Iterator[RunConfig]:
    """The sample invoices, run against a server that answers their labels."""
    with _run(tmp_path, GOLD) as config:
        yield config


def _items(rows: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in sorted(rows, key=lambda r: (r["doc_id"], int(r["index"]))):
        out.setdefault(row["doc_id"], []).append(tuple(_number(row[f]) for f in ITEM_FIELDS))
    return out


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return float(value) if isinstance(value, int) else value


GOLD_ITEMS = {doc_id: [tuple(_number(i[f]) for f in ITEM_FIELDS) for i in row["line_items"]]
              for doc_id, row in GOLD.items() if row["line_items"]}


def test_every_sample_item_is_in_the_child_table_the_sheet_and_the_csv(answered: RunConfig) -> None:
    assert sum(map(len, GOLD_ITEMS.values())) == 332  # 30 invoices, 1 to 40 lines each
    layout = answered.layout
    assert _items(pl.read_parquet(layout.child("line_items")).to_dicts()) == GOLD_ITEMS
    xlsx = export(ExportConfig(settings=answered))
    sheet = openpyxl.load_workbook(xlsx)["line_items"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, (c.value for c in cells), strict=True)) for cells in sheet.iter_rows(min_row=2)]
    assert _items(rows) == GOLD_ITEMS
    path = export(ExportConfig(settings=answered, fmt="csv"))
    with Layout.child_export(path, "line_items").open(encoding="utf-8-sig", newline="") as fh:
        assert _items(list(csv.DictReader(fh))) == GOLD_ITEMS
    report = evaluate(EvalConfig(settings=answered, labels_file=LABELS))
    (items,) = [s for s in report.scores if s.field == "line_items"]
    assert isinstance(items, RecordScore)
    assert (items.precision, items.recall, items.fp, items.fn) == (1.0, 1.0, 0, 0)
    assert {name: sub.accuracy for name, sub in items.sub_fields.items()} == dict.fromkeys(ITEM_FIELDS, 1.0)
    right, total = report.fields_right
    assert right == total


def test_eval_measures_exactly_the_items_a_server_dropped_added_altered_and_duplicated(tmp_path: Path) -> None:
    answered = copy.deepcopy(GOLD)
    dropped = added = altered = duplicated = 0
    for n, doc_id in enumerate(sorted(answered)):
        items = answered[doc_id]["line_items"]
        if len(items) >= 2 and n % 2 == 0:  # the last line lost
            items.pop()
            dropped += 1
        if n % 3 == 0:  # a line invented
            items.append(dict(SURCHARGE))
            added += 1
        if n % 5 == 0 and items[0]["amount"]:  # the first line's amount off by 10%, beyond the 2% tolerance
            items[0]["amount"] = round(items[0]["amount"] * 1.1, 2)
            altered += 1
        if n % 7 == 0:  # the same line answered twice
            items.append(dict(items[0]))
            duplicated += 1
    assert dropped and added and altered and duplicated
    with _run(tmp_path, answered) as config:
        report = evaluate(EvalConfig(settings=config, labels_file=LABELS))
    (items,) = [s for s in report.scores if s.field == "line_items"]
    assert isinstance(items, RecordScore)
    labeled = sum(map(len, GOLD_ITEMS.values()))
    assert items.tp == labeled - dropped
    assert items.fn == dropped
    assert items.fp == added + duplicated
    assert items.precision == pytest.approx((labeled - dropped) / (labeled - dropped + added + duplicated))
    assert items.recall == pytest.approx((labeled - dropped) / labeled)
    amount = items.sub_fields["amount"]
    assert (amount.values, amount.right) == (labeled - dropped, labeled - dropped - altered)
    assert all(items.sub_fields[f].accuracy == 1.0 for f in ("description", "quantity", "unit_price"))


def test_a_correction_of_one_item_is_imported_exported_trained_on_and_survives_the_next_run(
        answered: RunConfig, tmp_path: Path) -> None:
    xlsx = export(ExportConfig(settings=answered))
    workbook = openpyxl.load_workbook(xlsx)
    sheet = workbook["line_items"]
    header = [c.value for c in sheet[1]]
    target = next(c for c in sheet.iter_rows(min_row=2) if c[0].value == "de_13.txt" and c[1].value == 1)
    before = target[header.index("amount")].value
    target[header.index("amount")].value = before + 1
    workbook.save(xlsx)
    report = import_corrections(ImportConfig(settings=answered, file=xlsx))
    assert report.applied == [("de_13.txt", "line_items")] and not report.rejected

    def shown() -> float:
        again = openpyxl.load_workbook(export(ExportConfig(settings=answered, overwrite=True)))["line_items"]
        return next(c[header.index("amount")].value for c in again.iter_rows(min_row=2)
                    if c[0].value == "de_13.txt" and c[1].value == 1)

    assert shown() == before + 1
    with serving(answers=_answers(GOLD)) as server:  # the next night: re-extracted (--force), the label stands
        runner.run(make_config(tmp_path, server, input_dir=SAMPLES, schema="invoice", force=True))
    assert shown() == before + 1
    written = export_finetune(FinetuneConfig(settings=answered, val_fraction=0.0))
    assert written.train_path is not None
    for line in written.train_path.read_text(encoding="utf-8").splitlines():
        example = json.loads(line)
        if GOLD["de_13.txt"]["invoice_number"] in json.dumps(example["messages"][1:2]):
            (answer,) = [m for m in example["messages"] if m["role"] == "assistant"]
            values = json.loads(answer.get("content") or answer["tool_calls"][0]["function"]["arguments"])
            assert values["line_items"][1]["amount"] == pytest.approx(before + 1)
            break
    else:
        raise AssertionError("de_13.txt is not in the fine-tuning file")


OFFICE = shutil.which("soffice") or shutil.which("libreoffice")


def _libreoffice(path: Path, fmt: str, outdir: Path) -> Path:
    assert OFFICE is not None
    subprocess.run([OFFICE, "--headless", f"-env:UserInstallation=file://{outdir.parent / 'lo-profile'}",
                    "--convert-to", fmt, "--outdir", str(outdir), str(path)], check=True, capture_output=True,
                   timeout=180)
    return outdir / f"{path.stem}.{fmt}"


@pytest.mark.integration
@pytest.mark.skipif(OFFICE is None, reason="LibreOffice is not installed (Debian package libreoffice-calc)")
def test_libreoffice_keeps_the_line_items_sheet_shows_its_numbers_and_an_edit_there_imports(
        answered: RunConfig, tmp_path: Path) -> None:
    xlsx = export(ExportConfig(settings=answered))
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(_libreoffice(xlsx, "pdf", tmp_path / "pdf")).pages)
    assert "###" not in text, "a number too wide for its column"
    assert "Schrauben M6, 200 Stück" in text and "262.20" in text  # the line_items sheet is printed too
    shutil.copy(_libreoffice(xlsx, "xlsx", tmp_path / "lo"), xlsx)  # opened and saved: no edit
    export(ExportConfig(settings=answered))  # the guard sees the same cells: no refusal
    workbook = openpyxl.load_workbook(xlsx)
    sheet = workbook["line_items"]
    header = [c.value for c in sheet[1]]
    target = next(c for c in sheet.iter_rows(min_row=2) if c[0].value == "ch_25.txt" and c[1].value == 2)
    target[header.index("quantity")].value = 21
    workbook.save(xlsx)
    shutil.copy(_libreoffice(xlsx, "xlsx", tmp_path / "lo2"), xlsx)
    with pytest.raises(ExportRefused, match=r"ch_25\.txt / line_items"):
        export(ExportConfig(settings=answered))
    report = import_corrections(ImportConfig(settings=answered, file=xlsx))
    assert report.applied == [("ch_25.txt", "line_items")], report.rejected
    again = openpyxl.load_workbook(export(ExportConfig(settings=answered)))["line_items"]
    assert [c[header.index("quantity")].value for c in again.iter_rows(min_row=2) if c[0].value == "ch_25.txt"] == [
        2, 4, 21, 2, 3]


def test_an_experiment_scores_line_items_as_eval_does(tmp_path: Path) -> None:
    """experiments.parquet (and so the break-even) weighs the items as eval's headline does, with a row per item
    field: a server that loses the last line of every invoice and gets every first amount wrong."""
    answered = copy.deepcopy(GOLD)
    for row in answered.values():
        row["line_items"][0]["amount"] = round(row["line_items"][0]["amount"] * 1.5, 2)
        if len(row["line_items"]) > 1:
            row["line_items"].pop()
    with serving(answers=_answers(answered)) as server:
        config = make_config(tmp_path, server, input_dir=SAMPLES, schema="invoice")
        report = run_experiment(ExperimentConfig(settings=config, variants=("examples=none",), labels_file=LABELS))
    (variant,) = report.variants
    rows = {r["field"]: r for r in variant.rows}
    scored = evaluate(EvalConfig(settings=variant.settings))
    right, total = scored.fields_right
    assert rows[OVERALL]["accuracy"] == pytest.approx(right / total) and rows[OVERALL]["labeled_values"] == total
    (items,) = [s for s in scored.scores if s.field == "line_items"]
    assert rows["line_items"]["labeled_values"] == items.values
    several = sum(len(r["line_items"]) > 1 for r in GOLD.values())
    assert (items.tp, items.fn, items.fp) == (332 - several, several, 0)
    assert rows["line_items.amount"]["accuracy"] == pytest.approx((332 - several - 30) / (332 - several))
    assert rows["line_items.description"]["accuracy"] == 1.0
    assert total > 30 * 10  # each item value counts, not the list as one field per invoice
