"""Chunks of a document too long for one request: cut on its structure, with an overlap, each with its offsets
into the whole text (so evidence found in a chunk indexes into the document as `extractor text` prints it).

A chunk ends at the strongest boundary in the second half of its window: a page start, then a paragraph
break (a blank line), then a line break, then a sentence's end, then a space; a text with none of those (a
run of junk) is cut at the window's edge. The next chunk starts `overlap` characters before that end, moved
forward to the first line or sentence start (else word start) there, so a value that straddles a cut is
whole in one of the two chunks. One scan per chunk over at most its window: linear in the text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """One part of a document: `text == document.text[start:end]`."""

    index: int
    start: int
    end: int
    text: str

    def __len__(self) -> int:
        return self.end - self.start


# Boundaries by strength; each pattern's match END is where a chunk may end (and the next one start).
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n\s*")
_SENTENCE = re.compile(r"[.!?;:)\]](?=\s)\s+")
_SPACE = re.compile(r"\s+")
_STRENGTHS = (_PARAGRAPH, _LINE, _SENTENCE, _SPACE)


def _last_boundary(text: str, lo: int, hi: int, pages: Sequence[int]) -> int | None:
    """The strongest boundary in (lo, hi]: the last page start there, else the last end of a paragraph break,
    line break, sentence end or space; None when there is none."""
    if pages:
        i = bisect.bisect_right(pages, hi) - 1
        if i >= 0 and lo < pages[i] <= hi:
            return pages[i]
    for pattern in _STRENGTHS:
        last = None
        for match in pattern.finditer(text, lo, hi):
            last = match.end()
        if last is not None and lo < last <= hi:
            return last
    return None


def _next_start(text: str, lo: int, hi: int) -> int:
    """Where a chunk that overlaps its predecessor from `lo` starts: the first line or sentence start in [lo, hi),
    else the first word start, else `lo` (no boundary: cut mid-word)."""
    if lo == 0:
        return 0
    for pattern in (_LINE, _SENTENCE, _SPACE):
        match = pattern.search(text, lo - 1 if lo > 0 else lo, hi)
        if match is not None and match.end() < hi:
            return match.end()
    return lo


def chunk_text(text: str, max_chars: int, *, overlap: int = 0, pages: Sequence[int] | None = None) -> list[Chunk]:
    """`text` cut into chunks of at most `max_chars` characters on its structure (see the module docstring);
    `overlap`: characters each chunk repeats of the one before (at most a quarter of `max_chars`); `pages`: where
    the document's pages start (a PDF's). A text that fits is one chunk."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, not {max_chars}")
    overlap = max(0, min(overlap, max_chars // 4))
    starts = sorted(pages or ())
    out: list[Chunk] = []
    start = 0
    while True:
        if len(text) - start <= max_chars:
            out.append(Chunk(len(out), start, len(text), text[start:]))
            return out
        hi = start + max_chars
        end = _last_boundary(text, start + max_chars // 2, hi, starts) or hi
        out.append(Chunk(len(out), start, end, text[start:end]))
        # The next chunk repeats the overlap, never starting before this one did (progress is guaranteed).
        start = max(start + 1, _next_start(text, end - overlap, end) if overlap else end)
