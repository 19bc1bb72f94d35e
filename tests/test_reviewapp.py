"""`extractor review --serve`: a real run against the fake server, then the review app over its outputs. The
API's rules (token, origin, the schema's validators, conflicts), its labels counted by `export` and `eval`,
review while a run writes the same outputs, the CLI, and the page driven by keyboard in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor.extraction import runner
from extractor.ladder.breakeven import Assumptions, labeled_documents
from extractor.ladder.finetune import FinetuneConfig, export_finetune
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.schemas import load_schema
from extractor.store import PERSON, Labels
from extractor.views.reviewapp import FINETUNE_EXAMPLES, ReviewApp, ServeConfig, running
from extractor.views.reviewapp.forms import from_input, inputs_of
from extractor.views.spreadsheets import ExportConfig, export

from .conftest import ROOT, make_config, serving, settings, write_docs

CHROMIUM = Path("/usr/bin/chromium")

ADA = ("Dear hiring team,\n\nI am Ada Lovelace <script>alert(1)</script> & I apply for the Engineer role.\n"
       "I live in Berlin and work for Acme Germany GmbH. Skills: Python, Rust.\n"
       "Reach me at ada@lovelace.org. Salary 85,000 EUR per year.")
LI = ("<html><body><p>My name is <b>Li Wei</b>, living in Shanghai, China. I'd like the QA Lead job at "
      "Foo &amp; Bar Ltd.</p></body></html>")
MARTA = ("I am Marta Kowalska from Krakow, Poland, writing to Orbital Freight about the Data Analyst role.\n"
         "Skills: SQL, Tableau. marta.k@example.org")
ANSWERS: dict[str, dict[str, Any]] = {
    "Ada Lovelace": {"applicant_name": "Ada Lovelace", "email": "ada@lovelace.org", "desired_role": "Engineer",
                     "location": "Berlin, Germany", "company": "Acme Germany GmbH", "skills": ["Python", "Rust"],
                     "salary": {"min": 85000, "max": 85000, "currency": "EUR", "period": "year"}},
    "Marta Kowalska": {"applicant_name": "Marta Kowalska", "email": "marta.k@example.org", "skills": ["SQL", "Tableau"],
                       "location": "Krakow, Poland", "company": "Orbital Freight"},
    "Li Wei": {"applicant_name": "Li Wei", "email": "li.wei@made-up.cn", "location": "Shanghai, China",
               "company": "Foo & Bar Ltd", "desired_role": "QA Lead"},
}
ADA_ID = "2026-11/ada lovelace.txt"  # a folder and a space: URL-encoded in the API's paths
DOCS: dict[str, str | bytes] = {ADA_ID: ADA, "li.html": LI, "marta.txt": MARTA}


def _run(tmp_path: Path, docs: dict[str, str | bytes] = DOCS, **overrides: Any) -> None:
    write_docs(tmp_path / "in", docs)
    with serving(answers=ANSWERS) as server:
        summary = runner.run(make_config(tmp_path, server, **overrides))
    assert summary.ok == len(docs)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    _run(tmp_path)
    return tmp_path / "out"


@pytest.fixture
def app(outputs: Path) -> Iterator[ReviewApp]:
    with running(ServeConfig(settings=settings(outputs, reviewer="grace"), port=0)) as served:
        yield served


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any


def call(app: ReviewApp, method: str, path: str, body: Any = None, *, auth: str | None = "bearer",
         origin: str | None = None, headers: dict[str, str] | None = None) -> Answer:
    """One request as a script (`auth="bearer"`: the token in a header, no Origin) or as the page would send it
    (`auth="cookie"`, and `origin="own"`: the app's own Origin)."""
    sent = dict(headers or {})
    if auth == "bearer":
        sent["Authorization"] = f"Bearer {app.token}"
    elif auth == "cookie":
        sent["Cookie"] = f"{app.cookie}={app.token}"
    if origin is not None:
        sent["Origin"] = app.origin if origin == "own" else origin
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(app.origin + path, data=data, method=method, headers=sent)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            raw, status, got = response.read(), response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, exc.headers
    kind = got.get("Content-Type") or ""
    return Answer(status, json.loads(raw) if kind.startswith("application/json") else raw.decode(), got)


def doc_path(doc_id: str) -> str:
    return "/api/documents/" + urllib.parse.quote(doc_id, safe="")


def person_labels(outputs: Path) -> dict[str, dict[str, Any]]:
    with Labels.open_readonly(outputs / "cover_letter" / "journal.sqlite3") as store:
        return {d: {f: (label.value, label.source) for f, label in fields.items()}
                for d, fields in store.newest(PERSON).items()}


def label_rows(outputs: Path) -> int:
    with sqlite3.connect(outputs / "cover_letter" / "journal.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])


# -- access ---------------------------------------------------------------------------------------------


def test_every_request_needs_the_token(app: ReviewApp) -> None:
    for method, path in (("GET", "/"), ("GET", "/app.js"), ("GET", "/api/documents"), ("GET", doc_path(ADA_ID))):
        refused = call(app, method, path, auth=None)
        assert refused.status == 401, path
        assert "token" in str(refused.body) and app.token not in str(refused.body)
    assert call(app, "POST", doc_path(ADA_ID) + "/labels", {"accept": ["email"]}, auth=None,
                origin="own").status == 401
    wrong = call(app, "GET", "/api/documents", auth=None, headers={"Authorization": "Bearer " + "x" * 43})
    assert wrong.status == 401
    assert call(app, "GET", "/api/documents?token=nope", auth=None).status == 401

    # ?token= once: a cookie (HttpOnly, SameSite=Strict) and the same page without the token in its address.
    first = call(app, "GET", f"/?token={app.token}", auth=None)
    assert first.status == 303 and first.headers["Location"] == "/"
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{app.cookie}={app.token};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = call(app, "GET", "/", auth="cookie")
    assert page.status == 200 and '<script src="/app.js" defer></script>' in page.body
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "<script>" not in page.body, "no inline script"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert call(app, "GET", "/api/documents", auth="cookie").status == 200
    assert app.url == f"http://127.0.0.1:{app.port}/?token={app.token}" and len(app.token) >= 40
    assert app.warning is None


def test_a_post_from_another_origin_is_refused(app: ReviewApp, outputs: Path) -> None:
    before = label_rows(outputs)
    body = {"values": {"email": "evil@example.com"}}
    for origin in ("http://evil.example", "null", f"http://localhost:{app.port + 1}"):
        refused = call(app, "POST", doc_path(ADA_ID) + "/labels", body, origin=origin)
        assert refused.status == 403 and "cross-origin" in refused.body["error"], origin
    # The cookie alone, without an Origin, is not enough either (a browser sends one with every POST).
    assert call(app, "POST", doc_path(ADA_ID) + "/labels", body, auth="cookie").status == 403
    # A host name that is not this machine's (DNS rebinding) is refused for any request.
    rebound = call(app, "GET", "/api/documents", headers={"Host": f"attacker.example:{app.port}"})
    assert rebound.status == 403
    assert label_rows(outputs) == before, "nothing stored"
    # A form post (not JSON) is refused too.
    assert call(app, "POST", doc_path(ADA_ID) + "/labels", body,
                headers={"Content-Type": "application/x-www-form-urlencoded"}).status == 415
    assert call(app, "POST", doc_path(ADA_ID) + "/labels", body, auth="cookie", origin="own").status == 200


# -- the API --------------------------------------------------------------------------------------------


def test_queue_needs_review_first_and_least_sure_first(app: ReviewApp) -> None:
    queue = call(app, "GET", "/api/documents").body
    ids = [d["doc_id"] for d in queue["documents"]]
    assert ids[0] == "li.html", "the made-up e-mail: needs review"
    first = queue["documents"][0]
    assert first["needs_review"] is True and first["status"] == "ok" and first["confidence"] == pytest.approx(0.05)
    assert first["not_found"] == 1 and first["checked"] == 0 and first["reviewed"] is False
    assert sorted(ids) == sorted(DOCS)
    assert queue["progress"] == {"documents": 3, "reviewed": 0, "labeled": 0, "finetune_needs": 500}
    assert Assumptions().training_examples == FINETUNE_EXAMPLES, "breakeven's assumption, not a copy"
    assert queue["fields"][0] == "applicant_name" and queue["reviewer"] == "grace"

    only = call(app, "GET", "/api/documents?field=email&evidence=not_found").body["documents"]
    assert [d["doc_id"] for d in only] == ["li.html"]
    needing = call(app, "GET", "/api/documents?status=needs_review").body["documents"]
    assert [d["doc_id"] for d in needing] == ["li.html"]
    assert call(app, "GET", "/api/documents?status=reviewed").body["documents"] == []
    bad = call(app, "GET", "/api/documents?field=nope")
    assert bad.status == 400 and "no field 'nope'" in bad.body["error"]


def test_document_text_values_and_inputs(app: ReviewApp) -> None:
    doc = call(app, "GET", doc_path(ADA_ID)).body
    assert doc["doc_id"] == ADA_ID and doc["status"] == "ok" and doc["text"].startswith("Dear hiring team")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; I apply" in doc["html"] and "<script>" not in doc["html"]
    assert re.search(r'<mark data-field="applicant_name" data-status="exact"[^>]*>Ada Lovelace</mark>', doc["html"])
    fields = {f["name"]: f for f in doc["fields"]}
    assert list(fields) == list(load_schema(ROOT / "schemas", "cover_letter").model.model_fields)
    assert fields["email"]["value"] == "ada@lovelace.org" and fields["email"]["label"] is None
    assert fields["email"]["evidence"][0]["status"] == "exact" and fields["email"]["version"]
    assert fields["seniority"]["input"]["kind"] == "choice" and "senior" in fields["seniority"]["input"]["choices"]
    assert fields["available_from"]["input"]["kind"] == "date"
    assert fields["notice_period_days"]["input"]["kind"] == "integer"
    assert fields["years_experience"]["input"]["kind"] == "number"
    assert fields["skills"]["input"] == {"name": "skills", "kind": "list", "description": fields["skills"]["input"][
        "description"], "required": False, "nullable": False, "item": {
        "name": "skills", "kind": "text", "description": None, "required": False, "nullable": False}}
    salary = fields["salary"]["input"]
    assert salary["kind"] == "object" and [f["name"] for f in salary["fields"]] == ["min", "max", "currency", "period"]
    period = salary["fields"][3]
    assert period["kind"] == "choice" and period["choices"] == ["year", "month", "day", "hour"]
    assert fields["salary"]["value"] == {"min": 85000.0, "max": 85000.0, "currency": "EUR", "period": "year"}
    assert call(app, "GET", doc_path("nope.txt")).status == 404


def test_inputs_become_values_the_schema_checks() -> None:
    inputs = inputs_of(load_schema(ROOT / "schemas", "cover_letter").model)
    assert from_input(inputs["skills"], "Python\nRust; Go\n\n") == ["Python", "Rust", "Go"]
    assert from_input(inputs["skills"], "") == []
    assert from_input(inputs["email"], "  ") is None
    assert from_input(inputs["salary"], {"min": "", "max": None, "currency": "", "period": None}) is None
    assert from_input(inputs["salary"], {"min": "90000", "max": "", "currency": "eur", "period": "year"}) == {
        "min": "90000", "max": None, "currency": "eur", "period": "year"}


def test_an_invalid_value_is_refused_with_the_schemas_message_and_nothing_stored(app: ReviewApp,
                                                                                 outputs: Path) -> None:
    before = label_rows(outputs)
    path = doc_path(ADA_ID) + "/labels"
    refused = call(app, "POST", path, {"values": {"email": "not an address"}})
    assert refused.status == 422
    assert refused.body == {"errors": {"email": "Value error, not an e-mail address: 'not an address'"}}
    # All or none: a good value next to a bad one is not stored either; nested fields are named.
    both = call(app, "POST", path, {"values": {"company": "Acme", "salary": {"min": -5, "max": 10, "currency": "EUR",
                                                                             "period": "year"}}})
    assert both.status == 422 and both.body["errors"] == {"salary": "min: Input should be greater than or equal to 0"}
    unknown = call(app, "POST", path, {"values": {"nope": 1}, "accept": ["email"]})
    assert unknown.status == 422 and "no field 'nope'" in unknown.body["errors"]["nope"]
    required = call(app, "POST", path, {"values": {"applicant_name": None}})
    assert required.status == 422 and required.body["errors"]["applicant_name"] == "Input should be a valid string"
    for body in ({"values": {"email": "a@b.cd"}, "accept": ["email"]}, {}, [], {"value": {}}):
        assert call(app, "POST", path, body).status == 400, body
    assert call(app, "POST", path, None, headers={"Content-Type": "application/json"}).status == 400
    assert label_rows(outputs) == before, "nothing stored"


def test_edits_accepts_and_not_in_the_document_are_a_persons_labels(app: ReviewApp, outputs: Path) -> None:
    path = doc_path(ADA_ID) + "/labels"
    seen = {f["name"]: f["version"] for f in call(app, "GET", doc_path(ADA_ID)).body["fields"]}
    stored = call(app, "POST", path, {"values": {"email": " Ada@Lovelace.ORG ", "skills": "Python\nRust; Go",
                                                 "phone": None, "seniority": "Senior"},
                                      "accept": ["applicant_name", "salary"], "seen": seen})
    assert stored.status == 200, stored.body
    assert sorted(stored.body["stored"]) == ["applicant_name", "email", "phone", "salary", "seniority", "skills"]
    fields = stored.body["fields"]
    assert fields["email"]["current"] == "ada@lovelace.org", "the schema's own normalization"
    assert fields["email"]["label"]["state"] == "accepted" and fields["skills"]["label"]["state"] == "corrected"
    assert fields["phone"]["label"]["state"] == "not in the document"
    assert stored.body["checked"] == 6 and stored.body["reviewed"] is False
    assert stored.body["progress"]["labeled"] == 1
    labels = person_labels(outputs)[ADA_ID]
    source = "review app: grace (corrections)"
    assert labels == {"email": ("ada@lovelace.org", source), "skills": (["Python", "Rust", "Go"], source),
                      "phone": (None, source), "seniority": ("senior", source),
                      "applicant_name": ("Ada Lovelace", source),
                      "salary": ({"min": 85000.0, "max": 85000.0, "currency": "EUR", "period": "year"}, source)}

    # The document shows the labels; the queue counts it; accepting the rest makes it reviewed.
    doc = call(app, "GET", doc_path(ADA_ID)).body
    assert doc["checked"] == 6
    assert {f["name"]: f["current"] for f in doc["fields"]}["skills"] == ["Python", "Rust", "Go"]
    rest = [f["name"] for f in doc["fields"] if f["label"] is None]
    done = call(app, "POST", path, {"accept": rest, "seen": {f["name"]: f["version"] for f in doc["fields"]}})
    assert done.status == 200 and done.body["reviewed"] is True and done.body["progress"]["reviewed"] == 1
    queue = call(app, "GET", "/api/documents").body
    assert queue["documents"][-1]["doc_id"] == ADA_ID, "reviewed documents go last"
    assert labeled_documents(outputs / "cover_letter" / "journal.sqlite3") == 1, "breakeven counts it"


def test_a_value_changed_since_the_page_loaded_is_not_overwritten(tmp_path: Path, outputs: Path) -> None:
    with running(ServeConfig(settings=settings(outputs, reviewer="grace"), port=0)) as app:
        loaded = {f["name"]: f["version"] for f in call(app, "GET", doc_path(ADA_ID)).body["fields"]}
        # Another reviewer corrects the company meanwhile.
        other = call(app, "POST", doc_path(ADA_ID) + "/labels", {"values": {"company": "Acme GmbH"}})
        assert other.status == 200
        before = label_rows(outputs)
        late = call(app, "POST", doc_path(ADA_ID) + "/labels",
                    {"values": {"company": "Acme Germany"}, "seen": {"company": loaded["company"]}})
        assert late.status == 409
        conflict = late.body["conflicts"]["company"]
        assert conflict["label"] == "Acme GmbH"
        assert 'review app: grace (corrections) stored "Acme GmbH"' in conflict["why"]
        assert late.body["fields"]["company"]["current"] == "Acme GmbH", "the page is told what it is now"
        assert label_rows(outputs) == before

        # A newer run changes the model's e-mail: accepting what the page showed is refused too.
        answers = {**ANSWERS, "Ada Lovelace": {**ANSWERS["Ada Lovelace"], "email": "ada@analytical.engine"}}
        with serving(answers=answers) as server:
            runner.run(make_config(tmp_path, server, force=True))
        late = call(app, "POST", doc_path(ADA_ID) + "/labels", {"accept": ["email"], "seen": loaded})
        assert late.status == 409 and late.body["conflicts"]["email"]["value"] == "ada@analytical.engine"
        assert "a newer run" in late.body["conflicts"]["email"]["why"]
        assert label_rows(outputs) == before
        fresh = late.body["fields"]["email"]["version"]
        again = call(app, "POST", doc_path(ADA_ID) + "/labels", {"accept": ["email"], "seen": {"email": fresh}})
        assert again.status == 200 and person_labels(outputs)[ADA_ID]["email"][0] == "ada@analytical.engine"


def test_export_and_eval_count_the_reviewers_labels(app: ReviewApp, outputs: Path) -> None:
    path = doc_path(ADA_ID) + "/labels"
    assert call(app, "POST", path, {"values": {"company": "Acme Deutschland GmbH"}, "accept": ["email"]}).status == 200
    assert call(app, "POST", doc_path("li.html") + "/labels", {"values": {"email": None}}).status == 200
    sheet = export(ExportConfig(settings=settings(outputs), fmt="csv"))
    rows = {r["doc_id"]: r for r in pl.read_csv(sheet).to_dicts()}
    assert rows[ADA_ID]["company"] == "Acme Deutschland GmbH" and rows[ADA_ID]["corrected"] == "company; email"
    assert rows["li.html"]["email"] is None and rows["li.html"]["corrected"] == "email"
    assert rows["marta.txt"]["corrected"] is None
    report = evaluate(EvalConfig(settings=settings(outputs)))
    scores = {s.field: s for s in report.scores}
    assert report.labeled_documents == 2
    assert scores["company"].documents == 1 and scores["company"].accuracy == 0.0, "the model said Acme Germany GmbH"
    assert scores["email"].documents == 2 and scores["email"].accuracy == 0.5, "right for Ada, made up for Li"
    tuned = export_finetune(FinetuneConfig(settings=settings(outputs)))
    assert tuned.labeled == 2
    examples = "".join(path.read_text(encoding="utf-8") for path in (tuned.train_path, tuned.validation_path) if path)
    assert "Acme Deutschland GmbH" in examples, "trained on the reviewer's correction"


def test_review_while_a_run_writes_the_same_outputs(tmp_path: Path, outputs: Path) -> None:
    """`extractor run` (another process) commits documents to the journal and rewrites results.parquet
    while a reviewer stores labels: no lock error on either side, nothing lost."""
    more = {f"extra/{i:02d}.txt": f"Letter {i} from Marta Kowalska. [[answer:{{\"company\": \"Firm {i}\"}}]]"
            for i in range(60)}
    write_docs(tmp_path / "in", more)
    (tmp_path / "extractor.toml").write_text("checkpoint_s = 0.2\n", encoding="utf-8")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}, "OPENAI_API_KEY": "sk-test-0"}
    posted = 0
    errors: list[str] = []
    with serving(answers=ANSWERS, latency_s=0.1) as server, \
            running(ServeConfig(settings=settings(outputs, reviewer="grace"), port=0)) as app:
        night = subprocess.Popen(
            [sys.executable, "-m", "extractor", "run", str(tmp_path / "in"), "--schemas", str(ROOT / "schemas"),
             "--output", str(outputs), "--base-url", server.base_url, "--model", "gpt-4o-mini", "--force",
             "--concurrency", "4", "--no-progress"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            while night.poll() is None or posted < 20:
                skills = f"Python\nRust\nSkill {posted}"
                answer = call(app, "POST", doc_path(ADA_ID) + "/labels", {"values": {"skills": skills}})
                if answer.status != 200:
                    errors.append(f"{answer.status} {answer.body}")
                posted += 1
                for path in ("/api/documents", doc_path(f"extra/{posted % 60:02d}.txt")):
                    looked = call(app, "GET", path)
                    if looked.status not in (200, 404):  # 404: not in results.parquet yet
                        errors.append(f"{looked.status} {looked.body}")
            _, err = night.communicate(timeout=120)
        finally:
            if night.poll() is None:
                night.kill()
    assert night.returncode == 0, err
    assert "locked" not in err.lower() and not errors, errors[:3]
    assert posted > 20
    with sqlite3.connect(outputs / "cover_letter" / "journal.sqlite3") as db:
        stored = db.execute("SELECT COUNT(*) FROM labels WHERE field = 'skills' AND kind = 'person'").fetchone()[0]
    assert stored == posted, "every label posted is stored"
    results = pl.read_parquet(outputs / "cover_letter" / "results.parquet")
    assert results.height == len(DOCS) + len(more) and set(results["status"]) == {"ok"}
    assert person_labels(outputs)[ADA_ID]["skills"][0] == ["Python", "Rust", f"Skill {posted - 1}"]


def test_labels_transaction_stores_all_or_none(outputs: Path) -> None:
    journal = outputs / "cover_letter" / "journal.sqlite3"
    with Labels(journal) as store:
        with pytest.raises(RuntimeError), store.transaction():
            store.add(ADA_ID, "email", "a@b.cd", source="t (corrections)", content_sha256=None, kind=PERSON)
            raise RuntimeError("a check failed after the first add")
        assert store.newest(PERSON) == {}
        with store.transaction():
            store.add(ADA_ID, "email", "a@b.cd", source="t (corrections)", content_sha256=None, kind=PERSON)
            store.add("li.html", "email", None, source="t (corrections)", content_sha256=None, kind=PERSON)
        assert set(store.newest(PERSON)) == {ADA_ID, "li.html"}
        assert list(store.newest(PERSON, "li.html")) == ["li.html"] and store.newest(doc_id="nope") == {}


# -- the command ----------------------------------------------------------------------------------------


def test_cli_serves_until_sigterm_and_warns_beyond_localhost(outputs: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    command = [sys.executable, "-m", "extractor", "review", "--serve", "--port", "0", "--output", str(outputs),
               "--schemas", str(ROOT / "schemas"), "--reviewer", "ada"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=tmp_path)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{40,})", url)
        assert match, url
        request = urllib.request.Request(f"http://127.0.0.1:{match[1]}/api/documents",
                                         headers={"Authorization": f"Bearer {match[2]}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["reviewer"] == "ada"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = process.stderr.read() if process.stderr else ""
    assert "reviewing cover_letter as ada" in err and "warning" not in err

    wide = subprocess.Popen([*command[:5], "--host", "0.0.0.0", *command[5:]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert wide.stdout is not None and wide.stdout.readline().startswith("http://0.0.0.0:")
        wide.send_signal(signal.SIGINT)
        assert wide.wait(timeout=30) == 0
    finally:
        if wide.poll() is None:
            wide.kill()
            wide.wait()
    assert "warning: listening on 0.0.0.0, not only on this machine" in (wide.stderr.read() if wide.stderr else "")

    mixed = subprocess.run([*command[:4], *command[5:]], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
    assert mixed.returncode == 2 and "add --serve" in mixed.stderr
    none = subprocess.run([sys.executable, "-m", "extractor", "review", "--serve", "--output", str(tmp_path / "none"),
                           "--schemas", str(ROOT / "schemas")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert none.returncode == 2 and "no results yet" in none.stderr


def test_a_port_in_use_says_so(outputs: Path) -> None:
    with running(ServeConfig(settings=settings(outputs), port=0)) as first:
        from extractor.errors import ConfigError

        with pytest.raises(ConfigError, match=rf"cannot listen on 127\.0\.0\.1:{first.port}.*--port 0"):
            ReviewApp(ServeConfig(settings=settings(outputs), port=first.port))


# -- the page, in a real browser ------------------------------------------------------------------------


def _browser() -> Any:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs the playwright package (pip install playwright; it drives /usr/bin/chromium, "
                    "no browser download)")
    return sync_playwright


@pytest.mark.integration
def test_review_by_keyboard_in_chromium(app: ReviewApp, outputs: Path, tmp_path: Path) -> None:
    sync_playwright = _browser()
    from playwright.sync_api import expect

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(str(e)))
            page.goto(app.url)
            assert page.url == f"{app.origin}/", "the token left the address bar for a cookie"
            page.wait_for_selector("#queue tbody tr")
            assert page.inner_text("#progress").strip().startswith("0 of 3 reviewed · 0 of the 500 labeled documents")
            rows = page.locator("#queue tbody tr")
            assert rows.first.get_attribute("data-doc") == "li.html"
            page.screenshot(path=str(tmp_path / "queue.png"))

            # To Ada's letter by keyboard: down the queue, open it.
            ada = next(i for i in range(rows.count()) if rows.nth(i).get_attribute("data-doc") == ADA_ID)
            for _ in range(ada):
                page.keyboard.press("j")
            page.keyboard.press("Enter")
            page.wait_for_selector("#doctext")
            assert "<script>alert(1)</script> & I apply" in page.inner_text("#doctext"), "shown as text"
            assert page.locator("#doctext script").count() == 0
            current = page.locator(".field.current")
            assert current.get_attribute("data-name") == "applicant_name"
            assert page.locator("#doctext mark.focus").first.inner_text() == "Ada Lovelace"

            page.keyboard.press("a")  # accept the name; the next field is selected
            page.wait_for_selector('.field[data-name="applicant_name"] .state.accepted')
            assert page.locator(".field.current").get_attribute("data-name") == "email"

            page.keyboard.press("e")  # a bad e-mail: the schema's message, nothing stored
            page.keyboard.press("Control+A")
            page.keyboard.type("ada at lovelace")
            page.keyboard.press("Enter")
            page.wait_for_selector('.field[data-name="email"] .note.error')
            assert page.inner_text('.field[data-name="email"] .note.error') == (
                "Value error, not an e-mail address: 'ada at lovelace'")
            assert "email" not in person_labels(outputs)[ADA_ID]
            page.keyboard.press("Control+A")
            page.keyboard.type("ada@analytical.engine")
            page.keyboard.press("Enter")
            page.wait_for_selector('.field[data-name="email"] .state.corrected')
            assert page.locator(".field.current").get_attribute("data-name") == "phone"

            page.keyboard.press("x")  # no phone in the letter
            page.wait_for_selector('.field[data-name="phone"] .state.absent')
            page.keyboard.press("k")
            page.keyboard.press("k")
            assert page.locator(".field.current").get_attribute("data-name") == "email"
            for _ in range(7):
                page.keyboard.press("j")
            assert page.locator(".field.current").get_attribute("data-name") == "skills"
            page.keyboard.press("e")  # a list, one per line
            page.keyboard.press("Control+A")
            page.keyboard.type("Python\nRust\nFortran")
            page.keyboard.press("Control+Enter")
            page.wait_for_selector('.field[data-name="skills"] .state.corrected')
            items = page.locator('.field[data-name="skills"] .value .item').all_inner_texts()
            assert items == ["Python", "Rust", "Fortran"]
            assert page.locator(".field.current").get_attribute("data-name") == "salary"
            page.keyboard.press("e")  # salary: field by field
            page.wait_for_selector('form.edit fieldset')
            assert page.input_value('[id="edit-9.min"]') == "85000"
            page.keyboard.press("Control+A")
            page.keyboard.type("90000")
            page.keyboard.press("Tab")
            page.keyboard.press("Control+A")
            page.keyboard.type("95000")
            page.keyboard.press("Enter")
            page.wait_for_selector('.field[data-name="salary"] .state.corrected')
            page.keyboard.press("Shift+A")  # everything left as the model said it
            page.wait_for_selector("#banner:not([hidden])")
            assert "All 14 fields" in page.inner_text("#banner")
            assert page.inner_text("#progress").strip().startswith("1 of 3 reviewed · 1 of the 500 labeled documents")
            page.screenshot(path=str(tmp_path / "document.png"))
            page.keyboard.press("n")  # the next document of the queue
            expect(page.locator("h2 .id")).not_to_have_text(ADA_ID)  # (the CSP forbids wait_for_function's eval)
            page.keyboard.press("u")
            page.wait_for_selector("#queue tbody tr")
            assert page.locator("#queue tbody tr").last.get_attribute("data-doc") == ADA_ID
            assert [m for m in console if "status of 422" not in m] == [], "no error but the refused e-mail"
            assert all(u.startswith(app.origin + "/") for u in requests), "no request leaves the app"
        finally:
            browser.close()

    labels = person_labels(outputs)[ADA_ID]
    assert {k: v[0] for k, v in labels.items() if k in ("applicant_name", "email", "phone", "skills")} == {
        "applicant_name": "Ada Lovelace", "email": "ada@analytical.engine", "phone": None,
        "skills": ["Python", "Rust", "Fortran"]}
    assert labels["salary"][0] == {"min": 90000.0, "max": 95000.0, "currency": "EUR", "period": "year"}
    assert len(labels) == 14

    sheet = export(ExportConfig(settings=settings(outputs), fmt="csv"))
    row = next(r for r in pl.read_csv(sheet).to_dicts() if r["doc_id"] == ADA_ID)
    assert row["email"] == "ada@analytical.engine" and row["skills"] == "Python; Rust; Fortran"
    assert row["corrected"] is not None and {"email", "phone", "salary", "skills"} <= set(row["corrected"].split("; "))
    scores = {s.field: s for s in evaluate(EvalConfig(settings=settings(outputs))).scores}
    assert scores["email"].documents == 1 and scores["email"].accuracy == 0.0, "the model's e-mail is now wrong"
    assert scores["applicant_name"].accuracy == 1.0
