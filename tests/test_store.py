"""The journal's schema: ordered migrations from every earlier shape, and read-only opens that never write."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from extractor.errors import JournalError
from extractor.extraction import runner
from extractor.store import JOURNAL_FILE, LABELS_FILE, SCHEMA_VERSION, Journal, Labels, journal_path, migrations
from extractor.testing.fakeserver import FakeOpenAI

from .conftest import ROOT, make_config, write_docs

TODAY_TABLES = {"results", "runs", "evals", "batch_submissions", "batch_documents", "metrics", "labels",
                "archived", "retrieval_features", "sample_draws"}
ROW = {"doc_id": "a.txt", "status": "ok", "content_sha256": "abc", "source_path": "in/a.txt",
       "extracted_at": "2026-01-01T00:00:00+00:00", "model": "gpt-4o-mini"}


def _sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


def _query(path: Path, statement: str) -> list[tuple]:  # type: ignore[type-arg]
    db = sqlite3.connect(path)
    try:
        return db.execute(statement).fetchall()
    finally:
        db.close()


def _tables(path: Path) -> set[str]:
    return {name for (name,) in _query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")} - {
        "sqlite_sequence"}


def _columns(path: Path, table: str) -> list[str]:
    return [row[1] for row in _query(path, f"PRAGMA table_info({table})")]


def _version(path: Path) -> int:
    return _query(path, "PRAGMA user_version")[0][0]


# -- migrations -----------------------------------------------------------------------------------------------

# The two shapes journals had at user_version 0: the first commit's (cache_key, no prompt_chars, index
# results_cache), and a results table with neither column.
V0_FIRST_COMMIT = ("CREATE TABLE results (run_id TEXT NOT NULL, doc_id TEXT NOT NULL, status TEXT NOT NULL,"
                   " content_sha256 TEXT, cache_key TEXT, row_json TEXT NOT NULL, finished_at TEXT NOT NULL,"
                   " PRIMARY KEY (run_id, doc_id))",
                   "CREATE INDEX results_cache ON results (doc_id, cache_key, status)")
V0_BARE = ("CREATE TABLE results (run_id TEXT NOT NULL, doc_id TEXT NOT NULL, status TEXT NOT NULL,"
           " content_sha256 TEXT, row_json TEXT NOT NULL, finished_at TEXT NOT NULL, PRIMARY KEY (run_id, doc_id))",)
RUNS = "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, summary_json TEXT)"


def _old_row(path: Path) -> None:
    _sql(path, "INSERT INTO results (run_id, doc_id, status, content_sha256, row_json, finished_at) VALUES"
               f" ('r0', 'a.txt', 'ok', 'abc', '{json.dumps(ROW)}', '2026-01-01T00:00:00+00:00')",
         "INSERT INTO runs VALUES ('r0', '2026-01-01T00:00:00+00:00', '{\"model\": \"gpt-4o-mini\"}')")


def test_a_new_journal_gets_todays_tables(tmp_path: Path) -> None:
    path = tmp_path / "out" / JOURNAL_FILE
    Journal(path).close()
    assert _version(path) == SCHEMA_VERSION == len(migrations.MIGRATIONS)
    assert _tables(path) == TODAY_TABLES
    assert {"cache_key", "prompt_chars"} <= set(_columns(path, "results"))
    # Labels opens the same database through the same migrations: nothing left for it to do, and vice versa.
    Labels(path).close()
    assert _version(path) == SCHEMA_VERSION and _tables(path) == TODAY_TABLES
    other = tmp_path / "labels_first" / JOURNAL_FILE
    Labels(other).close()
    assert _version(other) == SCHEMA_VERSION and _tables(other) == TODAY_TABLES


@pytest.mark.parametrize("shape", [V0_FIRST_COMMIT, V0_BARE], ids=["first-commit", "bare"])
def test_a_version_0_journal_keeps_its_rows(tmp_path: Path, shape: tuple[str, ...]) -> None:
    path = tmp_path / JOURNAL_FILE
    _sql(path, *shape, RUNS)
    _old_row(path)
    assert _version(path) == 0

    journal = Journal(path)
    try:
        assert [json.loads(r) for r in journal.latest_rows(["a.txt"])] == [ROW], "the old row survives"
        assert journal.last_seen("a.txt") == ("abc", "ok")
        assert journal.run_summaries() == [{"model": "gpt-4o-mini"}]
        journal.record("r1", {**ROW, "doc_id": "b.txt"}, cache_key="k", prompt_chars=10)
        assert journal.cached_row("k") == {**ROW, "doc_id": "b.txt"}
    finally:
        journal.close()
    assert _version(path) == SCHEMA_VERSION
    assert _tables(path) == TODAY_TABLES
    assert {"cache_key", "prompt_chars"} <= set(_columns(path, "results"))
    assert not _query(path, "SELECT name FROM sqlite_master WHERE name = 'results_cache'")
    assert _query(path, "SELECT doc_id FROM results ORDER BY doc_id") == [("a.txt",), ("b.txt",)]


def test_a_version_2_journal_gains_the_tables_added_since_and_keeps_everything(tmp_path: Path) -> None:
    # Stamped 2 by the first upgrading code, before evals, metrics, batches and labels existed.
    early = tmp_path / "early" / JOURNAL_FILE
    early.parent.mkdir()
    _sql(early, V0_BARE[0], RUNS, "ALTER TABLE results ADD COLUMN cache_key TEXT",
         "ALTER TABLE results ADD COLUMN prompt_chars INTEGER", "PRAGMA user_version = 2")
    _old_row(early)
    with Journal(early) as journal:
        assert journal.last_seen("a.txt") == ("abc", "ok") and journal.eval_history() == []
    assert _version(early) == SCHEMA_VERSION and _tables(early) == TODAY_TABLES

    # Today's journals are at 2 with every table: their rows, evals and labels stay where they are.
    today = tmp_path / "today" / JOURNAL_FILE
    with Journal(today) as journal:
        journal.record("r1", ROW, cache_key="k", prompt_chars=10)
        journal.record_eval([{"evaluated_at": "t", "schema_version": "1", "model": "m", "field": "f",
                              "documents": 1, "accuracy": 1.0, "precision": None, "recall": None, "f1": None}])
    with Labels(today) as labels:
        labels.add("a.txt", "applicant_name", "Ada", source="test", content_sha256=None, kind=LABELS_FILE)
    _sql(today, "PRAGMA user_version = 2")
    with Journal(today) as journal:
        assert journal.cached_row("k") == ROW and len(journal.eval_history()) == 1
    with Labels(today) as labels:
        assert labels.latest() == {"a.txt": {"applicant_name": "Ada"}}
    assert _version(today) == SCHEMA_VERSION


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    with Journal(path) as journal:
        journal.record("r1", ROW, cache_key="k", prompt_chars=10)
    schema = _query(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    content = path.read_bytes()
    for _ in range(2):
        Journal(path).close()
        Labels(path).close()
    assert _query(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
    assert path.read_bytes() == content, "an up-to-date journal is not written to on open"
    assert _version(path) == SCHEMA_VERSION


def test_a_failed_migration_leaves_the_journal_at_the_version_before(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    path = tmp_path / JOURNAL_FILE
    with pytest.raises(RuntimeError, match="disk on fire"):
        Journal(path)
    assert _version(path) == SCHEMA_VERSION, "every migration before the broken one was committed"
    assert "half_done" not in _tables(path), "the broken one was rolled back whole"


def test_a_journal_from_a_newer_extractor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    Journal(path).close()
    _sql(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for opener in (Journal, Journal.open_readonly, Labels, Labels.open_readonly):
        with pytest.raises(JournalError, match="newer extractor"):
            opener(path)


# -- read-only opens ----------------------------------------------------------------------------------------------


def test_read_only_open_never_creates_a_journal(tmp_path: Path) -> None:
    path = journal_path(tmp_path / "out" / "cover_letter")
    assert path == tmp_path / "out" / "cover_letter" / "journal.sqlite3"
    for opener in (Journal.open_readonly, Labels.open_readonly):
        with pytest.raises(JournalError, match=r"does not exist \(run `extractor run` first\)"):
            opener(path)
    assert not (tmp_path / "out").exists()


def test_read_only_open_does_not_migrate(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    _sql(path, *V0_BARE, RUNS)
    _old_row(path)
    before = path.read_bytes()
    with pytest.raises(JournalError, match=r"older extractor .*results\.cache_key.*run `extractor run` once"):
        Journal.open_readonly(path)
    with Labels.open_readonly(path) as labels:
        assert labels.latest() == {}, "a journal that never had a label has none"
    assert path.read_bytes() == before and _version(path) == 0

    # An older journal that already has everything readers query is read as it is, and stays at its version.
    today = tmp_path / "today" / JOURNAL_FILE
    with Journal(today) as journal:
        journal.record("r1", ROW, cache_key="k", prompt_chars=10)
    _sql(today, "PRAGMA user_version = 2")
    with Journal.open_readonly(today) as journal:
        assert journal.cached_row("k") == ROW
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            journal.record("r2", ROW)
    assert _version(today) == 2


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under `folder` but SQLite's -wal/-shm side files: size, mtime and content."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def _project(root: Path, server: FakeOpenAI) -> Path:
    """Two nights of results, labels and an evaluation: everything the read-only commands look at."""
    from extractor.quality.evaluation import EvalConfig, evaluate

    write_docs(root / "in", {f"letter{i}.txt": f"Dear team, letter number {i}. " * (i + 1) for i in range(6)})
    runner.run(make_config(root, server))
    write_docs(root / "in", {"late.txt": "A letter that arrived on the second night."})
    runner.run(make_config(root, server))
    labels = root / "labels.jsonl"
    labels.write_text(json.dumps({"doc_id": "letter1.txt", "applicant_name": "Ada", "skills": ["Python"]}) + "\n")
    evaluate(EvalConfig(settings=make_config(root, server), labels_file=labels))
    return root / "out" / "cover_letter"


# Every command that only reads the journal, writing its own output (if any) under `elsewhere`.
READERS = """
import sys
from pathlib import Path

from extractor.ladder.breakeven import BreakEvenConfig, breakeven_analysis
from extractor.ladder.costmodel import observed_from_journal
from extractor.config import RunConfig
from extractor.ladder.finetune import FinetuneConfig, export_finetune
from extractor.views.htmlreport import ReportConfig, build_report
from extractor.schemas import load_schema
from extractor.views.spreadsheets import ExportConfig, export
from extractor.store import Journal, Labels, journal_path


def read_everything(root: Path, schemas: Path, elsewhere: Path) -> list[str]:
    where = RunConfig(schema="cover_letter", schemas_dir=schemas, output_dir=root / "out")
    journal = journal_path(root / "out" / "cover_letter")
    done = []
    assert observed_from_journal(journal, load_schema(schemas, "cover_letter"), "gpt-4o-mini").documents == 7
    done.append("observed")
    assert breakeven_analysis(BreakEvenConfig(settings=where)).observed.nights == 2
    done.append("breakeven")
    data = build_report(ReportConfig(settings=where))
    assert len(data.runs) == 2 and data.accuracy is not None and "breakeven" not in data.notes, data.notes
    done.append("report")
    assert export(ExportConfig(settings=where, fmt="csv", out=elsewhere / "results.csv")).stat().st_size > 0
    done.append("export")
    report = export_finetune(FinetuneConfig(settings=where, out_dir=elsewhere / "finetune"))
    assert report.labeled == 1 and report.token_basis == "calibrated", report.as_text()
    done.append("finetune")
    with Labels.open_readonly(journal) as labels:
        assert labels.latest()["letter1.txt"]["applicant_name"] == "Ada"
    with Journal.open_readonly(journal) as opened:
        assert len(opened.runs_with_summaries()) == 2 and opened.paid_extractions("gpt-4o-mini")
    done.append("open_readonly")
    return done
"""


def _readers() -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec(compile(READERS, "READERS", "exec"), namespace)
    return namespace


def test_read_only_commands_write_nothing(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    schema_dir = _project(tmp_path, fake_server)
    before = _snapshot(tmp_path / "out")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _readers()["read_everything"](tmp_path, ROOT / "schemas", elsewhere)  # type: ignore[operator]
    assert done == ["observed", "breakeven", "report", "export", "finetune", "open_readonly"]
    assert _snapshot(tmp_path / "out") == before, "no file of the output folder changed, none was added"
    # A write would have gone to the WAL first (and a writer's close would have moved it into the file).
    wal = journal_path(schema_dir).with_name(JOURNAL_FILE + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is under a root-only 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="extractor-ro-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    for path in sorted(folder.rglob("*"), reverse=True):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    subprocess.run(["rm", "-rf", "--", str(folder)], check=True)


@pytest.mark.integration
def test_read_only_commands_work_without_write_permission(shared_tmp: Path, fake_server: FakeOpenAI) -> None:
    """The output folder and its files read-only (0555/0444) and, when the tests run as root (who ignores
    permissions), the commands run as `nobody`: SQLite gets no chance to write or create anything."""
    schema_dir = _project(shared_tmp, fake_server)
    # The checkout may sit in a folder `nobody` cannot enter (cloned into a 0700 home folder): the code under
    # test (with its data files) and the schema it reads are copied into the shared folder, as the outputs are.
    source, schemas = shared_tmp / "src", shared_tmp / "schemas"
    shutil.copytree(ROOT / "extractor", source / "extractor", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "schemas", schemas, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [*(shared_tmp / "in").rglob("*"), source, *source.rglob("*"), schemas, *schemas.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    elsewhere = shared_tmp / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o777)
    warm = shared_tmp / "warm"
    shutil.copytree(shared_tmp / "out", warm / "out")
    (warm / "elsewhere").mkdir()
    for path in sorted((shared_tmp / "out").rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    (shared_tmp / "out").chmod(0o555)
    assert not list(schema_dir.glob("*-wal")), "no writer has the journal open"
    before, names = _snapshot(shared_tmp / "out"), sorted(p.name for p in schema_dir.iterdir())
    # The interpreter's own files (and a venv inside the checkout) may be out of the other user's reach:
    # everything is imported first.
    script = READERS + f"""
import os
# The same reads on a copy first: every module they import lazily is loaded while the interpreter's files
# (under /root) are still in reach.
read_everything(Path({str(warm)!r}), Path({str(schemas)!r}), Path({str(warm / "elsewhere")!r}))
if os.getuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
print(",".join(read_everything(Path({str(shared_tmp)!r}), Path({str(schemas)!r}),
                                Path({str(elsewhere)!r}))))
"""
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          cwd=shared_tmp)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "observed,breakeven,report,export,finetune,open_readonly"
    assert _snapshot(shared_tmp / "out") == before
    assert sorted(p.name for p in schema_dir.iterdir()) == names, "not even a -wal or -shm file"
