"""Atomic files: readers see the old file or the new one, never half of one; a write that fails for want
of space or permission names the file and what to do. Also the per-run event log (JSON lines)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import polars as pl

from extractor.errors import output_error

P = ParamSpec("P")
R = TypeVar("R")

@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A write that fails for want of space or permission raises OutputError naming the file and what to do."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        if (error := output_error(exc, path)) is not None:
            raise error from exc
        raise


def _writes(method: Callable[P, R]) -> Callable[P, R]:
    """`_writing(self.path)` around a method of Journal or Labels."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if getattr(args[0], "readonly", False):  # a write through a read-only open is a bug, not a full disk
            return method(*args, **kwargs)
        with _writing(args[0].path):  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper



def frame_from_json_rows(rows: Iterable[str], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    buffer = io.BytesIO("\n".join(rows).encode())
    if buffer.getbuffer().nbytes == 0:
        return pl.DataFrame(schema=schema)
    # A Decimal field reaches JSON as a string ("3088.34"), which read_ndjson will not put in a Float64
    # column: floats are read as text first, then cast (a JSON number reads back as the same float).
    as_text = {name: _floats_as_text(dtype) for name, dtype in schema.items()}
    if as_text == schema:
        return pl.read_ndjson(buffer, schema=schema)
    return pl.read_ndjson(buffer, schema=as_text).cast(schema)  # type: ignore[arg-type]


def _floats_as_text(dtype: pl.DataType) -> pl.DataType:
    if isinstance(dtype, pl.Float64 | pl.Float32):
        return pl.String()
    if isinstance(dtype, pl.List):
        return pl.List(_floats_as_text(dtype.inner))  # type: ignore[arg-type]
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _floats_as_text(f.dtype) for f in dtype.fields})  # type: ignore[arg-type]
    return dtype


def write_atomic_bytes(path: Path, data: bytes) -> None:
    with _writing(path):
        _write_atomic_bytes(path, data)


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    tmp = stage_bytes(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stage_bytes(path: Path, data: bytes) -> Path:
    """`data` written and fsynced to a temporary file beside `path`, readable as the umask allows (mkstemp's 0600
    would hide reports, exports and tables from colleagues); the caller renames it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Readers see the old file or the new one, never half of one."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    write_atomic_bytes(path, buffer.getvalue())


def write_json_atomic(payload: dict[str, Any], path: Path) -> None:
    write_atomic_bytes(path, (json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n").encode())


class EventLog:
    """JSON lines, one event per document, flushed as they happen: `<schema>/logs/<run_id>.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with _writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a", encoding="utf-8", buffering=1)

    @_writes
    def write(self, event: str, **fields: Any) -> None:
        self._fh.write(json.dumps({"event": event, **fields}, default=str, ensure_ascii=False) + "\n")

    def close(self) -> None:
        # A full disk loses the audit log's tail, not the journal (the record that counts).
        with contextlib.suppress(OSError):
            self._fh.close()


