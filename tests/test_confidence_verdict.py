"""When eval finds the label-free confidence no better than a coin for a model, every view says so instead of
showing green badges (issue 28 item 3): a model whose values are all found in their documents, half of them
wrong, is exactly the case of snapped answers on a small model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl
from rich.console import Console

from extractor.extraction import runner
from extractor.quality.calibration import MIN_JUDGED, read_verdict
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.views.review import ReviewConfig, write_review
from extractor.views.spreadsheets import ExportConfig, export
from extractor.views.terminal import print_eval

from .conftest import make_config, serving, settings, write_docs

NAMES = [("Ada Lovelace", "Bob Stone"), ("Cy Young", "Dee Ray"), ("Eve Park", "Finn Moss"), ("Gil Hart", "Hana Ito"),
         ("Ivo Kral", "Jo Lind"), ("Kai Berg", "Lea Roth"), ("Mo Diaz", "Nia Okoro"), ("Oli Shaw", "Pia Vogt"),
         ("Quin Lowe", "Rae Frost"), ("Sam Cole", "Tia Moon"), ("Uma Bell", "Vic Hale"), ("Wes Pike", "Xia Long")]


def test_uninformative_confidence_is_said_by_eval_the_review_page_and_the_sheet(tmp_path: Path) -> None:
    docs, answers, labels = {}, {}, []
    for i, (writer, other) in enumerate(NAMES):
        key = f"Letter {i:02}"
        docs[f"l{i:02}.txt"] = f"{key}. From {writer}, who worked with {other} at Acme {i} in Berlin."
        answers[key] = {"applicant_name": writer, "company": f"Acme {i}"}
        # Every answer is found verbatim in its letter (confidence 0.95 each), yet half of them are wrong.
        labels.append({"doc_id": f"l{i:02}.txt", "applicant_name": other if i % 2 else writer,
                       "company": f"Acme {i}" if i % 2 else "Globex"})
    write_docs(tmp_path / "in", docs)
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("".join(json.dumps(row) + "\n" for row in labels))
    with serving(answers=answers) as server:
        config = make_config(tmp_path, server)
        assert runner.run(config).ok == len(NAMES)
    where = settings(tmp_path / "out")
    report = evaluate(EvalConfig(settings=where, labels_file=labels_file))
    assert report.calibration is not None and report.calibration.auroc is not None
    assert report.calibration.auroc < 0.6 and report.calibration.uninformative
    console = Console(file=io.StringIO(), width=250)
    print_eval(report, console)
    assert "confidence is uninformative for gpt-4o-mini" in console.file.getvalue()  # type: ignore[attr-defined]
    verdict = read_verdict(where.layout.calibration)
    assert verdict is not None and verdict.uninformative and verdict.model == "gpt-4o-mini"

    page = write_review(ReviewConfig(settings=where)).read_text(encoding="utf-8")
    assert 'id="confidence">Confidence is uninformative for gpt-4o-mini: AUROC' in page
    assert "badge fine" not in page and page.count(">unverified</span>") >= len(NAMES)

    sheet = export(ExportConfig(settings=where))
    summary = {r[0].value: r[1].value for r in openpyxl.load_workbook(sheet)["summary"].iter_rows(min_row=2)}
    assert "uninformative for gpt-4o-mini" in summary["label-free confidence (extractor eval)"]


def test_informative_confidence_keeps_the_badges(tmp_path: Path) -> None:
    people = [name for pair in NAMES for name in pair]  # 24 letters: enough values to judge
    write_docs(tmp_path / "in", {f"l{i:02}.txt": f"Letter {i:02} from {w}." for i, w in enumerate(people)})
    answers = {f"Letter {i:02}": {"applicant_name": w if i % 2 else "Made Up Person"} for i, w in enumerate(people)}
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("".join(json.dumps({"doc_id": f"l{i:02}.txt", "applicant_name": w}) + "\n"
                                   for i, w in enumerate(people)))
    with serving(answers=answers) as server:
        runner.run(make_config(tmp_path, server))
    where = settings(tmp_path / "out")
    report = evaluate(EvalConfig(settings=where, labels_file=labels_file))
    calibration = report.calibration
    assert calibration is not None and calibration.values >= MIN_JUDGED
    assert calibration.auroc is not None and calibration.auroc > 0.9 and not calibration.uninformative
    page = write_review(ReviewConfig(settings=where)).read_text(encoding="utf-8")
    assert 'id="confidence"' not in page and "badge fine" in page
