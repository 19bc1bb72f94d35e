"""Review where people already look: the XLSX export fills the cells whose value is not in the document and
says so in a comment (naming the list items), gives found values their quote (page, match) as a comment,
puts needs_review and grounded next to status, counts what was not found on the summary sheet; a real run
against the fake server (a text, a two-page PDF), read back with openpyxl and through headless LibreOffice."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest

from extractor.errors import ExportRefused
from extractor.extraction import runner
from extractor.views.spreadsheets import NOT_FOUND, ExportConfig, ImportConfig, _column_of, export, import_corrections

from .conftest import make_config, serving, settings, two_page_pdf, write_docs

OFFICE = shutil.which("soffice") or shutil.which("libreoffice")
FILL = "FFFFC7CE"
MADE_UP = "ada.lovelace@made-up.example"

ADA = ("Dear hiring team,\n\nI am Ada Lovelace and I apply for the Engineer role.\nSkills: Python.\n"
       "Reach me at ada@lovelace.org. Salary 85,000 EUR per year.")
BOB = "Bob Stone writes from Oslo, Norway. Mail: bob@stone.no"
ANSWERS = {
    "Ada Lovelace": {"applicant_name": "Ada Lovelace", "email": MADE_UP, "desired_role": "Engineer",
                     "seniority": "senior", "skills": ["Python", "Haskell"],
                     "salary": {"min": 85000, "max": 95000, "currency": "EUR", "period": "year"}},
    "Marta Kowalska": {"applicant_name": "Marta Kowalska", "email": "marta.k@example.org",
                       "company": "Orbital Freight"},
    "Bob Stone": {"applicant_name": "Bob Stone", "email": "bob@stone.no", "location": "Oslo, Norway"},
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    marta = two_page_pdf("I am Marta Kowalska from Krakow, Poland.\nmarta.k@example.org")
    write_docs(tmp_path / "in", {"ada.txt": ADA, "marta.pdf": marta, "bob.txt": BOB,
                                 "refused.txt": "A letter the server always refuses [[fault:400*99]]"})
    with serving(answers=ANSWERS) as server:
        summary = runner.run(make_config(tmp_path, server))
    assert (summary.ok, summary.failed) == (3, 1)
    return tmp_path


def _cells(path: Path) -> tuple[list[str], dict[str, dict[str, openpyxl.cell.Cell]]]:
    sheet = openpyxl.load_workbook(path)["results"]
    header = [c.value for c in sheet[1]]
    return header, {cells[0].value: dict(zip(header, cells, strict=True)) for cells in sheet.iter_rows(min_row=2)}


def _filled(cell: openpyxl.cell.Cell) -> bool:
    return cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb == FILL


def _comment(cell: openpyxl.cell.Cell) -> str | None:
    return cell.comment.text if cell.comment is not None else None


def _summary(path: Path) -> dict[str, tuple[object, object]]:
    sheet = openpyxl.load_workbook(path)["summary"]
    return {r[0].value: (r[1].value, r[2].value) for r in sheet.iter_rows(min_row=2)}


def _check_evidence(path: Path) -> None:
    """What a reviewer sees: made-up values filled and said so, found ones quoted, derived ones quiet."""
    header, rows = _cells(path)
    assert header[:6] == ["doc_id", "status", "needs_review", "review_flags", "grounded", "corrected"]
    ada, marta, bob = rows["ada.txt"], rows["marta.pdf"], rows["bob.txt"]

    email = ada["email"]
    assert email.value == MADE_UP and _filled(email)
    assert _comment(email) == f'{NOT_FOUND}: "{MADE_UP}"'
    skills = ada["skills"]
    assert skills.value == "Python; Haskell" and _filled(skills)
    assert _comment(skills) == f'{NOT_FOUND}: "Haskell" (item 2)\n"Python"', "names the item, quotes the rest"
    made_up_max = ada["salary.max"]
    assert made_up_max.value == 95000 and _filled(made_up_max)
    assert made_up_max.number_format == "#,##0", "a filled cell keeps its number format"
    assert _comment(made_up_max) == f'{NOT_FOUND}: "95000"'
    found_min = ada["salary.min"]
    assert _comment(found_min) == '"85,000" (normalized)' and not _filled(found_min)
    assert found_min.number_format == "#,##0"
    assert _comment(ada["applicant_name"]) == '"Ada Lovelace"' and not _filled(ada["applicant_name"])
    assert _comment(ada["seniority"]) is None and ada["seniority"].value == "senior", "derived: no comment"
    assert _comment(ada["language"]) is None
    assert _comment(ada["phone"]) is None and ada["phone"].value is None

    assert _comment(marta["applicant_name"]) == '"Marta Kowalska" (page 2)'
    assert _comment(marta["email"]) == '"marta.k@example.org" (page 2)'
    assert _comment(marta["company"]) == '"Orbital Freight" (page 1)'
    assert _comment(bob["location"]) == '"Oslo, Norway"'
    assert not any(_filled(c) for row in (marta, bob) for c in row.values())

    assert ada["needs_review"].value is True and _filled(ada["needs_review"])
    assert marta["needs_review"].value is False and bob["needs_review"].value is False
    assert rows["refused.txt"]["needs_review"].value is None and _comment(rows["refused.txt"]["applicant_name"]) is None
    assert bob["grounded"].value == 1.0 and bob["grounded"].number_format == "0.0%"
    assert 0 < ada["grounded"].value < 1
    for row in rows.values():  # comments only on field cells
        assert all(_comment(row[c]) is None for c in ("doc_id", "status", "needs_review", "review_flags", "grounded",
                                                      "corrected", "model", "extracted_at"))

    summary = _summary(path)
    assert summary["documents"] == (4, None)
    assert summary["documents that need review"] == (1, 0.25)
    assert summary["values not found in the document"] == (3, None)
    assert summary["documents with values not found"] == (1, 0.25)


def test_xlsx_shows_where_each_value_came_from(project: Path) -> None:
    _check_evidence(export(ExportConfig(settings=settings(project / "out"))))


def test_csv_has_needs_review_and_grounded(project: Path) -> None:
    path = export(ExportConfig(settings=settings(project / "out"), fmt="csv"))
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = {r["doc_id"]: r for r in reader}
        head = ["doc_id", "status", "needs_review", "review_flags", "grounded", "corrected"]
        assert (reader.fieldnames or [])[:6] == head
    assert rows["ada.txt"]["needs_review"] == "true" and rows["bob.txt"]["needs_review"] == "false"
    assert rows["bob.txt"]["grounded"] == "1.0" and 0 < float(rows["ada.txt"]["grounded"]) < 1
    assert rows["refused.txt"]["needs_review"] == "" and rows["refused.txt"]["grounded"] == ""


def test_needs_review_and_grounded_are_not_importable(project: Path) -> None:
    """Edits to needs_review and grounded are neither imported nor edits the export waits for; a field edit
    still is, and once imported the person's value replaces the made-up one: no fill, no comment."""
    where = settings(project / "out")
    sheet = export(ExportConfig(settings=where))
    workbook = openpyxl.load_workbook(sheet)
    results = workbook["results"]
    header = [c.value for c in results[1]]
    for cells in results.iter_rows(min_row=2):
        if cells[0].value == "ada.txt":
            cells[header.index("needs_review")].value = False
            cells[header.index("grounded")].value = 1
    workbook.save(sheet)
    report = import_corrections(ImportConfig(settings=where, file=sheet))
    assert (report.applied, report.rejected) == ([], [])
    export(ExportConfig(settings=where))  # nothing waits to be imported: replaced without a word

    csv_path = export(ExportConfig(settings=where, fmt="csv"))
    text = csv_path.read_text(encoding="utf-8-sig")
    csv_path.write_text(text.replace("ada.txt,ok,true,", "ada.txt,ok,false,"), encoding="utf-8-sig")
    assert csv_path.read_text(encoding="utf-8-sig") != text
    assert import_corrections(ImportConfig(settings=where, file=csv_path)).applied == []
    export(ExportConfig(settings=where, fmt="csv"))

    workbook = openpyxl.load_workbook(sheet)
    results = workbook["results"]
    for cells in results.iter_rows(min_row=2):
        if cells[0].value == "ada.txt":
            cells[header.index("email")].value = "ada@lovelace.org"
    workbook.save(sheet)
    with pytest.raises(ExportRefused, match=r"1 edited cell\(s\) that were not imported \(ada.txt / email\)"):
        export(ExportConfig(settings=where))
    assert import_corrections(ImportConfig(settings=where, file=sheet)).applied == [("ada.txt", "email")]
    export(ExportConfig(settings=where))
    _, rows = _cells(sheet)
    email = rows["ada.txt"]["email"]
    assert email.value == "ada@lovelace.org" and not _filled(email) and _comment(email) is None
    assert _filled(rows["ada.txt"]["skills"]), "the fields no one corrected keep their evidence"
    assert rows["ada.txt"]["needs_review"].value is True, "needs_review is the extraction's verdict"
    summary = _summary(sheet)
    assert summary["values not found in the document"] == (2, None)


def test_results_from_before_evidence_get_no_comments(project: Path) -> None:
    where = settings(project / "out")
    where.layout.evidence.unlink()
    path = export(ExportConfig(settings=where))
    _, rows = _cells(path)
    assert rows["ada.txt"]["email"].value == MADE_UP
    assert not any(c.comment is not None or _filled(c) for row in rows.values() for name, c in row.items()
                   if name != "needs_review")
    assert _summary(path)["values not found in the document"] == ("-", None)


def test_evidence_paths_find_their_columns() -> None:
    columns = {"skills", "salary.min", "salary.max", "email", "jobs"}
    assert _column_of("skills[2]", columns) == ("skills", 2)
    assert _column_of("salary.min", columns) == ("salary.min", None)
    assert _column_of("email", columns) == ("email", None)
    assert _column_of("jobs[1].title", columns) == ("jobs", 1), "deeper than the sheet: the column holding it"
    assert _column_of("nothing", columns) is None


@pytest.mark.integration
@pytest.mark.skipif(OFFICE is None,
                    reason="LibreOffice is not installed (Debian package libreoffice-calc; .ci/run installs it)")
def test_comments_and_fills_survive_libreoffice(project: Path, tmp_path: Path) -> None:
    """Opened and saved by LibreOffice, the sheet keeps its comments and fills (and renders to PDF)."""
    assert OFFICE is not None
    sheet = export(ExportConfig(settings=settings(project / "out")))
    profile = f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}"
    for fmt in ("xlsx", "pdf"):
        subprocess.run([OFFICE, "--headless", profile, "--convert-to", fmt, "--outdir", str(tmp_path / "lo"),
                        str(sheet)], check=True, capture_output=True, timeout=180)
    resaved = tmp_path / "lo" / "results.xlsx"
    assert resaved.read_bytes() != sheet.read_bytes()
    _, rows = _cells(resaved)
    ada, marta = rows["ada.txt"], rows["marta.pdf"]
    assert NOT_FOUND in (_comment(ada["email"]) or "") and MADE_UP in (_comment(ada["email"]) or "")
    assert _filled(ada["email"]) and _filled(ada["skills"]) and _filled(ada["salary.max"])
    assert ada["salary.max"].number_format == "#,##0"
    assert '"Haskell" (item 2)' in (_comment(ada["skills"]) or "")
    assert (_comment(marta["applicant_name"]) or "").strip() == '"Marta Kowalska" (page 2)'
    assert not _filled(marta["applicant_name"])
    assert (tmp_path / "lo" / "results.pdf").stat().st_size > 0
