"""The resume schema and scripts/make_resumes.py (dataset zip -> .txt resumes + gold labels.jsonl)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import ValidationError

from extractor.schemas import load_schema

from .conftest import ROOT, load_script

SCRIPT = ROOT / "scripts" / "make_resumes.py"
REAL_DATA = ROOT.parent / "shared" / "datasets" / "resumes-dotin"


def _script() -> ModuleType:
    return load_script(SCRIPT, "make_resumes_under_test")


make_resumes = _script()
Resume = load_schema(ROOT / "schemas", "resume").model

# Indeed style: multi-line text, a raw '&' and its entity form, labels across line breaks, a soft skill,
# a stated total and a date range under "Years of Experience".
CV_1 = """<?xml version="1.0" encoding="UTF-8"?>
<cv>
<label type="Name">Asha Verma</label>
<label type="Designation">Data Analyst</label> - <label type="Companies worked at">R&D Labs</label>
<label type="Location">Pune, Maharashtra</label> - Email me on Indeed:
<label type="Email Address">Asha.Verma@Example.com</label>

A <label type="Soft Skills">self-motivated</label> analyst with
<label type="Years of Experience">4 years of experience</label> in <label type="Job Specific Skills">data
analysis</label> using <label type="Tech Tools">Python</label> and <label type="Tech Tools">SQL</label>.

WORK EXPERIENCE
<label type="Designation">Data Analyst</label>
<label type="Companies worked at">R&amp;D Labs</label> - <label type="Location">Mumbai, Maharashtra</label>
<label type="Years of Experience">June 2020 to Present</label>

EDUCATION
<label type="Degree">B.Sc. in Statistics</label> - <label type="College Name">Fergusson
College</label>, <label type="Graduation Year">2016 - 2019</label>

SKILLS
<label type="Tech Tools">python</label>, <label type="Tech Tools">Tableau</label>
</cv>
"""

TXT_1 = """Asha Verma
Data Analyst - R&D Labs
Pune, Maharashtra - Email me on Indeed:
Asha.Verma@Example.com

A self-motivated analyst with
4 years of experience in data
analysis using Python and SQL.

WORK EXPERIENCE
Data Analyst
R&D Labs - Mumbai, Maharashtra
June 2020 to Present

EDUCATION
B.Sc. in Statistics - Fergusson
College, 2016 - 2019

SKILLS
python, Tableau
"""

LABELS_1 = {
    "doc_id": "cv_001.txt", "name": "Asha Verma", "email": "asha.verma@example.com", "location": "Pune, Maharashtra",
    "current_title": "Data Analyst", "companies": ["R&D Labs"], "degrees": ["B.Sc. in Statistics"],
    "colleges": ["Fergusson College"], "graduation_years": [2016, 2019],
    "skills": ["data analysis", "Python", "SQL", "Tableau"], "years_experience": 4.0,
}

# PDF style: one line inside quotes as a Python bytes literal, no Name label, a malformed e-mail label,
# only a date range for experience, no education labels at all.
CV_2 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<cv>\n'
    r'"RESUME  <label type="Designation">Site   Engineer</label>  \xe2\x80\xa2 '
    r'<label type="Email Address">j.doe at mail</label>  Worked at '
    r'<label type="Companies worked at">Kumar Constructions</label> '
    r'(<label type="Years of Experience">2012 - 2015</label>)  \xe2\x80\xa2 Tools: '
    r'<label type="Tech Tools">AutoCAD</label>, <label type="Tech Tools">autocad</label>  '
    r"\xe2\x80\x9cBuilder\'s award\xe2\x80\x9d, "
    '<label type="Soft Skills">teamwork</label>"'
    '\n</cv>\n'
)

TXT_2 = "RESUME  Site   Engineer  • j.doe at mail  Worked at Kumar Constructions (2012 - 2015)  • Tools: AutoCAD, " \
        "autocad  “Builder's award”, teamwork\n"

LABELS_2 = {
    "doc_id": "cv_002.txt", "name": None, "email": None, "location": None, "current_title": "Site Engineer",
    "companies": ["Kumar Constructions"], "skills": ["AutoCAD"], "years_experience": None,
}

# Only an implausible graduation year: dropped, so the list field is omitted.
CV_10 = """<?xml version="1.0" encoding="UTF-8"?>
<cv>
<label type="Name">Old  Timer</label> graduated <label type="Graduation Year">1921</label>;
<label type="Years of Experience">2 Years and 4 Months</label>
</cv>
"""

LABELS_10 = {"doc_id": "cv_010.txt", "name": "Old Timer", "email": None, "location": None, "current_title": None,
             "years_experience": 2.33}


def _fake_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("545_cvs_train_v2/", "")
        for name, xml in (("10.xml", CV_10), ("2.xml", CV_2), ("1.xml", CV_1)):
            archive.writestr(f"545_cvs_train_v2/{name}", xml.encode("utf-8"))
    return path


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "labels.jsonl").read_text(encoding="utf-8").splitlines()]


def test_convert_writes_exact_text_and_labels(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stats = make_resumes.convert(_fake_zip(tmp_path / "cvs.zip"), out, None)
    assert sorted(p.name for p in (out / "resumes").iterdir()) == ["cv_001.txt", "cv_002.txt", "cv_010.txt"]
    assert (out / "resumes" / "cv_001.txt").read_bytes() == TXT_1.encode("utf-8")
    assert (out / "resumes" / "cv_002.txt").read_bytes() == TXT_2.encode("utf-8")
    txt_10 = (out / "resumes" / "cv_010.txt").read_text(encoding="utf-8")
    assert txt_10 == "Old  Timer graduated 1921;\n2 Years and 4 Months\n"
    rows = _rows(out)
    assert rows == [LABELS_1, LABELS_2, LABELS_10]
    assert list(rows[0]) == ["doc_id", *make_resumes.FIELDS]  # stable key order
    assert stats["resumes"] == 3
    assert stats["dropped"] == {"email": 1, "graduation_years": 1}
    line = make_resumes.summary_line(stats)
    assert line.startswith("wrote 3 resumes to ")
    assert "name 2, email 1, location 1, current_title 2, companies 2, degrees 1" in line
    assert "invalid values dropped: email 1, graduation_years 1; lists truncated: none" in line


def test_limit_takes_first_in_natural_order_and_removes_stale_files(tmp_path: Path, capsys) -> None:
    source, out = _fake_zip(tmp_path / "cvs.zip"), tmp_path / "out"
    assert make_resumes.main(["--source", str(source), "--out", str(out)]) == 0
    assert make_resumes.main(["--source", str(source), "--out", str(out), "--limit", "2"]) == 0
    assert sorted(p.name for p in (out / "resumes").iterdir()) == ["cv_001.txt", "cv_002.txt"]
    assert [row["doc_id"] for row in _rows(out)] == ["cv_001.txt", "cv_002.txt"]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("wrote 2 resumes to ")


def test_long_lists_are_truncated_to_the_schema_bound(tmp_path: Path) -> None:
    tools = " ".join(f'<label type="Tech Tools">tool{i}</label>' for i in range(45))
    xml = f'<?xml version="1.0"?>\n<cv>\n<label type="Name">A B</label> {tools}\n</cv>\n'
    source = tmp_path / "cvs.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("x/5.xml", xml)
    stats = make_resumes.convert(source, tmp_path / "out", None)
    assert _rows(tmp_path / "out")[0]["skills"] == [f"tool{i}" for i in range(40)]
    assert stats["truncated"] == {"skills": 1}


@pytest.mark.parametrize(("label", "years"), [
    ("11 years of experience", 11.0), ("2 Years and 4 Months", 2.33), ("Ten years experience", 10.0),
    ("8.5+ years of experience", 8.5), ("4yrs", 4.0), ("1-year", 1.0), ("21 months of experience", 1.75),
    ("from August 2013 till date (around 4.8 years)", 4.8), ("2005 to Present", None), ("2004-2007", None),
    ("Less than 1 year", None), ("for the year 2015", None),
])
def test_stated_total(label: str, years: float | None) -> None:
    assert make_resumes.stated_total(label) == years


def test_schema_loads_and_normalizes() -> None:
    schema = load_schema(ROOT / "schemas", "resume")
    assert len(schema.examples) == 2 and len(schema.version) == 12
    resume = Resume.model_validate({
        "name": " Jo  Lee ", "email": "mailto:Jo.Lee@Example.COM", "skills": ["SQL", "sql", " Excel ", ""],
        "companies": ["Acme", "ACME"], "graduation_years": ["2010", 2010, 2012], "location": " "})
    assert resume.name == "Jo Lee" and resume.email == "jo.lee@example.com" and resume.location is None
    assert resume.skills == ["SQL", "Excel"] and resume.companies == ["Acme"]
    assert resume.graduation_years == [2010, 2012]
    for bad in ({"email": "not an address"}, {"graduation_years": [1921]}, {"years_experience": 80},
                {"skills": [f"s{i}" for i in range(41)]}):
        with pytest.raises(ValidationError):
            Resume.model_validate({"name": "X", **bad})


def test_real_dataset_first_20(tmp_path: Path) -> None:
    source = REAL_DATA / "545_cvs_train_v2.zip"
    if not source.is_file():
        pytest.skip(f"real resume dataset not available at {REAL_DATA}")
    out = tmp_path / "resumes"
    assert make_resumes.main(["--source", str(source), "--out", str(out), "--limit", "20"]) == 0
    texts = sorted((out / "resumes").glob("*.txt"))
    rows = _rows(out)
    assert len(texts) == 20 and len(rows) == 20
    assert [row["doc_id"] for row in rows] == [p.name for p in texts]
    for row in rows:
        text = (out / "resumes" / row["doc_id"]).read_text(encoding="utf-8")
        assert row["name"], row
        assert row["name"] in text, row["doc_id"]
        Resume.model_validate({k: v for k, v in row.items() if k != "doc_id"})
