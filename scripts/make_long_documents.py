"""Long documents from the sample letters: each letter's facts spread over a 100-300 page application pack.

The letter's text (as `extractor text` reads it) is cut into its paragraphs, in order, and the three thirds are
placed at the start (name and contacts), in the middle (skills) and near the end (pay and notice) of a pack
whose other pages are filler: bland prose with no names, digits, places, lists or addresses, so every labeled
value still stands exactly once in the pack, where the letter put it. The labels are the letter's, under the
pack's doc_id. Deterministic: the same arguments give the same files.

    python scripts/make_long_documents.py                       # outputs/long_inputs/, 150 pages, txt pdf docx
    python scripts/make_long_documents.py --pages 300 --letters jonas_berg,anna_schmidt --formats txt

Writes `<out>/<letter>.<format>` and `<labels>` (default bench/labels/long_letters.jsonl, one line per pack).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "inputs"
LABELS = ROOT / "bench" / "labels" / "cover_letters.jsonl"
LONG_LABELS = ROOT / "bench" / "labels" / "long_letters.jsonl"
FORMATS = ("txt", "pdf", "docx")
PAGE_CHARS = 1_800  # characters of filler per page: about an A4 page of prose
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"), Path("/usr/share/fonts")]

# Filler words: lower-case, no digits, no names or places, no list-making commas or "and".
_SUBJECTS = ["the committee", "the review", "the working group", "the process", "the team", "the board",
             "each member", "the panel", "the office", "the programme"]
_VERBS = ["considers", "records", "describes", "follows", "revisits", "summarises", "notes", "supports",
          "examines", "explains"]
_OBJECTS = ["the general approach", "the usual procedure", "the earlier discussion", "the shared guidance",
            "the common practice", "the overall direction", "the quality of the work", "the routine steps",
            "the agreed principles", "the outline of the plan"]
_TAILS = ["over the course of the year", "with due care", "for the benefit of everyone involved",
          "as described in the previous section", "without further delay", "in a clear manner",
          "as a matter of routine", "at the regular meeting", "with the usual attention", "in good time"]
_HEADINGS = ["General remarks", "Background of the pack", "Notes on procedure", "Further reading",
             "Administrative matters", "Supporting material"]


@dataclass(frozen=True)
class Pack:
    name: str  # the letter's file stem
    label: dict[str, Any]  # its labels (doc_id is the source letter's)
    pages: list[str]  # the pack's pages, the letter's thirds among them


def filler_page(rng: random.Random, chars: int) -> str:
    """About `chars` characters of bland prose under a heading, in paragraphs."""
    out = [rng.choice(_HEADINGS)]
    size = len(out[0])
    while size < chars:
        sentences = [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}."
                     .capitalize() for _ in range(rng.randint(3, 6))]
        paragraph = " ".join(sentences)
        out.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(out)


def thirds(text: str) -> list[str]:
    """The letter's paragraphs (else lines) in three consecutive groups of about equal length."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(parts) < 3:
        parts = [line.strip() for line in text.splitlines() if line.strip()]
    total, out, current, size = sum(len(p) for p in parts), [], [], 0
    for part in parts:
        current.append(part)
        size += len(part)
        if len(out) < 2 and size >= total * (len(out) + 1) / 3:
            out.append("\n\n".join(current))
            current = []
    out.append("\n\n".join(current))
    return [o for o in out if o] + [""] * (3 - len([o for o in out if o]))


def make_pack(name: str, text: str, label: dict[str, Any], pages: int, page_chars: int = PAGE_CHARS) -> Pack:
    """The letter's thirds on page 1, in the middle and on the second-to-last page, filler everywhere else."""
    rng = random.Random(name)
    head, middle, tail = thirds(text)
    body = [filler_page(rng, page_chars) for _ in range(pages)]
    body[0] = head
    body[pages // 2] = middle + "\n\n" + body[pages // 2]
    body[pages - 2] = body[pages - 2] + "\n\n" + tail
    return Pack(name, label, body)


def render_txt(pack: Pack) -> bytes:
    return ("\n\n".join(pack.pages) + "\n").encode("utf-8")


def _font() -> Path | None:
    for folder in FONT_DIRS:
        if folder.is_dir() and (hits := sorted(folder.rglob("DejaVuSans.ttf"))):
            return hits[0]
    return None


def render_pdf(pack: Pack) -> bytes:
    import datetime as dt

    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=16)
    # The core font where the text is latin-1 (a TrueType font's subsetting took 13 s a pack, measured), else DejaVu.
    latin = all(page.encode("latin-1", "ignore").decode("latin-1") == page for page in pack.pages)
    font = None if latin else _font()
    if font is not None:
        pdf.add_font("DejaVu", "", str(font))
        pdf.set_font("DejaVu", size=9)
    else:  # the core font: latin-1 letters only
        pdf.set_font("Helvetica", size=9)
    # Lines wrapped here and placed with text(): fpdf2's multi_cell measured 40 s for a 100-page pack.
    for page in pack.pages:
        pdf.add_page()
        y = 20.0
        for paragraph in page.split("\n\n"):
            for line in textwrap.wrap(paragraph, 100) or [""]:
                if y > 280:
                    pdf.add_page()
                    y = 20.0
                pdf.text(20, y, line)
                y += 4.2
            y += 2.0
    return bytes(pdf.output())


def render_docx(pack: Pack) -> bytes:
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    document.core_properties.author = "extractor"
    for i, page in enumerate(pack.pages):
        for paragraph in page.split("\n\n"):
            document.add_paragraph(paragraph)
        if i < len(pack.pages) - 1:
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


RENDER = {"txt": render_txt, "pdf": render_pdf, "docx": render_docx}


def anchors(text: str, label: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For the fake server's chunk oracle (`FakeOpenAI(anchored=...)`): each labeled value keyed by the words of
    the letter that state it (its evidence's quote, found by `values.evidence`), so a chunk is answered a value only
    where it shows those words; a value with no quote (derived: seniority, years, language) is keyed by the name."""
    sys.path.insert(0, str(ROOT))
    from extractor.schemas import load_schema
    from extractor.values.evidence import ground

    model = load_schema(ROOT / "schemas", "cover_letter").model
    values = {k: v for k, v in label.items() if k != "doc_id"}
    name = next(e.quote for e in ground(model, {"applicant_name": values["applicant_name"]}, text) if e.quote)
    out: dict[str, dict[str, Any]] = {}

    def put(anchor: str | None, path: str, value: Any) -> None:
        key = " ".join((anchor or name).split())
        top, _, sub = path.partition(".")
        entry = out.setdefault(key, {})
        if sub:
            entry.setdefault(top, {})[sub] = value
        elif re.search(r"\[\d+\]$", top):
            entry.setdefault(re.sub(r"\[\d+\]$", "", top), []).append(value)
        else:
            entry[top] = value

    for evidence in ground(model, values, text):
        leaf: Any = values
        for part in re.split(r"\.|\[|\]", evidence.field):
            if part:
                leaf = leaf[int(part)] if part.isdigit() else leaf[part]
        put(evidence.quote if evidence.quote and len(evidence.quote.strip()) > 1 else None, evidence.field, leaf)
    for key, value in values.items():  # fields labeled empty: answered as empty by the chunk with the name
        if value is None or value == []:
            out.setdefault(" ".join(name.split()), {})[key] = value
    return out


def letters(names: Iterable[str] | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(stem, text as extractor reads it, labels) of the labeled sample letters (or only those named)."""
    sys.path.insert(0, str(ROOT))
    from extractor.documents import read_text

    wanted = set(names) if names else None
    out = []
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        stem = Path(label["doc_id"]).stem
        if wanted is not None and stem not in wanted:
            continue
        text = read_text(INPUTS / label["doc_id"], max_chars=10**9, timeout_s=60).text
        out.append((stem, text, label))
    return out


def write_packs(out: Path, *, pages: int = 150, names: Sequence[str] | None = None,
                formats: Sequence[str] = FORMATS, page_chars: int = PAGE_CHARS,
                labels: Path | None = None) -> list[dict[str, Any]]:
    """Write the packs (one per letter and format) under `out`; returns their labels (doc_id: the pack's file
    name), also written to `labels` (default `<out>/labels.jsonl`)."""
    if not pages >= 3:
        raise ValueError("a pack needs at least 3 pages")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, text, label in letters(names):
        pack = make_pack(stem, text, label, pages, page_chars)
        for fmt in formats:
            name = f"{stem}_pack.{fmt}"
            (out / name).write_bytes(RENDER[fmt](pack))
            written.append({**label, "doc_id": name, "source": label["doc_id"]})
    target = labels or out / "labels.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps({k: v for k, v in w.items() if k != "source"}, ensure_ascii=False) + "\n"
                              for w in written), encoding="utf-8")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "long_inputs")
    parser.add_argument("--pages", type=int, default=150, help="pages per pack (100-300 in the tests and benches)")
    parser.add_argument("--letters", default="", help="comma-separated letter stems (default: every labeled one)")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--labels", type=Path, default=LONG_LABELS)
    args = parser.parse_args()
    names = [n for n in args.letters.split(",") if n] or None
    written = write_packs(args.out, pages=args.pages, names=names, formats=args.formats.split(","),
                          labels=args.labels)
    print(f"wrote {len(written)} pack(s) of {args.pages} pages to {args.out}; labels: {args.labels}")


if __name__ == "__main__":
    main()
