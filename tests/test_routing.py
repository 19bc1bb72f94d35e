"""`--schema auto`: one drop folder, several kinds, each document routed to its schema (extraction.routing)."""

from __future__ import annotations

import email.message
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor.config import build_config
from extractor.errors import ConfigError
from extractor.extraction.routing import plan_routed, run_routed
from extractor.testing.fakeserver import FakeOpenAI
from tests.conftest import ROOT, load_script, make_config, server_log, serving, write_docs

RESUMES = ROOT.parent / "shared" / "datasets" / "resumes-dotin" / "545_cvs_train_v2.zip"
LETTER_LABELS = [json.loads(line)
                 for line in (ROOT / "bench" / "labels" / "cover_letters.jsonl").read_text().splitlines()]

# Documents of no known kind, with the words that tell the fake server so ("none" is its answer for them).
RECIPE = ("Lemon drizzle cake\n\nIngredients: 225 g butter, 225 g caster sugar, 4 eggs, 225 g self-raising flour, "
          "2 lemons.\n\nPreheat the oven to 180 C. Beat the butter and sugar, add the eggs one by one, fold in the "
          "flour and the zest. Bake for 45 minutes; pour the lemon syrup over the warm cake.\n")
MINUTES = ("# Minutes of the board meeting, 3 November 2026\n\nPresent: the chair, the treasurer and four members.\n\n"
           "1. The minutes of the last meeting were approved.\n2. The treasurer reported a surplus of 1,200 EUR.\n"
           "3. Any other business: none.\n\nAction: the secretary circulates the budget by Friday.\n")
NOTICE = ("NOTICE TO RESIDENTS\n\nThe water supply to blocks A and B will be interrupted on Tuesday 8 December from "
          "09:00 to 13:00 for maintenance of the pumps. We apologise for the inconvenience.\n\n"
          "The building management\n")
# A letter, but not a job application: a letter's shape and two of a cover letter's words, so the hints do not
# decide and the question does (the fake server says "none" for it).
RESIDENTS = ("Dear residents,\n\nThe lift in the east staircase will be out of service from Monday while the engineers "
             "replace its door motors. The concierge can help with heavy shopping.\n\nKind regards,\n"
             "Estate Management Office\n")
# One hint (a CV's "references") and nothing else: the question decides.
SHORT = "Hello Orbital team, I would love to join you as a product designer this spring; references on request. Ines\n"
UNKNOWN = {"misc/recipe.txt": RECIPE, "misc/minutes.md": MINUTES, "misc/notice.txt": NOTICE,
           "misc/residents.txt": RESIDENTS}
NONE_KEYS = ("Lemon drizzle cake", "Minutes of the board meeting", "NOTICE TO RESIDENTS", "Dear residents")


def _make_resumes() -> Any:
    return load_script(ROOT / "scripts" / "make_resumes.py", "make_resumes_for_routing")


def resumes(out: Path, limit: int = 20) -> list[dict[str, Any]]:
    """The first `limit` resumes of the shared dataset as .txt files under `out/resumes`, and their labels."""
    if not RESUMES.is_file():
        pytest.skip(f"the shared resume dataset is not here ({RESUMES})")
    _make_resumes().main(["--source", str(RESUMES), "--out", str(out), "--limit", str(limit)])
    return [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]


INVOICE_LABELS = [json.loads(line)
                  for line in (ROOT / "bench" / "labels" / "invoices.jsonl").read_text().splitlines()]


def oracle(letters: list[dict[str, Any]], cvs: list[dict[str, Any]],
           invoices: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The fake server's answers: each document's labels (keyed by the name or number written in it) and its kind."""
    answers: dict[str, dict[str, Any]] = {}
    for label in invoices or []:
        answers[label["invoice_number"]] = {**{k: v for k, v in label.items() if k != "doc_id"}, "kind": "invoice"}
    for label in letters:
        answers[label["applicant_name"]] = {**{k: v for k, v in label.items() if k != "doc_id"}, "kind": "cover_letter"}
    for label in cvs:
        answers[label["name"]] = {**{k: v for k, v in label.items() if k != "doc_id"}, "kind": "resume"}
    for key in NONE_KEYS:
        answers[key] = {"kind": "none"}
    return answers


def results(out: Path, schema: str) -> dict[str, dict[str, Any]]:
    path = out / schema / "results.parquet"
    return {row["doc_id"]: row for row in pl.read_parquet(path).to_dicts()} if path.exists() else {}


def routes(out: Path) -> dict[str, dict[str, Any]]:
    return {row["doc_id"]: row for row in pl.read_parquet(out / "_routing" / "routes.parquet").to_dicts()}


def routing_requests(server: FakeOpenAI) -> list[dict[str, Any]]:
    return [r for r in server_log(server) if "which kind of document is this" in r["first_user"]]


def test_a_mixed_folder_sends_every_document_to_its_own_schema_and_the_unknown_kinds_nowhere(tmp_path: Path) -> None:
    cvs = resumes(tmp_path / "dataset")
    shutil.copytree(ROOT / "inputs", tmp_path / "in" / "letters")
    shutil.copytree(tmp_path / "dataset" / "resumes", tmp_path / "in" / "resumes")
    shutil.copytree(ROOT / "samples" / "invoices", tmp_path / "in" / "invoices")
    write_docs(tmp_path / "in", UNKNOWN)
    with serving(answers=oracle(LETTER_LABELS, cvs, INVOICE_LABELS)) as server:
        summary = run_routed(make_config(tmp_path, server, schema="auto"))
    out = tmp_path / "out"
    expected = {"cover_letter": ({f"letters/{x['doc_id']}": x for x in LETTER_LABELS},
                                 ("applicant_name", "email", "phone", "company", "desired_role")),
                "resume": ({f"resumes/{x['doc_id']}": x for x in cvs}, ("name", "email", "location", "current_title")),
                "invoice": ({f"invoices/{x['doc_id']}": x for x in INVOICE_LABELS},
                            ("invoice_number", "supplier_name", "customer_name", "currency", "total_amount"))}
    for schema, (labels, fields) in expected.items():
        rows = results(out, schema)
        for doc_id, label in labels.items():
            assert rows[doc_id]["status"] == "ok", (schema, doc_id, rows.get(doc_id))
            assert {f: rows[doc_id][f] for f in fields} == {f: label.get(f) for f in fields}, (schema, doc_id)
        strays = [d for d, row in rows.items() if d not in labels and row["status"] == "ok"]
        assert strays == [], f"{schema} has ok rows of other kinds: {strays}"
    assert summary.routed == {"cover_letter": 24, "resume": 20, "invoice": 30}
    route = routes(out)
    for doc_id in UNKNOWN:
        assert route[doc_id]["status"] == "skipped" and route[doc_id]["schema_name"] is None
        assert "cover_letter, invoice, resume" in route[doc_id]["error_message"]  # the reason names the candidates
    assert sorted(d for d, _ in summary.skips) == sorted(UNKNOWN)
    # An e-mail whose attachment is part of the same letter stays one document, as a one-schema run reads it.
    assert "letters/2026-11/jakub_dvorak.eml" in results(out, "cover_letter")
    assert not [d for d in route if "#" in d]
    # Every decision says how it was made, how sure, and what it cost; the questions' tokens are in the run's cost.
    # (an e-mail kept whole names the methods of its parts: "keywords+model")
    assert {m for r in route.values() for m in r["method"].split("+")} <= {"keywords", "abstained", "neighbours",
                                                                          "model"}
    asked = [r for r in route.values() if r["method"] == "model"]
    assert asked and all(r["prompt_tokens"] > 0 and r["cost_usd"] > 0 for r in asked)
    assert summary.routing_cost_usd == pytest.approx(sum(r["cost_usd"] for r in route.values()))
    assert summary.cost_usd == pytest.approx(summary.routing_cost_usd + sum(r.cost_usd or 0 for r in summary.runs))
    saved = json.loads((out / "_routing" / "run_summary.json").read_text())
    assert saved["skipped"] == 4 and {r["schema_name"] for r in saved["runs"]} == {
        "cover_letter", "invoice", "resume"}


def _application_email(letter: str, cv_pdf: bytes, body: str = "Please find my application attached.") -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = "Ines Duarte <ines.duarte@example.pt>"
    msg["To"] = "jobs@example.com"
    msg["Subject"] = "Application"
    msg.set_content(body)
    msg.add_attachment(letter.encode(), maintype="text", subtype="plain", filename="letter.txt")
    msg.add_attachment(cv_pdf, maintype="application", subtype="pdf", filename="cv.pdf")
    return bytes(msg)


LETTER = ("Dear hiring team,\n\nI am writing to apply for the position of Data Engineer at Lisbon Freight. "
          "I look forward to an interview.\n\nSincerely,\nInes Duarte\n")
CV = ("Ines Duarte - CV\nLisbon, Portugal\n\nWORK EXPERIENCE\nData Engineer, Porto Logistics, 2021 - 2026\n\n"
      "EDUCATION\nMSc Computer Science, University of Lisbon, 2020\n\nSKILLS\nPython, SQL, Airflow\n")


def _pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def test_an_email_with_a_cover_letter_and_a_cv_attached_gives_one_row_in_each_schema(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"mail.eml": _application_email(LETTER, _pdf(CV))})
    answers = {"Lisbon Freight": {"applicant_name": "Ines Duarte", "company": "Lisbon Freight", "kind": "cover_letter"},
               "Porto Logistics": {"name": "Ines Duarte", "companies": ["Porto Logistics"], "kind": "resume"},
               "Please find my application": {"kind": "none"}}
    with serving(answers=answers) as server:
        summary = run_routed(make_config(tmp_path, server, schema="auto"))
    out = tmp_path / "out"
    letters, cvs = results(out, "cover_letter"), results(out, "resume")
    assert list(letters) == ["mail.eml#letter.txt"] and letters["mail.eml#letter.txt"]["status"] == "ok"
    assert letters["mail.eml#letter.txt"]["company"] == "Lisbon Freight"
    assert list(cvs) == ["mail.eml#cv.pdf"] and cvs["mail.eml#cv.pdf"]["status"] == "ok"
    assert cvs["mail.eml#cv.pdf"]["companies"] == ["Porto Logistics"]
    # Each part's evidence is found in that part's own text (a PDF's too), not in the whole e-mail's.
    assert cvs["mail.eml#cv.pdf"]["grounded"] == 1.0
    # Its row's hash is its own bytes': the review page finds that part again in the e-mail (review, finetune).
    from extractor.documents import SourceFile, content_sha256

    row = cvs["mail.eml#cv.pdf"]
    again = SourceFile.of(Path(row["source_path"]), row["doc_id"])
    assert again.part == "cv.pdf" and content_sha256(again) == row["content_sha256"]
    # The body says nothing of a kind: a route of its own, skipped, listed.
    assert routes(out)["mail.eml#body"]["status"] == "skipped"
    assert summary.skips and summary.skips[0][0] == "mail.eml#body"


def test_an_email_is_archived_once_all_its_parts_are_done_and_a_document_of_no_kind_never(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"mail.eml": _application_email(LETTER, _pdf(CV)), "recipe.txt": RECIPE})
    answers = {"Lisbon Freight": {"kind": "cover_letter", "applicant_name": "Ines Duarte"},
               "Porto Logistics": {"kind": "resume", "name": "Ines Duarte"},
               "Please find my application": {"kind": "none"}, "Lemon drizzle": {"kind": "none"}}
    archive = tmp_path / "archive"
    with serving(answers=answers) as server:
        summary = run_routed(make_config(tmp_path, server, schema="auto", archive_dir=archive))
    assert summary.archived_emails == 1
    assert (archive / "mail.eml").is_file() and not (tmp_path / "in" / "mail.eml").exists()
    assert (tmp_path / "in" / "recipe.txt").is_file() and not (archive / "recipe.txt").exists()


def test_a_decision_is_reused_for_the_same_bytes_and_candidates_and_asked_again_when_they_change(
        tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"residents.txt": RESIDENTS, "short.txt": SHORT})
    answers = {"Dear residents": {"kind": "none"}, "Orbital": {"kind": "none"}}
    with serving(answers=answers) as server:
        cfg = make_config(tmp_path, server, schema="auto")
        first = run_routed(cfg)
        assert len(routing_requests(server)) == 2 and first.cached == 0
        again = run_routed(cfg)
        assert len(routing_requests(server)) == 2, "an unchanged document is not asked again"
        assert again.cached == 2 and again.routing_cost_usd == 0.0 and again.skipped == 2
        fewer = run_routed(make_config(tmp_path, server, schema="auto", schemas=("resume",)))
        # Another candidate set is another question: asked again for short.txt, whose "references" is a CV's hint;
        # the residents' letter has none of a resume's hints, so it is of no known kind without asking.
        assert len(routing_requests(server)) == 3, "another candidate set is another question"
        assert routes(tmp_path / "out")["residents.txt"]["method"] == "abstained"
        assert fewer.candidates == ["resume"] and fewer.candidates_version != first.candidates_version


def test_a_document_that_changes_kind_moves_and_its_old_schemas_row_is_retired(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"doc.txt": LETTER})
    answers = {"Lisbon Freight": {"kind": "cover_letter", "applicant_name": "Ines Duarte"},
               "Porto Logistics": {"kind": "resume", "name": "Ines Duarte"}}
    out = tmp_path / "out"
    with serving(answers=answers) as server:
        cfg = make_config(tmp_path, server, schema="auto")
        run_routed(cfg)
        assert results(out, "cover_letter")["doc.txt"]["status"] == "ok"
        write_docs(tmp_path / "in", {"doc.txt": CV})
        moved = run_routed(cfg)
    assert moved.moved == [["doc.txt", "cover_letter", "resume"]]
    assert "doc.txt" not in results(out, "cover_letter"), "the letter's row is retired from the letters' results"
    assert results(out, "resume")["doc.txt"]["status"] == "ok"
    assert routes(out)["doc.txt"]["previous_schema"] == "cover_letter"


def test_the_dry_run_shows_the_planned_routes_and_their_cost_and_sends_and_writes_nothing(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"letter.txt": LETTER, "recipe.txt": RECIPE, "residents.txt": RESIDENTS})
    with serving() as server:
        plan = plan_routed(make_config(tmp_path, server, schema="auto"))
        assert server_log(server) == []
    assert not (tmp_path / "out").exists()
    planned = {r.doc_id: r for r in plan.routes}
    assert planned["letter.txt"].schema == "cover_letter" and planned["letter.txt"].method == "keywords"
    assert planned["recipe.txt"].method == "abstained" and planned["recipe.txt"].schema is None
    assert planned["residents.txt"].method == "model" and plan.questions == 1
    assert plan.question_tokens > 0 and plan.question_cost_usd and plan.question_cost_usd > 0
    assert plan.plans["cover_letter"].to_send[0].doc_id == "letter.txt"
    assert plan.cost_usd == pytest.approx(plan.question_cost_usd + (plan.plans["cover_letter"].cost_usd or 0))


def test_the_routing_question_offers_only_the_schema_names_and_none(tmp_path: Path) -> None:
    import hashlib

    from extractor.extraction.routing import Hints, question
    from extractor.schemas import load_candidates

    write_docs(tmp_path / "in", {"residents.txt": RESIDENTS})
    with serving(answers={"Dear residents": {"kind": "none"}}) as server:
        run_routed(make_config(tmp_path, server, schema="auto"))
        log = server_log(server)
    assert len(log) == 1, "one question, and nothing extracted for a document of no known kind"
    candidates = load_candidates(ROOT / "schemas")
    hits = Hints(candidates).hits(RESIDENTS.strip())
    messages, answer = question(candidates, RESIDENTS.strip(), hits)
    assert answer["properties"]["kind"]["enum"] == ["cover_letter", "invoice", "resume", "none"]
    assert log[0]["schema_sha256"] == hashlib.sha256(json.dumps(answer, sort_keys=True).encode()).hexdigest()
    assert log[0]["messages"] == messages and "<document>" in messages[1]["content"]  # the document fenced as data


def test_schemas_setting_restricts_the_candidates_and_refuses_routing_words(tmp_path: Path) -> None:
    (tmp_path / "extractor.toml").write_text('schema = "auto"\nschemas = ["resume", "cover_letter"]\n')
    cfg = build_config({"schemas_dir": ROOT / "schemas"}, tmp_path / "extractor.toml", env={})
    assert cfg.routed and cfg.schemas == ("resume", "cover_letter")
    (tmp_path / "extractor.toml").write_text('schema = "auto"\nschemas = "resume"\n')
    assert build_config({}, tmp_path / "extractor.toml", env={}).schemas == ("resume",)
    from extractor.schemas import load_candidates

    with pytest.raises(ConfigError, match="routing words"):
        load_candidates(ROOT / "schemas", ("none",))
    with pytest.raises(ConfigError, match="no schema named"):
        load_candidates(ROOT / "schemas", ("invoices",))


def test_a_reviewer_re_routes_a_document_from_a_sheet_and_eval_reports_routing_accuracy(tmp_path: Path) -> None:
    from extractor.extraction.routing import import_routes, reroute
    from extractor.quality.routing import evaluate_routing
    from extractor.store import PERSON, Labels

    write_docs(tmp_path / "in", {"letter.txt": LETTER, "short.txt": SHORT, "recipe.txt": RECIPE})
    answers = {"Orbital": {"kind": "resume", "name": "Ines"}, "Lisbon Freight": {"applicant_name": "Ines Duarte"},
               "Lemon drizzle": {"kind": "none"}}
    out = tmp_path / "out"
    with serving(answers=answers) as server:
        cfg = make_config(tmp_path, server, schema="auto")
        run_routed(cfg)
        assert routes(out)["short.txt"]["schema_name"] == "resume"  # the model got it wrong
        # A reviewer edits the routes sheet: short.txt is a letter; the unchanged rows are not labels.
        sheet = tmp_path / "routes.csv"
        sheet.write_text("doc_id,schema_name\nletter.txt,cover_letter\nshort.txt,cover_letter\nrecipe.txt,\n")
        report = import_routes(cfg, sheet)
        assert report.stored == [("short.txt", "cover_letter")] and report.rows_read == 3
        assert reroute(cfg, [("letter.txt", "invoices")], source="test").rejected  # not a candidate: refused
        again = run_routed(cfg)
    assert again.methods.get("label") == 1 and again.moved == [["short.txt", "resume", "cover_letter"]]
    assert results(out, "cover_letter")["short.txt"]["status"] == "ok" and "short.txt" not in results(out, "resume")
    # A labeled letter is a letter too (the labels store knows its schema).
    labels = Labels(out / "cover_letter" / "journal.sqlite3")
    labels.add("letter.txt", "applicant_name", "Ines Duarte", source="test", content_sha256=None, kind=PERSON)
    labels.close()
    scored = evaluate_routing(cfg)
    assert (scored.labeled, scored.scored, scored.right) == (2, 2, 1)  # short.txt's own route was wrong
    assert scored.confusion[("cover_letter", "resume")] == 1 and scored.by_method["keywords"] == [1, 1]


def test_labeled_documents_vote_as_neighbours_when_the_hints_alone_do_not_decide(tmp_path: Path) -> None:
    from extractor.store import PERSON, Labels

    letters = {f"l{i}.txt": f"Dear team,\n\nI am writing to apply for the data engineer position at Orbital Freight "
                            f"({i}): Airflow pipelines, dbt models and freight reporting.\n\nSincerely,\n"
                            f"Applicant {i}\n" for i in range(3)}
    new = ("Data engineer for Orbital Freight: my Airflow pipelines and dbt models cut the freight reporting time in "
           "half. Dear reader, more on request.\n")
    write_docs(tmp_path / "in", {**letters, "new.txt": new})
    labels = Labels(tmp_path / "out" / "cover_letter" / "journal.sqlite3")
    for i, doc_id in enumerate(letters):
        labels.add(doc_id, "applicant_name", f"Applicant {i}", source="test", content_sha256=None, kind=PERSON)
    labels.close()
    with serving() as server:
        run_routed(make_config(tmp_path, server, schema="auto"))
        assert routing_requests(server) == [], "no question: the neighbours and one hint decided"
    route = routes(tmp_path / "out")["new.txt"]
    assert (route["schema_name"], route["method"], route["confidence"]) == ("cover_letter", "neighbours", 1.0)
    assert all(doc_id in route["error_message"] for doc_id in letters)


@pytest.mark.integration
def test_the_cli_routes_a_folder_lists_the_unknown_kinds_and_takes_a_re_route(tmp_path: Path) -> None:
    import os
    import subprocess

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        return subprocess.run([sys.executable, "-m", "extractor", *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=120)

    write_docs(tmp_path / "in", {"letter.txt": LETTER, "recipe.txt": RECIPE, "residents.txt": RESIDENTS})
    with serving(answers={"Dear residents": {"kind": "none"}}) as server:
        common = ["--base-url", server.base_url, "--output", str(tmp_path / "out"), "--model", "gpt-4o-mini"]
        planned = cli("run", str(tmp_path / "in"), "--schema", "auto", "--dry-run", *common)
        assert planned.returncode == 0, planned.stderr
        assert "routing questions to ask: 1" in planned.stdout and "keywords" in planned.stdout
        done = cli("run", str(tmp_path / "in"), "--schema", "auto", "--xlsx", *common)
        assert done.returncode == 0, done.stderr
        # --xlsx: each schema's sheet and the routes sheet
        assert (tmp_path / "out" / "cover_letter" / "results.xlsx").is_file()
        assert f"wrote {tmp_path / 'out' / '_routing' / 'routes.xlsx'}" in done.stdout
        assert "recipe.txt: of no known kind: none of cover_letter, invoice, resume" in " ".join(done.stdout.split())
        rerouted = cli("route", "recipe.txt", "cover_letter", "--output", str(tmp_path / "out"))
        assert rerouted.returncode == 0 and "recipe.txt -> cover_letter" in rerouted.stdout
        scored = cli("eval", "--routing", "--output", str(tmp_path / "out"), "--json")
    assert json.loads(scored.stdout)["right"] == 0 and json.loads(scored.stdout)["scored"] == 1


def test_an_email_is_split_only_when_it_has_attachments_and_a_hash_in_a_file_name_is_no_part(tmp_path: Path) -> None:
    from extractor.documents import SourceFile, discover, email_parts, split_emails

    plain = email.message.EmailMessage()
    plain["Subject"] = "Hello"
    plain.set_content("Just a note.")
    write_docs(tmp_path, {"plain.eml": bytes(plain), "with.eml": _application_email(LETTER, _pdf(CV), body=" "),
                          "a#b.txt": "a file whose name has a hash"})
    found = {s.doc_id: s for s in split_emails(discover(tmp_path))}
    assert set(found) == {"a#b.txt", "plain.eml", "with.eml#letter.txt", "with.eml#cv.pdf"}  # no empty body
    assert found["with.eml#cv.pdf"].suffix == ".pdf" and found["a#b.txt"].part is None
    assert SourceFile.of(tmp_path / "a#b.txt", "a#b.txt").part is None
    assert SourceFile.of(tmp_path / "with.eml", "with.eml#cv.pdf").part == "cv.pdf"
    assert email_parts(bytes(plain)) == {}


def test_a_document_with_no_hint_of_any_candidate_is_of_no_known_kind_without_a_question(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"recipe.txt": RECIPE, "notice.txt": NOTICE, "letter.txt": LETTER})
    with serving(answers={"Lisbon Freight": {"applicant_name": "Ines Duarte"}}) as server:
        summary = run_routed(make_config(tmp_path, server, schema="auto"))
        assert routing_requests(server) == [], "no keyword and no shape of any candidate: nothing to ask"
    route = routes(tmp_path / "out")
    for doc_id in ("recipe.txt", "notice.txt"):
        assert (route[doc_id]["status"], route[doc_id]["schema_name"], route[doc_id]["method"]) == (
            "skipped", None, "abstained")
        assert "no hint of any candidate" in route[doc_id]["error_message"]
    assert summary.skipped == 2 and summary.methods == {"keywords": 1, "abstained": 2}


def test_finding_no_hint_means_none_only_when_every_candidate_declares_its_hints(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    text = (ROOT / "schemas" / "resume.py").read_text()
    (schemas / "resume.py").write_text(text)
    # A user's schema that says nothing of what its documents look like: a recipe may be one of them.
    (schemas / "note.py").write_text(
        "from pydantic import BaseModel\n\n\nclass Note(BaseModel):\n    title: str | None = None\n\n\n"
        "MODEL = Note\nINSTRUCTIONS = 'Extract the title.'\n")
    write_docs(tmp_path / "in", {"recipe.txt": RECIPE})
    with serving(answers={"Lemon drizzle": {"kind": "note", "title": "Lemon drizzle cake"}}) as server:
        run_routed(make_config(tmp_path, server, schema="auto", schemas_dir=schemas))
        assert len(routing_requests(server)) == 1
    route = routes(tmp_path / "out")["recipe.txt"]
    assert (route["schema_name"], route["method"]) == ("note", "model")


def test_the_shapes_of_a_letter_and_a_cv_are_found_in_any_language() -> None:
    from extractor.extraction.shapes import closing, date_ranges, headings, salutation

    # Written for this test (a Czech and a German letter), not taken from the benchmark's letters.
    czech = ("Jana Horáková\nBrno, 4. května 2027\n\nVážená paní Dvořáková,\n\nráda bych se ucházela o místo "
             "účetní ve vaší společnosti, kde bych uplatnila své zkušenosti.\n\nS pozdravem,\nJana Horáková\n")
    german = ("Sehr geehrte Frau Weber,\n\nhiermit bewerbe ich mich um die Stelle als Elektriker in Ihrem "
              "Betrieb in Leipzig.\n\nMit freundlichen Grüßen\nTobias Lange\n")
    for letter in (czech, german, LETTER):
        assert salutation(letter), letter
        assert not date_ranges(letter) and not headings(letter)
    assert closing(czech) and closing(LETTER)
    assert closing(german) is None  # a sign-off is known by its comma: German's comma-less one is not (a limit)
    cv = CV + "Intern, Lisbon Freight, 2019 to 2020\n"
    assert date_ranges(cv) and headings(cv) and not salutation(cv) and not closing(cv)
    for other in (RECIPE, MINUTES, NOTICE):
        assert not any(shape(other) for shape in (salutation, closing, date_ranges, headings)), other
    # A CV's headings with a colon are no greeting; a line of digits is no sign-off.
    assert salutation("TECHNICAL QUALIFICATION:\nJava, Spring Boot, Kafka and Kubernetes on AWS and Azure.") is None
    assert closing("Totals,\n12 400 EUR\n") is None


def test_the_question_offers_the_likeliest_kind_first_and_an_unknown_shape_is_refused(tmp_path: Path) -> None:
    from extractor.extraction.routing import Hints, question
    from extractor.schemas import load_candidates

    candidates = load_candidates(ROOT / "schemas")
    cvish = "Ines Duarte\nWORK EXPERIENCE\nAnalyst, 2019 - 2021\nEDUCATION\nBSc, 2015 - 2018\nSKILLS\nSQL\n"
    _, answer = question(candidates, cvish, Hints(candidates).hits(cvish))
    assert answer["properties"]["kind"]["enum"][0] == "resume"
    _, answer = question(candidates, cvish)  # no evidence given: the candidates' own order
    assert answer["properties"]["kind"]["enum"] == ["cover_letter", "invoice", "resume", "none"]
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "resume.py").write_text((ROOT / "schemas" / "resume.py").read_text().replace(
        'SHAPES = ["date-ranges", "headings"]', 'SHAPES = ["date-range"]'))
    with pytest.raises(ConfigError, match=r"resume\.py: SHAPES \['date-range'\] are not shapes"):
        Hints(load_candidates(schemas))


def test_the_routes_sheet_shows_each_documents_kind_how_decided_and_how_sure_and_comes_back_as_re_routes(
        tmp_path: Path) -> None:
    import openpyxl

    from extractor.errors import ExportRefused
    from extractor.extraction.routing import import_routes
    from extractor.views.spreadsheets import ExportConfig, export_routes

    write_docs(tmp_path / "in", {"letter.txt": LETTER, "short.txt": SHORT, "recipe.txt": RECIPE})
    answers = {"Orbital": {"kind": "resume", "name": "Ines"}, "Lisbon Freight": {"applicant_name": "Ines Duarte"}}
    with serving(answers=answers) as server:
        cfg = make_config(tmp_path, server, schema="auto")
        run_routed(cfg)
        sheet = export_routes(ExportConfig(settings=cfg))
        assert sheet == tmp_path / "out" / "_routing" / "routes.xlsx"
        book = openpyxl.load_workbook(sheet)
        rows = list(book["routes"].iter_rows(values_only=True))
        header = list(rows[0])
        assert header[:4] == ["doc_id", "schema_name", "method", "confidence"]
        got = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
        assert (got["letter.txt"]["schema_name"], got["letter.txt"]["method"]) == ("cover_letter", "keywords")
        assert (got["recipe.txt"]["schema_name"], got["recipe.txt"]["method"]) == (None, "abstained")
        assert (got["short.txt"]["schema_name"], got["short.txt"]["method"]) == ("resume", "model")
        assert 0 < got["short.txt"]["confidence"] <= 1 and got["short.txt"]["cost_usd"] > 0
        # A reviewer corrects short.txt in the sheet: not exported over until imported, then followed.
        column = header.index("schema_name") + 1
        number = [r[0] for r in rows].index("short.txt") + 1
        book["routes"].cell(row=number, column=column, value="cover_letter")
        book.save(sheet)
        with pytest.raises(ExportRefused, match=r"short\.txt"):
            export_routes(ExportConfig(settings=cfg))
        assert import_routes(cfg, sheet).stored == [("short.txt", "cover_letter")]
        assert import_routes(cfg, sheet).stored == [], "imported once: the same sheet again stores nothing"
        export_routes(ExportConfig(settings=cfg, fmt="csv"))
        again = run_routed(cfg)
    assert again.moved == [["short.txt", "resume", "cover_letter"]]
    csv_rows = (tmp_path / "out" / "_routing" / "routes.csv").read_text(encoding="utf-8-sig").splitlines()
    assert csv_rows[0].startswith("doc_id,schema_name,method,confidence")


def test_max_cost_counts_the_routing_question_with_its_documents_extraction_up_front(tmp_path: Path) -> None:
    from extractor.errors import ExitCode

    write_docs(tmp_path / "in", {"letter.txt": LETTER, "residents.txt": RESIDENTS, "short.txt": SHORT})
    answers = {"Dear residents": {"kind": "none"}, "Orbital": {"kind": "resume", "name": "Ines"},
               "Lisbon Freight": {"applicant_name": "Ines Duarte"}}
    with serving(answers=answers) as server:
        # A limit below one question and its document's extraction: nothing is asked, nothing is paid for routing.
        tight = make_config(tmp_path, server, schema="auto", max_cost_usd=1e-5)
        plan = plan_routed(tight)
        assert plan.deferred == 2 and plan.questions == 0
        assert {r.doc_id for r in plan.routes if r.method == "deferred"} == {"residents.txt", "short.txt"}
        summary = run_routed(tight)
        assert routing_requests(server) == [], "a question that does not fit is not asked"
        assert summary.deferred == 2 and summary.exit_code == ExitCode.COST_LIMIT
        assert summary.cost_limited and "2 document(s) not routed" in summary.cost_limited
        route = routes(tmp_path / "out")
        assert route["residents.txt"]["status"] == "deferred" and "max_cost_usd" in route["residents.txt"][
            "error_message"]
        assert route["letter.txt"]["schema_name"] == "cover_letter"  # decided free: routed all the same
        # The next run with room asks them.
        roomy = run_routed(make_config(tmp_path, server, schema="auto", max_cost_usd=1.0))
        assert len(routing_requests(server)) == 2 and roomy.deferred == 0
        assert roomy.cost_usd is not None and roomy.cost_usd <= 1.0


@pytest.mark.parametrize("interrupted", ["deferred", "failed"])
def test_a_document_that_changes_kind_moves_even_when_its_route_waited_a_run(tmp_path: Path, interrupted: str) -> None:
    """A route decided a run later (deferred by --max-cost, or its question failed) still knows where the document
    was: the move is recorded and the old schema's row retired."""
    write_docs(tmp_path / "in", {"doc.txt": LETTER})
    out = tmp_path / "out"
    with serving(answers={"Lisbon Freight": {"applicant_name": "Ines Duarte"}}) as server:
        run_routed(make_config(tmp_path, server, schema="auto"))
        assert results(out, "cover_letter")["doc.txt"]["status"] == "ok"
    write_docs(tmp_path / "in", {"doc.txt": SHORT})  # now a document the question decides
    if interrupted == "deferred":
        with serving(answers={"Orbital": {"kind": "resume", "name": "Ines"}}) as server:
            waiting = run_routed(make_config(tmp_path, server, schema="auto", max_cost_usd=1e-5))
        assert waiting.deferred == 1
    else:  # the routing question's answer is not one of the kinds
        with serving(answers={"Orbital": {"kind": "poem", "name": "Ines"}}) as server:
            waiting = run_routed(make_config(tmp_path, server, schema="auto"))
        assert waiting.failed == 1
    assert routes(out)["doc.txt"]["status"] == interrupted and waiting.moved == []
    with serving(answers={"Orbital": {"kind": "resume", "name": "Ines"}}) as server:
        moved = run_routed(make_config(tmp_path, server, schema="auto"))
    assert moved.moved == [["doc.txt", "cover_letter", "resume"]]
    assert routes(out)["doc.txt"]["previous_schema"] == "cover_letter"
    assert "doc.txt" not in results(out, "cover_letter"), "the letter's row is retired from the letters' results"
    assert results(out, "resume")["doc.txt"]["status"] == "ok"


def test_the_model_servers_start_is_timed_apart_from_routing_and_routings_time_is_split_by_part(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with a fixed schema pays the backend's opening (the embedded server's start) too: it is startup_s, not
    routing's time, even when the first routing question is what opens it."""
    import asyncio
    import contextlib

    from extractor.extraction import routing

    real = routing.open_backend
    START = 1.5

    @contextlib.asynccontextmanager
    async def slow_start(config: Any) -> Any:
        await asyncio.sleep(START)  # a model server loading its weights
        async with real(config) as backend:
            yield backend

    monkeypatch.setattr(routing, "open_backend", slow_start)
    write_docs(tmp_path / "in", {"letter.txt": LETTER, "short.txt": SHORT, "recipe.txt": RECIPE})
    with serving(answers={"Orbital": {"kind": "resume", "name": "Ines"},
                          "Lisbon Freight": {"applicant_name": "Ines Duarte"}}) as server:
        summary = run_routed(make_config(tmp_path, server, schema="auto"))
    assert summary.methods == {"keywords": 1, "model": 1, "abstained": 1}
    assert summary.startup_s >= START
    assert summary.routing_parts["question"] < START, "the question's time is not the server's start"
    assert routes(tmp_path / "out")["short.txt"]["latency_s"] < START
    assert set(summary.routing_parts) == {"read", "signals", "neighbours", "question"}
    assert sum(summary.routing_parts.values()) <= summary.routing_s + 1e-3
    assert summary.routing_s + summary.startup_s <= summary.wall_s
    assert summary.routing_share_after_start > summary.routing_share > 0
    saved = json.loads((tmp_path / "out" / "_routing" / "run_summary.json").read_text())
    assert saved["startup_s"] == summary.startup_s and saved["routing_share_after_start"] > 0
    from rich.console import Console

    from extractor.views.terminal import print_routed_summary

    console = Console(record=True, width=300)
    print_routed_summary(summary, console)
    shown = console.export_text()
    assert f"without the model server's start ({summary.startup_s:.2f} s" in shown


def test_every_routing_question_shares_its_instructions_and_kinds_as_one_prefix() -> None:
    """The embedded server reuses the KV cache of the longest prefix shared with the last prompt: what every
    question has in common comes first, byte-identical, whatever the document and the order its answers are offered."""
    from extractor.extraction.routing import BEGINNING, Hints, question
    from extractor.schemas import load_candidates

    candidates = load_candidates(ROOT / "schemas")
    hints = Hints(candidates)
    asked = [question(candidates, text, hints.hits(text)) for text in (LETTER, CV, RECIPE * 40)]
    assert [a["properties"]["kind"]["enum"][0] for _, a in asked] == ["cover_letter", "resume", "cover_letter"]
    assert asked[0][1] != asked[1][1], "the answers' order follows each document's evidence"
    systems = {messages[0]["content"] for messages, _ in asked}
    assert len(systems) == 1 and all(s.name in next(iter(systems)) for s in candidates), "one prefix, every kind"
    for (messages, _), text in zip(asked, (LETTER, CV, RECIPE * 40), strict=True):
        assert messages[1]["content"].startswith("<document>\n" + text[:BEGINNING].rstrip()[:200])
        assert "Job application cover letters" not in messages[1]["content"], "the kinds are in the shared prefix"
    assert len(asked[2][0][1]["content"]) < BEGINNING + 200, "only the document's beginning is sent"


def test_a_move_away_from_a_schema_left_out_of_the_candidates_says_its_row_stays(tmp_path: Path) -> None:
    """Only a candidate schema's run retires rows: the summary must not claim a non-candidate's row was retired."""
    from rich.console import Console

    from extractor.views.terminal import print_routed_summary

    write_docs(tmp_path / "in", {"doc.txt": LETTER})
    answers = {"Lisbon Freight": {"kind": "cover_letter", "applicant_name": "Ines Duarte"},
               "Porto Logistics": {"kind": "resume", "name": "Ines Duarte"}}
    with serving(answers=answers) as server:
        run_routed(make_config(tmp_path, server, schema="auto"))
        write_docs(tmp_path / "in", {"doc.txt": CV})
        summary = run_routed(make_config(tmp_path, server, schema="auto", schemas=("resume",)))
    assert summary.moved == [["doc.txt", "cover_letter", "resume"]]
    assert "doc.txt" in results(tmp_path / "out", "cover_letter"), "no cover_letter run: its results as they were"
    console = Console(record=True, width=300)
    print_routed_summary(summary, console)
    shown = console.export_text()
    assert "cover_letter is not a candidate of this run: its row there stays" in shown
    assert "row is retired" not in shown


# -- the open documents' question asked in their run, just before their extraction (routing.InRun) ---------------

# One hint of a CV ("references") and nothing else, like SHORT: the question decides, asked in resume's run.
SHORT2 = "Hello Nimbus team, I build data pipelines and would enjoy a chat; references on request. Marta Silva\n"


def _in_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with the embedded default (`routing.asks_in_run`), against the fake server."""
    from extractor.extraction import routing

    monkeypatch.setattr(routing, "asks_in_run", lambda config: True)


def test_the_open_documents_are_asked_in_their_likeliest_schemas_run_with_its_prompt_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extractor.extraction import fields
    from extractor.extraction.prompts import wrap_document

    _in_run(monkeypatch)
    write_docs(tmp_path / "in", {"letter.txt": LETTER, "short.txt": SHORT, "residents.txt": RESIDENTS,
                                 "short2.txt": SHORT2})
    answers = {"Lisbon Freight": {"kind": "cover_letter", "applicant_name": "Ines Duarte"},
               "Orbital": {"kind": "cover_letter", "applicant_name": "Ines"},
               "Dear residents": {"kind": "none"}, "Nimbus": {"kind": "resume", "name": "Marta Silva"}}
    out = tmp_path / "out"
    with serving(answers=answers) as server:
        summary = run_routed(make_config(tmp_path, server, schema="auto", strategy="fields", concurrency=1))
        log = server_log(server)
    assert summary.asked_in_run == 3 and summary.methods == {"keywords": 1, "model": 3}
    # short.txt: the hints rank resume first, the answer is cover_letter, whose run was over: it runs again.
    assert [r.schema_name for r in summary.runs] == ["cover_letter", "resume", "cover_letter"]
    assert summary.runs[1].routed_away == 1 and summary.runs[0].routed_away == 1  # short.txt; residents.txt
    letters, cvs = results(out, "cover_letter"), results(out, "resume")
    assert {d: r["status"] for d, r in letters.items()} == {"letter.txt": "ok", "short.txt": "ok"}
    assert letters["short.txt"]["applicant_name"] == "Ines" and summary.runs[2].cached == 1  # letter.txt carried
    assert {d: r["status"] for d, r in cvs.items()} == {"short2.txt": "ok"}
    assert cvs["short2.txt"]["name"] == "Marta Silva"
    route = routes(out)
    assert route["residents.txt"]["status"] == "skipped" and route["short.txt"]["schema_name"] == "cover_letter"
    assert summary.routed == {"cover_letter": 2, "resume": 1} and summary.skipped == 1 and summary.documents == 4
    # The question shows the extraction's own start, and the extraction's first question follows it at once.
    asked = next(i for i, r in enumerate(log) if "which kind" in r["first_user"] and "Nimbus" in r["first_user"])
    system, start = fields.prompt_start(SHORT2.strip())
    assert start == wrap_document(SHORT2.strip())
    assert log[asked]["messages"][0]["content"] == system
    assert log[asked]["messages"][1]["content"].startswith(start + "\n\n")
    assert "Resumes and CVs" in log[asked]["messages"][1]["content"], "the kinds come after the document"
    following = log[asked + 1]["messages"]
    assert following[0]["content"] == system and following[1]["content"].startswith(start + "\n\n")
    assert "which kind" not in following[1]["content"]
    from rich.console import Console

    from extractor.views.terminal import print_routed_summary

    console = Console(record=True, width=400)
    print_routed_summary(summary, console)
    shown = console.export_text()
    assert "at most" in shown and "3 question(s) asked just before their document's extraction" in shown


def test_an_open_document_no_gate_saw_is_asked_after_the_runs_and_moves_when_its_kind_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored row in the schema ranked first is carried without a gate (no question): asked after the runs, its
    row there is retired when the answer is another kind."""
    _in_run(monkeypatch)
    write_docs(tmp_path / "in", {"short2.txt": SHORT2})
    out = tmp_path / "out"
    with serving(answers={"Nimbus": {"kind": "resume", "name": "Marta Silva"}}) as server:
        run_routed(make_config(tmp_path, server, schema="auto"))
        assert results(out, "resume")["short2.txt"]["status"] == "ok"
        # Another candidate set: another question, while resume's row for these bytes is still a valid cached result.
        server.answers["Nimbus"] = {"kind": "cover_letter", "applicant_name": "Marta Silva"}
        before = len(routing_requests(server))
        summary = run_routed(make_config(tmp_path, server, schema="auto", schemas=("cover_letter", "resume")))
        asked = routing_requests(server)[before:]
    assert len(asked) == 1 and summary.asked_in_run == 0
    assert asked[0]["messages"][0]["content"].startswith("You sort documents"), "asked on its beginning"
    assert summary.moved == [["short2.txt", "resume", "cover_letter"]]
    assert "short2.txt" not in results(out, "resume"), "its resume row is retired"
    assert results(out, "cover_letter")["short2.txt"]["applicant_name"] == "Marta Silva"


def test_a_stop_before_an_open_documents_turn_leaves_it_for_the_next_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from extractor.errors import ExitCode
    from extractor.extraction.routing import run_routed_async

    _in_run(monkeypatch)
    write_docs(tmp_path / "in", {"letter.txt": LETTER, "short2.txt": SHORT2})
    answers = {"Lisbon Freight": {"kind": "cover_letter", "applicant_name": "Ines Duarte"},
               "Nimbus": {"kind": "resume", "name": "Marta Silva"}}
    out = tmp_path / "out"

    class StopAfterFirst:
        def __init__(self, stop: asyncio.Event) -> None:
            self.stop = stop

        def started(self, total: int, backend: str, model: str) -> None:
            pass

        def finished(self, row: dict[str, Any], totals: Any) -> None:
            self.stop.set()

    async def stopped_run(cfg: Any) -> Any:
        stop = asyncio.Event()
        return await run_routed_async(cfg, StopAfterFirst(stop), stop)

    with serving(answers=answers) as server:
        cfg = make_config(tmp_path, server, schema="auto", concurrency=1)
        summary = asyncio.run(stopped_run(cfg))
        assert routing_requests(server) == []
        assert summary.stopped == 1 and summary.exit_code == ExitCode.INTERRUPTED
        assert routes(out)["short2.txt"]["status"] == "stopped" and routes(out)["short2.txt"]["method"] is None
        again = run_routed(cfg)
    assert again.asked_in_run == 1 and results(out, "resume")["short2.txt"]["status"] == "ok"
    assert again.exit_code == ExitCode.OK
