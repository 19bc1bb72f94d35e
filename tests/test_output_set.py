"""One checkpoint's tables as one set (issue 20 remainder, item 2): results.parquet, evidence.parquet and the child
tables carry one generation, a reader (`store.read_set`, used by export, eval and review) never gets them mixed
while a checkpoint replaces them, a kill inside the renames is said (and repaired by the next run), and a list
field gone from the schema leaves no stale `<field>.parquet` behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from extractor.errors import OutputError
from extractor.extraction import runner
from extractor.layout import Layout
from extractor.quality.evaluation import EvalConfig, evaluate
from extractor.store import read_set, write_set
from extractor.store.outputs import GENERATION, child_tables
from extractor.testing.fakeserver import FakeOpenAI
from extractor.views.spreadsheets import ExportConfig, export

from .conftest import make_config, write_docs
from .test_records import ITEMS, SCHEMA, document, invoice_config, schema_dir


def _set(k: int, items: int = 3) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
    """A set whose every table says which write it is (`k`)."""
    docs = [f"d{i}.txt" for i in range(50)]
    results = pl.DataFrame({"doc_id": docs, "k": [k] * len(docs)})
    evidence = pl.DataFrame({"doc_id": docs, "field": ["k"] * len(docs), "k": [k] * len(docs)})
    child = pl.DataFrame({"doc_id": [d for d in docs for _ in range(items)],
                          "index": [i for _ in docs for i in range(items)], "k": [k] * (len(docs) * items)})
    return results, evidence, {"line_items": child}


def test_a_reader_never_sees_tables_of_two_checkpoints_while_a_writer_replaces_them(tmp_path: Path) -> None:
    layout = Layout.of(tmp_path, "invoice")
    write_set(layout, *_set(0))
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set():
            written[0] += 1
            write_set(layout, *_set(written[0]))

    thread = threading.Thread(target=writer)
    thread.start()
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while written[0] < 30 and time.monotonic() < deadline:  # reads while the writer writes 30 sets
            got = read_set(layout)
            assert got.evidence is not None
            ks = {got.results["k"][0], got.evidence["k"][0], got.children["line_items"]["k"][0]}
            assert len(ks) == 1, ks  # one checkpoint's tables, never a new results with old evidence or items
            seen |= ks
    finally:
        stop.set()
        thread.join()
    assert written[0] >= 30 and len(seen) > 1, "the reader should have read several checkpoints as they were written"


def test_a_kill_inside_the_renames_is_said_and_the_next_run_repairs_it(tmp_path: Path,
                                                                      fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {name: document(name[0], items) for name, items in ITEMS.items()})
    config = invoice_config(tmp_path, fake_server)
    runner.run(config)
    layout = config.layout
    before = read_set(layout)
    assert before.generation is not None and set(before.children) == {"line_items", "jobs"}
    # what a kill between the renames leaves: one child table of a newer checkpoint than the results
    newer = before.children["line_items"].head(1)
    newer.write_parquet(layout.child("line_items"), metadata={GENERATION: "a-later-checkpoint",
                                                              "extractor.child_of": "results.parquet"})
    with pytest.raises(OutputError, match=r"line_items\.parquet is not of the same checkpoint.*extractor run"):
        read_set(layout, patience_s=0.1)
    runner.run(config)  # nothing to send: the run's checkpoint rewrites the set from the journal
    after = read_set(layout)
    assert after.children["line_items"].equals(before.children["line_items"])
    assert after.results.drop("archived_to").equals(before.results.drop("archived_to"))


def test_a_list_field_gone_from_the_schema_leaves_no_stale_child_table(tmp_path: Path,
                                                                       fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {name: document(name[0], items) for name, items in ITEMS.items()})
    config = invoice_config(tmp_path, fake_server)
    runner.run(config)
    layout = config.layout
    assert set(child_tables(layout)) == {"line_items", "jobs"}
    pl.DataFrame({"doc_id": ["a.txt"], "note": ["mine"]}).write_parquet(layout.root / "notes.parquet")
    # the schema loses its `jobs` list (renamed away); the next run's checkpoint drops jobs.parquet
    folder = schema_dir(tmp_path)
    (folder / "invoice.py").write_text(SCHEMA.replace("    jobs: list[Job] = []\n", ""), encoding="utf-8")
    runner.run(make_config(tmp_path, fake_server, schema="invoice", schemas_dir=folder, force=True))
    assert not layout.child("jobs").exists()
    assert set(child_tables(layout)) == {"line_items"}
    assert (layout.root / "notes.parquet").exists(), "a file a person put there is not ours to delete"
    assert set(read_set(layout).children) == {"line_items"}


def test_files_of_before_generations_read_as_they_are(tmp_path: Path) -> None:
    layout = Layout.of(tmp_path, "invoice")
    results, evidence, children = _set(1)
    layout.root.mkdir(parents=True)
    results.write_parquet(layout.results)
    evidence.write_parquet(layout.evidence)
    children["line_items"].write_parquet(layout.child("line_items"))
    got = read_set(layout)
    assert got.generation is None and got.results.equals(results) and got.children["line_items"].equals(
        children["line_items"])
    # and the first set written over them replaces them all, the old child table recognized by its shape
    write_set(layout, *_set(2, items=1)[:2], {})
    assert not layout.child("line_items").exists()


def test_export_and_eval_read_the_results_and_the_evidence_of_one_checkpoint(tmp_path: Path,
                                                                   fake_server: FakeOpenAI) -> None:
    write_docs(tmp_path / "in", {name: document(name[0], items) for name, items in ITEMS.items()})
    config = invoice_config(tmp_path, fake_server)
    runner.run(config)
    stale = pl.read_parquet(config.layout.evidence)
    stale.write_parquet(config.layout.evidence, metadata={GENERATION: "an-older-checkpoint"})
    with pytest.raises(OutputError, match=r"evidence\.parquet"):
        export(ExportConfig(settings=config, fmt="xlsx"))
    with pytest.raises(OutputError, match=r"evidence\.parquet"):
        evaluate(EvalConfig(settings=config))


def test_checkpoints_read_only_what_was_committed_since_and_equal_a_whole_read_of_the_journal(
        tmp_path: Path, fake_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Recorder.read_ahead` keeps the rows it parsed across checkpoints and reads again only the documents committed
    since: every checkpoint must still be what a whole read of the journal gives (the newest row of each document in
    the folder or archived), over a prior run's rows, a changed file, a failed document and archived inputs."""
    from polars.testing import assert_frame_equal

    from extractor.extraction import recorder
    from extractor.schemas import load_schema
    from extractor.store import Journal, frame_from_json_rows
    from extractor.table import row_schema

    write_docs(tmp_path / "in", {f"l{i:02}.txt": f"Dear team,\nI apply as Data Engineer.\nRegards,\nPat Doe {i}\n"
                                 for i in range(8)})
    runner.run(make_config(tmp_path, fake_server))
    write_docs(tmp_path / "in", {"l03.txt": "Dear team,\nI apply as Analyst.\nRegards,\nAlex Roe\n",
                                 "l08.txt": "Dear team, [[fault:400]]\nRegards,\nSam Poe\n",
                                 **{f"n{i}.txt": f"Dear team,\nI apply as Tester.\nRegards,\nKim Lee {i}\n"
                                    for i in range(5)}})
    checked: list[int] = []
    counted: set[str] = set()  # documents whose row this run has counted (the observer hears of each)

    class Counted:
        def started(self, total: int, backend: str, model: str) -> None:
            pass

        def finished(self, row: dict, totals: object) -> None:
            counted.add(row["doc_id"])

    materialize = recorder.Recorder.materialize
    latest_rows = Journal.latest_rows
    asked: list[int] = []  # how many documents each read of the journal's rows asked for

    def counted_latest_rows(self: Journal, doc_ids: set[str]) -> Iterator[str]:
        asked.append(len(set(doc_ids)))
        return latest_rows(self, doc_ids)

    def checked_materialize(self: recorder.Recorder) -> None:
        materialize(self)
        wanted = {f.doc_id for f in self.files} | self.journal.archived().keys()
        whole = frame_from_json_rows(latest_rows(self.journal, wanted), row_schema(self.schema.model))
        whole = whole.drop("archived_to")
        written = read_set(self.config.layout)
        results = written.results.drop("archived_to")
        # Every counted row is there as the journal has it. A row the journal's thread committed together with the
        # one being counted is durable but not counted yet: it joins the next checkpoint, the document's earlier row
        # (or none) standing until then.
        mine = pl.col("doc_id").is_in(sorted(counted))
        assert_frame_equal(results.filter(mine), whole.filter(mine))
        assert set(results.filter(~mine)["run_id"]) <= set(whole.filter(~mine)["run_id"]) - {self.summary.run_id}
        assert written.evidence is not None
        assert set(written.evidence["doc_id"]) == set(results.filter(pl.col("status") == "ok")["doc_id"])
        checked.append(len(results))

    monkeypatch.setattr(recorder.Recorder, "materialize", checked_materialize)
    monkeypatch.setattr(Journal, "latest_rows", counted_latest_rows)
    config = make_config(tmp_path, fake_server, checkpoint_s=0.0, archive_dir=tmp_path / "done")
    summary = runner.run(config, Counted())
    assert (summary.ok, summary.failed, summary.cached) == (13, 1, 7)
    assert len(checked) == 15 and checked[-1] == 14  # a checkpoint at every commit (checkpoint_s = 0), one at the end
    # The first read asks for every document; the later ones only for those committed since (at most the 4 in flight).
    assert asked[0] == 14 and len(asked) >= 15 and max(asked[1:]) <= 4, asked
    final = read_set(config.layout).results
    layout = config.layout
    model = load_schema(config.schemas_dir, "cover_letter").model
    with Journal(layout.journal) as journal:
        whole = frame_from_json_rows(journal.latest_rows(set(final["doc_id"])), row_schema(model))
    assert_frame_equal(final.drop("archived_to"), whole.drop("archived_to"))
    assert final.filter(pl.col("status") == "failed")["doc_id"].to_list() == ["l08.txt"]
    assert final.filter(pl.col("archived_to").is_not_null()).height == 13
