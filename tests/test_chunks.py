"""Chunks of long documents: on the document's structure, with an overlap, offsets into the whole text."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from extractor.documents import chunk_text


def _paragraphs(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = ["the", "team", "shipped", "a", "release", "of", "the", "platform", "with", "care", "and"]
    paras = []
    for _ in range(n):
        sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 14))).capitalize() + "."
                     for _ in range(rng.randint(2, 5))]
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


def test_a_text_that_fits_is_one_chunk_covering_it() -> None:
    chunks = chunk_text("short text", 100, overlap=10)
    assert [(c.start, c.end, c.text) for c in chunks] == [(0, 10, "short text")]


def test_every_chunk_is_its_slice_of_the_whole_text_bounded_and_the_chunks_cover_it() -> None:
    text = _paragraphs(300)
    chunks = chunk_text(text, 2_000, overlap=200)
    assert len(chunks) > 10
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for before, after in itertools.pairwise(chunks):
        assert after.start <= before.end, "no gap between chunks"
        assert after.start > before.start
    for chunk in chunks:
        assert chunk.text == text[chunk.start:chunk.end]
        assert len(chunk.text) <= 2_000


def test_chunks_end_at_paragraph_breaks_where_there_are_some() -> None:
    text = _paragraphs(200, seed=3)
    for chunk in chunk_text(text, 1_500)[:-1]:
        assert text[chunk.end - 2:chunk.end] == "\n\n"


def test_page_starts_are_preferred_over_paragraphs() -> None:
    pages_text = [_paragraphs(6, seed=i)[:900] for i in range(8)]  # pages of one length, many paragraphs each
    text, starts = "", []
    for page in pages_text:
        starts.append(len(text))
        text += page + "\n\n"
    longest = max(len(p) for p in pages_text) + 2
    chunks = chunk_text(text, int(longest * 1.6), pages=starts)
    assert all(c.end in starts for c in chunks[:-1])


def test_a_sentence_end_is_used_when_a_paragraph_is_longer_than_a_chunk() -> None:
    text = " ".join(f"Sentence number {i} says little." for i in range(400))
    for chunk in chunk_text(text, 700)[:-1]:
        assert chunk.text.rstrip().endswith(".")


def test_a_value_cut_by_a_boundary_is_whole_in_the_overlapping_chunk() -> None:
    text = " ".join(f"word{i}" for i in range(5_000)) + " contact: jane.doe@example.com " + " ".join(
        f"word{i}" for i in range(5_000))
    chunks = chunk_text(text, 3_000, overlap=300)
    assert any("jane.doe@example.com" in c.text for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert before.end - after.start >= 250, "about the overlap is repeated"
        assert text[after.start - 1].isspace(), "the overlap starts at a word"


def test_junk_without_any_boundary_is_cut_at_the_window() -> None:
    chunks = chunk_text("x" * 10_000, 3_000, overlap=100)
    assert [len(c) for c in chunks[:-1]] == [3_000] * (len(chunks) - 1)
    assert chunks[-1].end == 10_000


def test_chunking_a_long_text_is_linear() -> None:
    small = _paragraphs(2_000, seed=1)
    large = small * 8
    timings = []
    for text in (small, large):  # CPU time, the best of 5: the machine is shared (wall time was noise at load 20)
        best = float("inf")
        for _ in range(5):
            began = time.process_time()
            chunk_text(text, 4_000, overlap=400)
            best = min(best, time.process_time() - began)
        timings.append(best)
    assert timings[1] < 20 * timings[0]  # 8x the text: about 8x the time; quadratic would be 64x


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_text("text", 0)
