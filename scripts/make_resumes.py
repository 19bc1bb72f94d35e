"""Turn the labeled resume dataset (dotin-inc, CC0) into a drop folder of .txt resumes plus gold labels.

The source is `545_cvs_train_v2.zip` (see `../shared/datasets/resumes-dotin/SOURCE.txt`): 310 XML files, one
resume each, `<cv>text with inline <label type="TYPE">span</label></cv>`. The zip is read in memory (nothing is
extracted to disk) and the XML with regular expressions, since it is not always well formed.

    python scripts/make_resumes.py                          # all resumes into datasets/resumes/
    python scripts/make_resumes.py --limit 20 --out /tmp/r  # the first 20 only

Output, under `--out`:

- `resumes/cv_NNN.txt`: the plain text of `.../NNN.xml` (UTF-8, tags stripped, HTML entities such as `&amp;`
  unescaped, ending in one newline). Members are taken in natural order (1, 2, ..., 10, ...), which is also the
  sorted order of the output names, and `--limit N` keeps the first N. Stale `*.txt` files in `resumes/` that
  this run did not write are removed, so the folder always matches `labels.jsonl`.
  About two thirds of the files hold their text as a double-quoted Python bytes literal (`"...\\xe2\\x80\\xa2..."`,
  with `\\'` and `\\t`; two lack the closing quote); the quotes are removed and the escapes decoded to the
  characters they stand for (one label that starts inside an escape run is moved in front of the run).
  Control characters other than tab and newline become spaces.
- `labels.jsonl`: one JSON object per resume, in the same order: `doc_id` (the file name relative to
  `resumes/`, e.g. "cv_001.txt") and the gold values of the fields of `schemas/resume.py`:
  name, location, current_title: the first Name, Location, Designation label;
  email: the first Email Address label, lower-cased;
  companies, degrees, colleges: the Companies worked at, Degree, College Name labels, each once
  (case-insensitively), in document order;
  graduation_years: the four-digit years in the Graduation Year labels (an eight-digit run such as "20072008",
  a range whose dash got lost, counts as two years);
  skills: the Job Specific Skills and Tech Tools labels, each once (case-insensitively), in document order,
  at most 40 (the schema's bound); Soft Skills are left out;
  years_experience: the largest total stated by a Years of Experience label ("11 years of experience" -> 11,
  "2 Years and 4 Months" -> 2.33, "Ten years" -> 10, "6 months" -> 0.5; "Less than 1 year" is ignored).
  Most of these labels are date ranges ("2005 to Present"); they are not turned into a total.

  Label values have their whitespace collapsed to single spaces. A scalar field without a label is null. A list
  field without a label (or whose every value was dropped) is OMITTED, so an evaluator can tell "not labeled"
  from "labeled empty"; the annotations are incomplete, so compare lists by recall rather than precision.
  Every value is validated field by field against `schemas.resume.Resume` and written in its normalized form;
  a value that fails (a malformed e-mail, an implausible year, a string over the length bound) is dropped and
  counted in the summary, and a list longer than the schema allows is cut to its first items and counted too.
  Resumes without a Name label (43 of the 310) get `"name": null`; `name` is required in the schema, so such a
  row does not validate as a whole `Resume`: score `name` only where the gold value is not null.

A one-line summary is printed: resumes written, labels per field, values dropped, lists truncated.
The output is deterministic: running the script twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ValidationError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "resumes-dotin" / "545_cvs_train_v2.zip"
DEFAULT_OUT = ROOT / "datasets" / "resumes"
SCHEMA = ROOT / "schemas" / "resume.py"

FIELDS = ("name", "email", "location", "current_title", "companies", "degrees", "colleges", "graduation_years",
          "skills", "years_experience")
LIST_FIELDS = ("companies", "degrees", "colleges", "graduation_years", "skills")
FIRST_LABEL = {"name": "Name", "email": "Email Address", "location": "Location", "current_title": "Designation"}
UNIQUE_LABELS = {"companies": ("Companies worked at",), "degrees": ("Degree",), "colleges": ("College Name",),
                 "skills": ("Job Specific Skills", "Tech Tools")}

_BODY = re.compile(r"<cv\s*>(.*)</cv\s*>", re.S)
_LABEL = re.compile(r'<label\s+type="([^"]*)"\s*>(.*?)</label\s*>', re.S)
_STRAY_TAG = re.compile(r"</?label\b[^>]*>|</?cv\s*>")
# An opening tag inside a run of escapes (`\xe2\x80\<label type="T">x98...`) is moved in front of the run.
_SPLIT_ESCAPE = re.compile(r'((?:\\x[0-9a-fA-F]{2})+)\\(<label\s+type="[^"]*"\s*>)(x[0-9a-fA-F]{2})')
_PY_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[\\'\"tnr])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SIMPLE_ESCAPES = {"\\": b"\\", "'": b"'", '"': b'"', "t": b"\t", "n": b"\n", "r": b"\r"}

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
          "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")"
_TOTAL = re.compile(
    rf"\b{_NUM}\s*\+?\s*-?\s*(?:years?|yrs?)\b(?:\s*(?:and\s*)?{_NUM}\s*\+?\s*months?\b)?"
    rf"|\b{_NUM}\s*\+?\s*-?\s*months?\b",
    re.I)


def load_model() -> type[BaseModel]:
    module_name = "make_resumes_schema_resume"
    spec = importlib.util.spec_from_file_location(module_name, SCHEMA)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {SCHEMA}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pydantic resolves forward references through sys.modules
    spec.loader.exec_module(module)
    return module.MODEL


def natural_key(name: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def doc_name(member: str) -> str:
    """A stable file name from the XML member name: `.../7.xml` -> `cv_007.txt`."""
    stem = PurePosixPath(member).stem
    if stem.isdigit():
        return f"cv_{int(stem):03d}.txt"
    return "cv_" + re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".txt"


def decode_py_escapes(text: str) -> str:
    """Decode the escapes of a Python bytes literal (`\\xe2\\x80\\xa2` -> '•', `\\'` -> "'"), UTF-8 assumed."""
    out = bytearray()
    pos = 0
    for match in _PY_ESCAPE.finditer(text):
        out += text[pos:match.start()].encode("utf-8")
        code = match.group(1)
        out += bytes([int(code[1:], 16)]) if code[0] == "x" else _SIMPLE_ESCAPES[code]
        pos = match.end()
    out += text[pos:].encode("utf-8")
    return out.decode("utf-8", errors="replace")


def squash(value: str) -> str:
    return " ".join(value.split())


def parse_cv(xml: str) -> tuple[str, list[tuple[str, str]]]:
    """The plain text of one resume and its (label type, value) pairs in document order."""
    match = _BODY.search(xml)
    body = match.group(1) if match else re.sub(r"^\s*<\?xml[^>]*\?>", "", xml)
    body = body.strip()
    if body.startswith('"'):  # a Python bytes literal; in a few files the closing quote is missing
        body = body[1:-1] if len(body) > 1 and body.endswith('"') else body[1:]
        body = decode_py_escapes(_SPLIT_ESCAPE.sub(r"\2\1\\\3", body))
    labels = [(kind.strip(), squash(html.unescape(_STRAY_TAG.sub("", value)))) for kind, value in _LABEL.findall(body)]
    text = _STRAY_TAG.sub("", _LABEL.sub(lambda m: m.group(2), body))
    text = _CONTROL.sub(" ", html.unescape(text)).strip()
    return text + "\n", [(kind, value) for kind, value in labels if value]


def unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.casefold(), value)
    return list(seen.values())


def years(value: str) -> list[int]:
    """Four-digit numbers in a Graduation Year label; an eight-digit run is two years whose dash got lost."""
    found: list[int] = []
    for run in re.findall(r"\d+", value):
        if len(run) == 4:
            found.append(int(run))
        elif len(run) == 8:
            found += [int(run[:4]), int(run[4:])]
    return found


def _number(token: str | None) -> float:
    if token is None:
        return 0.0
    return float(_WORDS.get(token.lower(), 0)) if token.isalpha() else float(token)


def stated_total(value: str) -> float | None:
    """A total such as "11 years of experience" or "2 Years and 4 Months" in years; None for ranges."""
    if re.search(r"\bless than\b", value, re.I):
        return None
    totals = []
    for match in _TOTAL.finditer(value):
        year_part, month_part, months_only = match.groups()
        total = _number(months_only) / 12 if months_only else _number(year_part) + _number(month_part) / 12
        if 0 < total <= 70:
            totals.append(round(total, 2))
    return max(totals) if totals else None


def gold_values(labels: list[tuple[str, str]]) -> dict[str, Any]:
    """Raw gold values from the labels: None for an unlabeled scalar, no key for an unlabeled list."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in labels:
        by_kind.setdefault(kind, []).append(value)
    row: dict[str, Any] = {field: (by_kind.get(kind) or [None])[0] for field, kind in FIRST_LABEL.items()}
    if row["email"] is not None:
        row["email"] = row["email"].lower()
    for field, kinds in UNIQUE_LABELS.items():
        values = unique(value for kind, value in labels if kind in kinds)
        if values:
            row[field] = values
    graduation = [year for value in by_kind.get("Graduation Year", []) for year in years(value)]
    if graduation:
        row["graduation_years"] = graduation
    totals = [t for t in map(stated_total, by_kind.get("Years of Experience", [])) if t is not None]
    row["years_experience"] = max(totals) if totals else None
    return row


class Validator:
    """Validates gold values field by field against the Resume model, dropping what does not fit."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.dropped: Counter[str] = Counter()
        self.truncated: Counter[str] = Counter()

    def check(self, field: str, value: Any) -> Any:
        data = {"name": value} if field == "name" else {"name": "placeholder", field: value}
        return getattr(self.model.model_validate(data), field)

    def max_length(self, field: str) -> int | None:
        info = self.model.model_fields[field]
        return next((m.max_length for m in info.metadata if getattr(m, "max_length", None) is not None), None)

    def clean(self, raw: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for field in FIELDS:
            if field not in raw:
                continue
            value = raw[field]
            if field not in LIST_FIELDS:
                if value is not None:
                    try:
                        value = self.check(field, value)
                    except ValidationError:
                        self.dropped[field] += 1
                        value = None
                row[field] = value
                continue
            kept: list[Any] = []
            for item in value:
                try:
                    kept += self.check(field, [item])
                except ValidationError:
                    self.dropped[field] += 1
            kept = unique(kept) if field != "graduation_years" else list(dict.fromkeys(kept))
            limit = self.max_length(field)
            if limit is not None and len(kept) > limit:
                self.truncated[field] += 1
                kept = kept[:limit]
            if kept:
                row[field] = self.check(field, kept)
        return row


def members(archive: zipfile.ZipFile) -> list[str]:
    names = [n for n in archive.namelist() if n.lower().endswith(".xml") and not n.endswith("/")]
    return sorted(names, key=natural_key)


def convert(source: Path, out: Path, limit: int | None = None) -> dict[str, Any]:
    """Write `<out>/resumes/*.txt` and `<out>/labels.jsonl`; return counts for the summary."""
    validator = Validator(load_model())
    folder = out / "resumes"
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    written: set[str] = set()
    with zipfile.ZipFile(source) as archive:
        chosen = members(archive)
        if limit is not None:
            chosen = chosen[:limit]
        for member in chosen:
            name = doc_name(member)
            if name in written:
                raise ValueError(f"two members of {source} map to {name}")
            text, labels = parse_cv(archive.read(member).decode("utf-8-sig", errors="replace"))
            (folder / name).write_bytes(text.encode("utf-8"))
            written.add(name)
            rows.append({"doc_id": name, **validator.clean(gold_values(labels))})
    for stale in folder.glob("*.txt"):
        if stale.name not in written:
            stale.unlink()
    with (out / "labels.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    per_field = Counter({field: sum(1 for row in rows if row.get(field) is not None) for field in FIELDS})
    return {"resumes": len(rows), "out": out, "labels": per_field, "dropped": validator.dropped,
            "truncated": validator.truncated}


def summary_line(stats: dict[str, Any]) -> str:
    def counts(counter: Counter[str]) -> str:
        return ", ".join(f"{field} {counter[field]}" for field in FIELDS if counter[field]) or "none"

    return (f"wrote {stats['resumes']} resumes to {stats['out']}; labels per field: {counts(stats['labels'])}; "
            f"invalid values dropped: {counts(stats['dropped'])}; lists truncated: {counts(stats['truncated'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the dataset zip (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="convert only the first N resumes")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        parser.error("--limit must be >= 0")
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    print(summary_line(convert(args.source, args.out, args.limit)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
