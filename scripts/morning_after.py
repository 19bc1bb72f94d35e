"""Draw the README's "morning after" picture: a night's results.xlsx after a reviewer's correction.

    python scripts/morning_after.py [--out docs/morning-after.png] [--keep DIR]

The 24 sample letters are answered by the fake server (extractor/testing/fakeserver.py) with the values of
bench/labels/cover_letters.jsonl, a few of them wrong the way a small model gets them wrong (a name without
its diacritics, no years of experience); a reviewer corrects Jakub's name in the sheet, `import-corrections`
stores it, and the next export is rendered (first printed page, the columns a reviewer reads first) with
LibreOffice and pdftoppm through scripts/screenshot_xlsx.sh. No network, no API key.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import RunConfig, build_config  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.testing.fakeserver import FakeOpenAI  # noqa: E402
from extractor.views.spreadsheets import ExportConfig, ImportConfig, export, import_corrections  # noqa: E402

# The columns a reviewer reads first, on one landscape page (the export prints every column, page by page).
SHOWN = ["doc_id", "status", "corrected", "applicant_name", "phone", "years_experience", "seniority",
         "salary.min", "salary.max", "salary.currency", "salary.period", "notice_period_days", "language"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "morning-after.png")
    parser.add_argument("--dpi", type=int, default=110)
    parser.add_argument("--keep", type=Path, help="build the project here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        sheet = night_and_morning(root)
        picture = root / "picture.xlsx"
        _print_setup(sheet, picture)
        subprocess.run(["bash", str(ROOT / "scripts" / "screenshot_xlsx.sh"), str(picture), str(args.out),
                        str(args.dpi)], check=True)
        _crop(args.out)


def night_and_morning(root: Path) -> Path:
    """The night's run, the export, a reviewer's edit imported, the morning's export; returns its path."""
    labels = [json.loads(line) for line in (ROOT / "bench" / "labels" / "cover_letters.jsonl").open(encoding="utf-8")]
    for i, answer in enumerate(labels):
        name = Path(answer.pop("doc_id")).stem + ".txt"
        if name.startswith("jakub"):
            answer["applicant_name"] = "Jakub Dvorak"  # the model dropped the diacritics
        if i % 5 == 2:
            answer["years_experience"] = None
        path = root / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Letter {name} [[answer:{json.dumps(answer, ensure_ascii=False)}]]", encoding="utf-8")
    server = FakeOpenAI()
    server.start()
    try:
        runner.run(build_config(dict(input_dir=root / "in", schema="cover_letter", schemas_dir=ROOT / "schemas",
                                     output_dir=root / "out", base_url=server.base_url, api_key="sk-demo-0000",
                                     model="gpt-4o-mini"), env={}))
    finally:
        server.stop()
    where = RunConfig(schema="cover_letter", schemas_dir=ROOT / "schemas", output_dir=root / "out")
    sheet = export(ExportConfig(settings=where))

    import openpyxl

    workbook = openpyxl.load_workbook(sheet)  # the reviewer, in the morning
    results = workbook["results"]
    header = [c.value for c in results[1]]
    for cells in results.iter_rows(min_row=2):
        if str(cells[0].value).startswith("jakub"):
            cells[header.index("applicant_name")].value = "Jakub Dvořák"
    workbook.save(sheet)
    import_corrections(ImportConfig(settings=where, file=sheet))
    return export(ExportConfig(settings=where))


def _print_setup(sheet: Path, out: Path) -> None:
    """A copy that prints the SHOWN columns and every row on one page."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    workbook = openpyxl.load_workbook(sheet)
    results = workbook["results"]
    header = [c.value for c in results[1]]
    last = max(header.index(name) for name in SHOWN) + 1
    for index, name in enumerate(header[:last], start=1):
        results.column_dimensions[get_column_letter(index)].hidden = name not in SHOWN
    results.print_area = f"A1:{get_column_letter(last)}{results.max_row}"
    results.page_setup.fitToWidth = 1
    results.page_setup.fitToHeight = 1
    results.sheet_properties.pageSetUpPr.fitToPage = True
    workbook.save(out)


def _crop(png: Path, margin: int = 8) -> None:
    """Cut the page's empty paper away."""
    from PIL import Image, ImageChops

    image = Image.open(png).convert("RGB")
    box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    if box:
        left, top, right, bottom = box
        image = image.crop((max(left - margin, 0), max(top - margin, 0), min(right + margin, image.width),
                            min(bottom + margin, image.height)))
    image.save(png, optimize=True)


if __name__ == "__main__":
    main()
