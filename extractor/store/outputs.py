"""One checkpoint's tables as one set: results.parquet, evidence.parquet and each list field's child table
(`<field>.parquet`), written together and read together.

POSIX renames one file at a time, so several files cannot be replaced in one step. Instead every file of a set
carries the set's generation in its Parquet key-value metadata (`GENERATION`); the writer first writes every file
of the new set beside its target (written and fsynced), then renames them in one burst, results.parquet last: it
is the set's commit. A reader (`read_set`) reads results.parquet first and then the others, and reads again when
a file is of another generation (a checkpoint was renaming in between: a few milliseconds); so export, eval and
review never see new results with old evidence or child tables, or the reverse. Only a kill inside that burst
leaves a set mixed; the reader then says so and the next `extractor run` rewrites the set from the journal
(it sends nothing for documents already done). Files written before generations existed read as they are.

A child table whose list field is gone from the schema (a renamed or removed field) is deleted when the next set
is written: only files this module stamped as child tables (`CHILD_OF`), never a file a person put there.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from extractor.errors import OutputError
from extractor.layout import TAKEN_STEMS, Layout
from extractor.store.files import _writing, stage_bytes
from extractor.store.journal import require_results
from extractor.table import ITEM_INDEX

GENERATION = "extractor.generation"  # Parquet metadata: the checkpoint a file of the set was written at
CHILD_OF = "extractor.child_of"  # Parquet metadata on a child table: the results file it was exploded from
READ_PATIENCE_S = 2.0  # how long a reader waits out a checkpoint's renames (measured: milliseconds)


@dataclass(frozen=True)
class OutputSet:
    """The tables of one checkpoint: results, evidence (None: none written, results from before evidence) and
    the child tables that exist, by field name."""

    results: pl.DataFrame
    evidence: pl.DataFrame | None
    children: dict[str, pl.DataFrame] = field(default_factory=dict)
    generation: str | None = None  # None: written before generations (or by hand)


def _parquet_bytes(frame: pl.DataFrame, metadata: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True, metadata=metadata)
    return buffer.getvalue()


def child_tables(layout: Layout) -> dict[str, Path]:
    """Field name -> path of every child table under the layout's folder: stamped `CHILD_OF`, or, written before
    the stamp, of a child table's shape (`doc_id`, then `index`; `table.child_schema`)."""
    out: dict[str, Path] = {}
    if not layout.root.is_dir():
        return out
    for path in sorted(layout.root.glob("*.parquet")):
        if path.stem in TAKEN_STEMS:
            continue
        try:
            stamped = CHILD_OF in pl.read_parquet_metadata(path)
            shaped = list(pl.read_parquet_schema(path))[:2] == ["doc_id", ITEM_INDEX]
        except (OSError, pl.exceptions.PolarsError):
            continue  # not a Parquet file of ours
        if stamped or shaped:
            out[path.stem] = path
    return out


def write_set(layout: Layout, results: pl.DataFrame, evidence: pl.DataFrame,
              children: Mapping[str, pl.DataFrame]) -> str:
    """Write one checkpoint's set (see the module docstring); returns its generation. Child tables of fields the
    schema no longer has are deleted."""
    generation = uuid.uuid4().hex
    stamp = {GENERATION: generation}
    files = [(layout.child(name), _parquet_bytes(frame, {**stamp, CHILD_OF: layout.results.name}))
             for name, frame in children.items()]
    files += [(layout.evidence, _parquet_bytes(evidence, stamp)), (layout.results, _parquet_bytes(results, stamp))]
    staged: list[tuple[Path, Path]] = []
    with _writing(layout.results):
        try:
            for path, data in files:
                staged.append((stage_bytes(path, data), path))
            for tmp, path in staged:  # the burst: results.parquet last
                os.replace(tmp, path)
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        for name, path in child_tables(layout).items():
            if name not in children:
                path.unlink(missing_ok=True)
    return generation


def _read(path: Path) -> tuple[pl.DataFrame, str | None]:
    data = path.read_bytes()
    return pl.read_parquet(io.BytesIO(data)), pl.read_parquet_metadata(data).get(GENERATION)


def read_set(layout: Layout, *, children: bool = True, patience_s: float = READ_PATIENCE_S) -> OutputSet:
    """The newest set, all of one generation (see the module docstring); `children=False` leaves the child tables
    unread. Raises ConfigError where there are no results yet, OutputError where a killed checkpoint left the set
    mixed."""
    path = require_results(layout)
    deadline = time.monotonic() + patience_s
    while True:
        results, generation = _read(path)
        evidence, evidence_generation = _read(layout.evidence) if layout.evidence.is_file() else (None, generation)
        tables = {name: _read(p) for name, p in child_tables(layout).items()} if children else {}
        mixed = [layout.evidence.name] if evidence is not None and evidence_generation != generation else []
        mixed += [layout.child(name).name for name, (_, g) in tables.items() if g != generation]
        if generation is None or not mixed:
            return OutputSet(results, evidence, {name: frame for name, (frame, _) in tables.items()}, generation)
        if time.monotonic() >= deadline:
            raise OutputError(
                f"{layout.root}: {', '.join(mixed)} {'is' if len(mixed) == 1 else 'are'} not of the same checkpoint "
                f"as {layout.results.name} (a run was killed while it replaced them): run `extractor run` on the "
                "same folder again; it rewrites them from the journal and sends nothing for documents already done")
        time.sleep(0.02)
