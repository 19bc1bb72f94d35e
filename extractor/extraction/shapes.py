"""Routing hints from a document's shape, in any language: what a kind looks like, not the words it uses.

A schema module names the shapes of its kind in `SHAPES` (e.g. a letter's `salutation` and `closing`, a CV's
`date-ranges` and `headings`); `routing.Hints` counts each shape present as one hint beside the `KEYWORDS`. The
keywords are words of some languages (the held-out letters in Portuguese, Spanish, Polish and Dutch had none of
them); a letter opens with a greeting and ends with a sign-off in every one of them.

Each detector returns the evidence it found (a line, for the route's reason) or None. They read plain text as the
parsers give it (Markdown emphasis and heading marks are stripped from a line first) and never the model.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

_WORD = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*")
_BULLET = re.compile(r"[-*•●▪·]")
_NOT_PROSE = re.compile(r"[\d@|]")
_LEAD = 4000  # characters a greeting is looked for in (a letterhead of address, phone and date comes first)
_TAIL = 3000  # ... and a sign-off in
_SCAN = 8000  # ... and a CV's headings and dates in


def _lines(text: str) -> list[str]:
    return [s for line in text.splitlines() if (s := line.strip().strip("*_#>").strip())]


def salutation(text: str) -> str | None:
    """A greeting line among the first 20 lines ("Dear Hiring Manager,", "Szanowni Państwo,", "Hola equipo:"):
    up to 10 words ending in "," "!" or ":" (a colon only after a lower-case word: "Skills:" or "TECHNICAL
    QUALIFICATION:" are a CV's headings), no digits, followed by a line of prose (40+ characters, not a bullet)."""
    lines = _lines(text[:_LEAD])[:20]
    for line, after in itertools.pairwise(lines):
        words = _WORD.findall(line)
        if not (1 <= len(words) <= 10 and len(line) <= 80 and line[0].isupper() and line[-1] in ",!:"):
            continue
        if _NOT_PROSE.search(line) or (line[-1] == ":" and not any(w.islower() for w in words[1:])):
            continue
        if len(after) >= 40 and not _BULLET.match(after):
            return line
    return None


def closing(text: str) -> str | None:
    """A sign-off among the last 12 lines ("Kind regards,", "Z poważaniem,", "Thanks for your time,"): up to 5
    words ending in ",", followed within two lines by a name (2 to 4 capitalized words, no digits)."""
    lines = _lines(text[-_TAIL:])[-12:]
    for i, line in enumerate(lines[:-1]):
        words = _WORD.findall(line)
        if not (1 <= len(words) <= 5 and len(line) <= 40 and line[0].isupper() and line.endswith(",")):
            continue
        if _NOT_PROSE.search(line):
            continue
        for after in lines[i + 1:i + 3]:
            name = _WORD.findall(after)
            if 2 <= len(name) <= 4 and all(w[0].isupper() for w in name) and not _NOT_PROSE.search(after):
                return f"{line} {after}"
    return None


_RANGE = re.compile(r"(?<!\d)(?:19|20)\d\d\s*(?:-|–|—|to|until|till)\s*(?:[^\W\d_]{3,9}\.?\s+)?"
                    r"(?:(?:\d{1,2}[/.-])?(?:19|20)\d\d(?!\d)|present\b|current\b|now\b|date\b|today\b)", re.IGNORECASE)


def date_ranges(text: str) -> str | None:
    """Two or more different spans of years ("August 2015 to May 2018", "2019 - Present"): a CV's positions
    and studies. A letter names a span once, if at all."""
    found = list(dict.fromkeys(m.group(0) for m in _RANGE.finditer(text[:_SCAN])))
    return ", ".join(found[:3]) if len(found) >= 2 else None


def headings(text: str) -> str | None:
    """Three or more section headings: lines of 1 to 4 words in capitals ("WORK EXPERIENCE", "EDUCATION:")."""
    found = []
    for line in _lines(text[:_SCAN]):
        bare = line.rstrip(":")
        letters = re.sub(r"[\s&/]", "", bare)
        if 1 <= len(bare.split()) <= 4 and len(letters) >= 4 and letters.isalpha() and bare.isupper():
            found.append(bare)
    return ", ".join(found[:3]) if len(found) >= 3 else None


SHAPES: dict[str, Callable[[str], str | None]] = {
    "salutation": salutation, "closing": closing, "date-ranges": date_ranges, "headings": headings,
}
