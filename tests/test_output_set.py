"""One checkpoint's tables as one set (issue 20 remainder, item 2): results.parquet, evidence.parquet and the child
tables carry one generation, a reader (`store.read_set`, used by export, eval and review) never gets them mixed
while a checkpoint replaces them, a kill inside the renames is said (and repaired by the next run), and a list
field gone from the schema leaves no stale `<field>.parquet` behind."""

from __future__ import annotations

import threading
import time
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
