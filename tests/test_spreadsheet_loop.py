"""The spreadsheet loop as a team lives it: export, a person edits, import, eval with a labels file, export
again, fine-tune; no step loses what a person did, and the sheets show every value."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pypdf
import pytest
from openpyxl.utils import get_column_letter
from rich.console import Console

from extractor import store
from extractor.errors import ConfigError, ExportRefused
from extractor.extraction import runner
from extractor.ladder.finetune import FinetuneConfig, export_finetune
from extractor.quality.evaluation import EvalConfig, LabelConflict, evaluate
from extractor.store import LABELS_FILE, PERSON, Labels
from extractor.testing.fakeserver import FakeOpenAI
from extractor.views.spreadsheets import ExportConfig, ImportConfig, export, import_corrections, snapshot_path
from extractor.views.terminal import print_eval

from .conftest import ROOT, edit_xlsx, make_config, settings, write_docs

OFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_office = pytest.mark.skipif(
    OFFICE is None, reason="LibreOffice is not installed (Debian package libreoffice-calc; .ci/run installs it)")


def _answer(**values: object) -> str:
    return f"[[answer:{json.dumps(values, ensure_ascii=False)}]]"


# What the model answers: Jakub's name without its diacritics, the rest right.
LETTERS = {
    "jakub_dvorak.txt": "Jakub writes. " + _answer(
        applicant_name="Jakub Dvorak", email="jakub.dvorak@seznam.cz", phone="+420 603 123 456",
        years_experience=11, seniority="senior", skills=["C", "C++", "FreeRTOS"],
        salary={"min": 95000, "max": 105000, "currency": "CZK", "period": "month"},
        available_from="2027-02-01", notice_period_days=60, language="en"),
    "arjun_mehta.txt": "Arjun writes. " + _answer(
        applicant_name="Arjun Mehta", phone="+65 9123 4567", years_experience=9, seniority="senior",
        salary={"min": 12000, "max": 12000, "currency": "SGD", "period": "month"}, notice_period_days=30,
        language="en"),
    "kenji_sato.txt": "Kenji writes. " + _answer(
        applicant_name="Kenji Sato", years_experience=7.5, seniority="lead",
        salary={"min": 1250000, "max": 1400000, "currency": "JPY", "period": "year"}, language="ja"),
}
# The labels file agrees with the model on Jakub's name (a labeller working from the same flattened text);
# every field of every letter is labelled, as in bench/labels/cover_letters.jsonl.
LABEL_ROWS = [
    {"doc_id": "jakub_dvorak.txt", "applicant_name": "Jakub Dvorak", "email": "jakub.dvorak@seznam.cz",
     "phone": "+420 603 123 456", "location": "Brno, Czech Republic", "desired_role": None, "company": None,
     "years_experience": 11.0, "seniority": "senior", "skills": ["C", "C++", "FreeRTOS"],
     "salary": {"min": 95000.0, "max": 105000.0, "currency": "CZK", "period": "month"},
     "remote_preference": None, "available_from": "2027-02-01", "notice_period_days": 60, "language": "en"},
    {"doc_id": "arjun_mehta.txt", "applicant_name": "Arjun Mehta", "email": None, "phone": "+65 9123 4567",
     "location": "Singapore, Singapore", "desired_role": None, "company": None, "years_experience": 9.0,
     "seniority": "senior", "skills": [], "salary": {"min": 12000.0, "max": 12000.0, "currency": "SGD",
                                                    "period": "month"},
     "remote_preference": None, "available_from": None, "notice_period_days": 30, "language": "en"},
    {"doc_id": "kenji_sato.txt", "applicant_name": "Kenji Sato", "email": None, "phone": None, "location": None,
     "desired_role": None, "company": None, "years_experience": 7.5, "seniority": "lead", "skills": [],
     "salary": {"min": 1250000.0, "max": 1400000.0, "currency": "JPY", "period": "year"},
     "remote_preference": None, "available_from": None, "notice_period_days": None, "language": "ja"},
]


@pytest.fixture
def project(tmp_path: Path, fake_server: FakeOpenAI) -> Path:
    write_docs(tmp_path / "in", LETTERS)
    summary = runner.run(make_config(tmp_path, fake_server))
    assert summary.ok == 3
    return tmp_path


def _labels_file(root: Path) -> Path:
    path = root / "cover_letters.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in LABEL_ROWS), encoding="utf-8")
    return path


def _rows(path: Path, sheet: str = "results") -> tuple[list[str], dict[str, dict[str, openpyxl.cell.Cell]]]:
    worksheet = openpyxl.load_workbook(path)[sheet]
    header = [c.value for c in worksheet[1]]
    return header, {cells[0].value: dict(zip(header, cells, strict=True))
                    for cells in worksheet.iter_rows(min_row=2)}


def _summary(path: Path) -> dict[str, tuple[object, object]]:
    sheet = openpyxl.load_workbook(path)["summary"]
    return {r[0].value: (r[1].value, r[2].value) for r in sheet.iter_rows(min_row=2)}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([sys.executable, "-m", "extractor", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=ROOT, timeout=120)


# -- 1. human work is never lost ---------------------------------------------------------------------------

def test_round_trip_a_labels_file_never_overrides_a_persons_correction(project: Path) -> None:
    """import-corrections -> eval --labels FILE -> export -> export finetune: the person's value stays."""
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    edit_xlsx(sheet, {("jakub_dvorak.txt", "applicant_name"): "Jakub Dvořák"})
    imported = import_corrections(ImportConfig(settings=where, file=sheet))
    assert imported.applied == [("jakub_dvorak.txt", "applicant_name")]

    report = evaluate(EvalConfig(settings=where, labels_file=_labels_file(project)))
    assert report.imported == sum(len(r) - 1 for r in LABEL_ROWS)
    # The file's value for Jakub's name is stored (with its kind and time) but the person's counts.
    assert report.shared_labels == 1
    assert report.conflicts == [LabelConflict("jakub_dvorak.txt", "applicant_name", "Jakub Dvořák",
                                              "results.xlsx (corrections)", "Jakub Dvorak", "cover_letters.jsonl")]
    assert report.label_agreement == 0.0
    names = {s.field: s for s in report.scores}["applicant_name"]
    assert names.accuracy == pytest.approx(2 / 3), "scored against the person's value: the model missed Jakub's"
    console = Console(file=io.StringIO(), width=200)
    print_eval(report, console)
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "labels files vs people's corrections: 0/1 shared value(s) agree (0.0%)" in printed
    assert "jakub_dvorak.txt / applicant_name: person 'Jakub Dvořák'" in printed

    again = export(ExportConfig(settings=where))  # the edit was imported: no refusal
    _, rows = _rows(again)
    jakub = rows["jakub_dvorak.txt"]
    assert jakub["applicant_name"].value == "Jakub Dvořák", "the person's fix survives the labels file"
    assert jakub["corrected"].value == "applicant_name", "corrected names only what a person corrected"
    assert "from_labels" not in jakub, "a labels file is a measuring stick: the sheet shows the model's values"
    assert rows["arjun_mehta.txt"]["location"].value is None, "the labels file has one, the model gave none"
    assert rows["arjun_mehta.txt"]["corrected"].value is None
    assert rows["kenji_sato.txt"]["corrected"].value is None
    summary = _summary(again)
    assert summary["corrected documents"] == (1, pytest.approx(1 / 3))

    tuning = export_finetune(FinetuneConfig(settings=where, val_fraction=0.0))
    assert tuning.labeled == 3
    lines = dict(zip(tuning.train_doc_ids, (json.loads(line) for line in
                                             tuning.train_path.read_text(encoding="utf-8").splitlines()),
                     strict=True))  # type: ignore[union-attr]
    arguments = json.loads(lines["jakub_dvorak.txt"]["messages"][-1]["tool_calls"][0]["function"]["arguments"])
    assert arguments["applicant_name"] == "Jakub Dvořák", "fine-tuning trains on the person's value"
    assert arguments["location"] == "Brno, Czech Republic", "and on the labels file's where no person corrected"

    # The labels file again, and a person's correction made before or after: the person still wins.
    second = evaluate(EvalConfig(settings=where, labels_file=_labels_file(project)))
    assert second.imported == 0, "values the file already gave are not stored again"
    _, rows = _rows(export(ExportConfig(settings=where)))
    assert rows["jakub_dvorak.txt"]["applicant_name"].value == "Jakub Dvořák"


def test_a_persons_correction_wins_in_either_order(tmp_path: Path) -> None:
    with Labels(tmp_path / "journal.sqlite3") as labels:
        labels.add("a.txt", "applicant_name", "Person A", source="results.xlsx (corrections)", content_sha256=None,
                   kind=PERSON)
        labels.add("a.txt", "applicant_name", "File A", source="labels.jsonl", content_sha256=None,
                   kind=LABELS_FILE)
        labels.add("b.txt", "applicant_name", "File B", source="labels.jsonl", content_sha256=None,
                   kind=LABELS_FILE)
        labels.add("b.txt", "applicant_name", "Person B", source="results.xlsx (corrections)", content_sha256=None,
                   kind=PERSON)
        labels.add("c.txt", "applicant_name", "File C", source="labels.jsonl", content_sha256=None,
                   kind=LABELS_FILE)
        assert labels.latest() == {"a.txt": {"applicant_name": "Person A"}, "b.txt": {"applicant_name": "Person B"},
                                   "c.txt": {"applicant_name": "File C"}}
        assert labels.latest(LABELS_FILE)["a.txt"] == {"applicant_name": "File A"}
        newest = labels.newest()["a.txt"]["applicant_name"]
        assert (newest.kind, newest.source) == (PERSON, "results.xlsx (corrections)") and newest.created_at
        with pytest.raises(ValueError, match="kind"):
            labels.add("a.txt", "applicant_name", "x", source="s", content_sha256=None, kind="robot")


def test_labels_stored_before_kinds_are_told_apart_by_their_source(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    store.Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE labels DROP COLUMN kind")  # the journal as version 3 left it
    db.executemany("INSERT INTO labels (doc_id, field, value_json, content_sha256, source, created_at)"
                   " VALUES (?, ?, ?, NULL, ?, '2026-01-01T00:00:00+00:00')",
                   [("a.txt", "applicant_name", '"Person"', "results.xlsx (corrections)"),
                    ("a.txt", "applicant_name", '"File"', "labels.jsonl")])
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    with Labels.open_readonly(path) as labels:  # read as it is: no migration
        assert labels.latest() == {"a.txt": {"applicant_name": "Person"}}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (3,)
    with Labels(path) as labels:
        assert labels.latest() == {"a.txt": {"applicant_name": "Person"}}
    kinds = sqlite3.connect(path).execute("SELECT source, kind FROM labels ORDER BY id").fetchall()
    assert kinds == [("results.xlsx (corrections)", PERSON), ("labels.jsonl", LABELS_FILE)]


def test_labels_that_change_between_export_and_import_are_not_taken_for_edits(project: Path) -> None:
    """Import compares with what the person saw (the export's snapshot), not with today's values."""
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    evaluate(EvalConfig(settings=where, labels_file=_labels_file(project)))  # Kenji's location now "known"
    labels = project / "late.jsonl"
    labels.write_text(json.dumps({"doc_id": "kenji_sato.txt", "applicant_name": "Kenji Satō"}) + "\n")
    evaluate(EvalConfig(settings=where, labels_file=labels))
    edit_xlsx(sheet, {("arjun_mehta.txt", "company"): "Lion City Commerce"})
    report = import_corrections(ImportConfig(settings=where, file=sheet))
    assert report.applied == [("arjun_mehta.txt", "company")], "untouched cells are not a person's corrections"
    _, rows = _rows(export(ExportConfig(settings=where)))
    assert rows["kenji_sato.txt"]["applicant_name"].value == "Kenji Sato", "a labels file does not change a cell"
    assert rows["kenji_sato.txt"]["corrected"].value is None


# -- 2. an export never overwrites edits that were not imported ----------------------------------------------

@pytest.mark.integration
def test_export_refuses_to_overwrite_edits_until_they_are_imported(project: Path) -> None:
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    edit_xlsx(sheet, {("jakub_dvorak.txt", "applicant_name"): "Jakub Dvořák",
                  ("arjun_mehta.txt", "salary.currency"): "sgd"})  # the schema will store "SGD"
    edited = sheet.read_bytes()
    with pytest.raises(ExportRefused) as refused:
        export(ExportConfig(settings=where))
    message = str(refused.value)
    assert str(sheet) in message and f"extractor import-corrections {sheet}" in message and "--overwrite" in message
    assert "2 edited cell(s)" in message and "jakub_dvorak.txt / applicant_name" in message
    assert refused.value.exit_code == 2
    assert sheet.read_bytes() == edited, "nothing was written"

    cli = _cli("export", "--output", str(project / "out"))
    assert cli.returncode == 2, cli.stderr
    assert "were not imported" in cli.stderr and "import-corrections" in cli.stderr
    assert sheet.read_bytes() == edited

    report = import_corrections(ImportConfig(settings=where, file=sheet))
    assert sorted(report.applied) == [("arjun_mehta.txt", "salary"), ("jakub_dvorak.txt", "applicant_name")]
    export(ExportConfig(settings=where))  # imported, even where the schema normalized the value
    _, rows = _rows(sheet)
    assert rows["jakub_dvorak.txt"]["applicant_name"].value == "Jakub Dvořák"
    assert rows["arjun_mehta.txt"]["salary.currency"].value == "SGD"
    export(ExportConfig(settings=where))  # a file as exported is replaced without a word


def test_an_edit_undone_after_its_import_is_an_edit_too(project: Path) -> None:
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    edit_xlsx(sheet, {("kenji_sato.txt", "seniority"): "principal"})
    assert import_corrections(ImportConfig(settings=where, file=sheet)).applied == [("kenji_sato.txt", "seniority")]
    edit_xlsx(sheet, {("kenji_sato.txt", "seniority"): "lead"})  # the reviewer thinks again
    with pytest.raises(ExportRefused, match=r"kenji_sato.txt / seniority"):
        export(ExportConfig(settings=where))
    assert import_corrections(ImportConfig(settings=where, file=sheet)).applied == [("kenji_sato.txt", "seniority")]
    with Labels.open_readonly(project / "out" / "cover_letter" / "journal.sqlite3") as labels:
        assert labels.latest()["kenji_sato.txt"]["seniority"] == "lead"
    export(ExportConfig(settings=where))


def test_overwrite_replaces_an_edited_file(project: Path) -> None:
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    edit_xlsx(sheet, {("kenji_sato.txt", "seniority"): "principal"})
    export(ExportConfig(settings=where, overwrite=True))
    _, rows = _rows(sheet)
    assert rows["kenji_sato.txt"]["seniority"].value == "lead", "the edit is gone, as asked"


@pytest.mark.integration
def test_run_xlsx_keeps_an_edited_sheet_and_says_so(project: Path, fake_server: FakeOpenAI) -> None:
    common = ["--base-url", fake_server.base_url, "--output", str(project / "out"), "--model", "gpt-4o-mini",
              "--no-progress"]
    first = _cli("run", str(project / "in"), *common, "--xlsx", env={"OPENAI_API_KEY": "sk-test-0000000000"})
    assert first.returncode == 0, first.stderr
    sheet = project / "out" / "cover_letter" / "results.xlsx"
    edit_xlsx(sheet, {("kenji_sato.txt", "seniority"): "principal"})
    edited = sheet.read_bytes()
    write_docs(project / "in", {"late.txt": "A late letter " + _answer(applicant_name="Lara Late")})
    second = _cli("run", str(project / "in"), *common, "--xlsx", env={"OPENAI_API_KEY": "sk-test-0000000000"})
    assert second.returncode == 2, second.stderr
    assert f"{sheet} holds 1 edited cell(s) that were not imported (kenji_sato.txt / seniority)" in second.stderr
    assert "4 ok" in second.stdout, "the run itself finished and its results are saved"
    assert sheet.read_bytes() == edited
    third = _cli("run", str(project / "in"), *common, "--xlsx", "--overwrite",
                 env={"OPENAI_API_KEY": "sk-test-0000000000"})
    assert third.returncode == 0, third.stderr
    assert "late.txt" in _rows(sheet)[1]


def test_csv_edits_are_kept_too(project: Path) -> None:
    where = settings(project / "out")
    path = export(ExportConfig(settings=where, fmt="csv"))
    text = path.read_text(encoding="utf-8-sig")
    path.write_text(text.replace("Arjun Mehta", "Arjun K. Mehta"), encoding="utf-8-sig")
    with pytest.raises(ExportRefused, match=r"arjun_mehta.txt / applicant_name"):
        export(ExportConfig(settings=where, fmt="csv"))
    assert import_corrections(ImportConfig(settings=where, file=path)).applied == [
        ("arjun_mehta.txt", "applicant_name")]
    export(ExportConfig(settings=where, fmt="csv"))
    assert "Arjun K. Mehta" in path.read_text(encoding="utf-8-sig")


def test_a_file_that_is_not_an_export_is_not_replaced(project: Path) -> None:
    out = project / "notes.csv"
    out.write_text("who,what\nAnna,call back Tuesday\n", encoding="utf-8")
    with pytest.raises(ExportRefused, match=r"notes.csv exists and is not an extractor export.*--overwrite"):
        export(ExportConfig(settings=settings(project / "out"), fmt="csv", out=out))
    assert "call back" in out.read_text(encoding="utf-8")


@pytest.mark.integration
@needs_office
def test_a_sheet_saved_by_libreoffice_is_told_apart_by_its_cells(project: Path, tmp_path: Path) -> None:
    """Opened and saved without a change: the bytes differ, the cells do not, so the export goes ahead.
    Saved with an edit: the edit is found (the file's export id is kept) and imported."""
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    resaved = _libreoffice(sheet, "xlsx", tmp_path / "lo")
    assert resaved.read_bytes() != sheet.read_bytes()
    shutil.copy(resaved, sheet)
    export(ExportConfig(settings=where))

    edit_xlsx(sheet, {("jakub_dvorak.txt", "notice_period_days"): 90})
    shutil.copy(_libreoffice(sheet, "xlsx", tmp_path / "lo2"), sheet)
    with pytest.raises(ExportRefused, match=r"jakub_dvorak.txt / notice_period_days"):
        export(ExportConfig(settings=where))
    assert import_corrections(ImportConfig(settings=where, file=sheet)).applied == [
        ("jakub_dvorak.txt", "notice_period_days")]
    export(ExportConfig(settings=where))
    assert _rows(sheet)[1]["jakub_dvorak.txt"]["notice_period_days"].value == 90


def _libreoffice(path: Path, fmt: str, outdir: Path, infilter: str | None = None) -> Path:
    assert OFFICE is not None
    command = [OFFICE, "--headless", f"-env:UserInstallation=file://{outdir.parent / 'lo-profile'}"]
    if infilter:
        command.append(f"--infilter={infilter}")
    subprocess.run([*command, "--convert-to", fmt, "--outdir", str(outdir), str(path)], check=True,
                   capture_output=True, timeout=180)
    return outdir / f"{path.stem}.{fmt.split(':')[0]}"


# -- 3. number formats that show the data --------------------------------------------------------------------

@pytest.fixture
def sampled(tmp_path: Path, fake_server: FakeOpenAI) -> Path:
    """Three letters, each answered three times (self-consistency), exported."""
    write_docs(tmp_path / "in", {name: text + " [[vary:remote_preference=hybrid|hybrid|remote]]"
                                 for name, text in LETTERS.items()})
    runner.run(make_config(tmp_path, fake_server, samples=3))
    return export(ExportConfig(settings=settings(tmp_path / "out")))


def test_number_formats_follow_the_column_type(sampled: Path) -> None:
    workbook = openpyxl.load_workbook(sampled)
    sheet = workbook["results"]
    header, rows = _rows(sampled)
    jakub, kenji = rows["jakub_dvorak.txt"], rows["kenji_sato.txt"]
    formats = {name: jakub[name].number_format for name in header}
    assert formats["salary.min"] == formats["salary.max"] == "#,##0", "whole amounts with thousands separators"
    assert formats["years_experience"] == "0.0" and kenji["years_experience"].value == 7.5
    assert formats["notice_period_days"] == "0"
    assert formats["available_from"] == "yyyy-mm-dd"
    assert formats["extracted_at"] == "yyyy-mm-dd hh:mm:ss"
    assert formats["cost_usd"] == "$#,##0.000000"
    assert formats["prompt_tokens"] == formats["completion_tokens"] == "#,##0"
    assert formats["latency_s"] == "0.00"
    assert jakub["applicant_name"].data_type == "s" and rows["arjun_mehta.txt"]["phone"].value == "+65 9123 4567"
    for name in ("salary.min", "salary.max"):
        width = sheet.column_dimensions[get_column_letter(header.index(name) + 1)].width
        assert width >= len("1,400,000") + 1, f"{name} is {width} characters wide"
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(header))}4"

    summary = workbook["summary"]
    cells = {r[0].value: (r[1], r[2]) for r in summary.iter_rows(min_row=2)}
    assert {"run id", "run started (UTC)", "exported at (UTC)", "schema version", "model"} <= set(cells)
    assert cells["model"][0].value == "gpt-4o-mini"
    started = cells["run started (UTC)"][0]
    assert started.number_format == "yyyy-mm-dd hh:mm:ss" and started.is_date
    assert (cells["documents"][0].value, cells["documents"][0].number_format) == (3, "#,##0")
    assert (cells["ok"][1].value, cells["ok"][1].number_format) == (1.0, "0.0%")
    assert cells["cost USD"][0].number_format == "$#,##0.000000"
    agreement = cells["agreement remote_preference"][0]
    assert agreement.value == pytest.approx(2 / 3) and agreement.number_format == "0.0%"
    assert summary.freeze_panes == "A2" and summary.auto_filter.ref


@pytest.mark.integration
@needs_office
def test_libreoffice_shows_every_number_no_hashes(sampled: Path, tmp_path: Path) -> None:
    pdf = _libreoffice(sampled, "pdf", tmp_path / "pdf")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    assert "###" not in text, "a number or date too wide for its column"
    for shown in ("1,250,000", "1,400,000", "105,000", "7.5", "11.0", "2027-02-01", "66.7%", "100.0%"):
        assert shown in text, shown
    assert "3.000000" not in text and "8.000000" not in text
    assert "documents 3" in text


# -- 4. CSV that opens right -------------------------------------------------------------------------------

@pytest.mark.integration
def test_csv_has_a_bom_and_reads_back_unchanged(project: Path, tmp_path: Path) -> None:
    where = settings(project / "out")
    path = export(ExportConfig(settings=where, fmt="csv"))
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfdoc_id,"), "UTF-8 with a byte order mark, for Excel"
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = {r["doc_id"]: r for r in csv.DictReader(fh)}
    assert rows["arjun_mehta.txt"]["phone"] == "'+65 9123 4567", "the formula guard"

    evaluate(EvalConfig(settings=where, labels_file=_labels_file(project)))
    sheet = export(ExportConfig(settings=where))
    edit_xlsx(sheet, {("jakub_dvorak.txt", "applicant_name"): "Jakub Dvořák"})
    import_corrections(ImportConfig(settings=where, file=sheet))
    path = export(ExportConfig(settings=where, fmt="csv"))
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = {r["doc_id"]: r for r in csv.DictReader(fh)}
    assert rows["jakub_dvorak.txt"]["applicant_name"] == "Jakub Dvořák"

    utf8 = _cli("export", "--format", "csv", "--encoding", "utf-8", "--out", str(tmp_path / "plain.csv"),
                "--output", str(project / "out"))
    assert utf8.returncode == 0, utf8.stderr
    assert (tmp_path / "plain.csv").read_bytes().startswith(b"doc_id,")
    with pytest.raises(ConfigError, match=r"cp1252: it has no code for 'ř'; use utf-8-sig"):
        export(ExportConfig(settings=where, fmt="csv", out=tmp_path / "ansi.csv", encoding="cp1252"))
    with pytest.raises(ConfigError, match="not an encoding"):
        ExportConfig(settings=where, fmt="csv", encoding="klingon")


@pytest.mark.integration
@needs_office
def test_libreoffice_reads_the_csv(project: Path, tmp_path: Path) -> None:
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    edit_xlsx(sheet, {("jakub_dvorak.txt", "applicant_name"): "Jakub Dvořák"})
    import_corrections(ImportConfig(settings=where, file=sheet))
    path = export(ExportConfig(settings=where, fmt="csv"))
    converted = _libreoffice(path, "xlsx", tmp_path / "lo", infilter="CSV:44,34,76,1")  # 76: UTF-8
    header, rows = _rows(converted, openpyxl.load_workbook(converted).sheetnames[0])
    assert header[0] == "doc_id", "the byte order mark is not read as part of the first name"
    assert rows["jakub_dvorak.txt"]["applicant_name"].value == "Jakub Dvořák"


def test_a_csv_saved_by_excel_in_its_code_page_imports(project: Path) -> None:
    where = settings(project / "out")
    path = export(ExportConfig(settings=where, fmt="csv"))
    text = path.read_text(encoding="utf-8-sig").replace("Kenji Sato", "Kenji Satò")
    path.write_bytes(text.encode("cp1252"))  # "CSV (Comma delimited)" on Windows
    assert import_corrections(ImportConfig(settings=where, file=path)).applied == [("kenji_sato.txt",
                                                                                    "applicant_name")]
    with Labels.open_readonly(project / "out" / "cover_letter" / "journal.sqlite3") as labels:
        assert labels.latest()["kenji_sato.txt"]["applicant_name"] == "Kenji Satò"


def test_the_snapshot_sits_next_to_the_export(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared" / "results.csv"
    export(ExportConfig(settings=settings(project / "out"), fmt="csv", out=out))
    assert snapshot_path(out) == out.parent / ".results.csv.exported.json" and snapshot_path(out).is_file()
