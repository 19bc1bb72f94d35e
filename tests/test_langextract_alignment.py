"""google/langextract's own alignment test cases, run against extractor's grounding (issue 25).

tests/data/langextract_alignment_cases.json holds every (source text, value) that langextract's resolver,
annotation and fuzzy-alignment tests align, with the span those tests expect (bench/langextract_cases.py
regenerates it from a checkout). Each value is grounded here on its own, as extractor grounds a field,
and must land on exactly langextract's span, or be listed in KNOWN_DIFFERENCES with the reason
extractor's answer is the better evidence. langextract's span is not always one for the value on its
own: its tests align several extractions together, in order, so one extraction's tokens are not
another's; they also accept a partial match (`match_lesser`) or words scattered over a sentence.
A reason that starts with "TODO extractor:" is a weakness of extractor's grounding, kept here until
it is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extractor.values.evidence import Evidence, Grounder, Leaf

DATA = Path(__file__).resolve().parent / "data" / "langextract_alignment_cases.json"
PAYLOAD = json.loads(DATA.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = PAYLOAD["cases"]

# Case id -> why extractor's answer differs and is the better evidence (or, "TODO extractor:", why it is not).
KNOWN_DIFFERENCES = {
    "shuffled_order_of_last_two_extractions:ibuprofen":
        "relies on extraction order: listed before 'prednisone' but written after it, langextract's in-order "
        "alignment leaves 'ibuprofen' out; on its own langextract quotes 88-97 'ibuprofen', as extractor does",
    "interleaved_extractions:Naprosyn":
        "relies on extraction order: listed before 'arthritis' but written after it, 'Naprosyn' is left "
        "unaligned; on its own langextract quotes 37-45 'Naprosyn', as extractor does",
    "overlapping_text_extractions_with_overlapping_source:blood pressure":
        "relies on the other extractions: 'high blood' took the token 'blood'; on its own langextract quotes "
        "17-31 'blood pressure', as extractor does",
    "multiple_word_extraction_partially_matched:high blood pressure":
        "accepts a partial match (match_lesser): 'high' of 'high glucose' is no evidence of high blood "
        "pressure; extractor's not_found is right",
    "gapped_lcs:metformin hydrochloride tablet":
        "langextract's span is 9 words of a random word list in which the value's 3 words stand 3 words "
        "apart: no evidence the text names the value (on its own langextract quotes only 'metformin', "
        "match_lesser); extractor's not_found is right",
    "fuzzy_alignment_with_reordered_words:problems heart":
        "extractor quotes 'heart problems' (19-33), the value's two words and nothing else; langextract's "
        "test span 'severe heart problems' adds a word the value lacks, and on its own langextract leaves "
        "the value unaligned",
    "annotate_text_multiple_chunks:headache":
        "the test turns fuzzy alignment off; 'headaches' is sound evidence of 'headache', which extractor "
        "quotes as fuzzy (94), as langextract does with fuzzy alignment on (30-39, match_fuzzy)",
}


def ground(case: dict[str, Any]) -> Evidence:
    return Grounder(case["text"]).ground(Leaf("value", case["value"], "text"))


def agreement(case: dict[str, Any], evidence: Evidence) -> str:
    """exact (the same span, or both unaligned), half (the spans overlap by half the longer) or differs."""
    ours, theirs = (evidence.start, evidence.end), (case["start"], case["end"])
    if ours == theirs:
        return "exact"
    if None in ours or None in theirs:
        return "differs"
    overlap = min(ours[1], theirs[1]) - max(ours[0], theirs[0])
    return "half" if overlap >= 0.5 * max(ours[1] - ours[0], theirs[1] - theirs[0]) else "differs"


def describe(case: dict[str, Any], evidence: Evidence) -> str:
    theirs = (f"{case['start']}-{case['end']} {case['text'][case['start']:case['end']]!r} ({case['status']})"
              if case["start"] is not None else "unaligned")
    ours = f"{evidence.start}-{evidence.end} {evidence.quote!r} ({evidence.status})" if evidence.start is not None \
        else "not_found"
    return f"{case['id']}: langextract {theirs}, extractor {ours}"


def figures() -> dict[str, int]:
    kinds = [agreement(case, ground(case)) for case in CASES]
    exact = kinds.count("exact")
    return {"cases": len(CASES), "exact": exact, "within_half": exact + kinds.count("half"),
            "differences": len(CASES) - exact}


def test_the_cases_come_from_langextract_with_their_license() -> None:
    assert "google/langextract" in PAYLOAD["_source"] and "Apache-2.0" in PAYLOAD["_license"]
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    assert len({(case["text"], case["value"]) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_extractor_agrees_with_langextract_or_the_difference_is_listed(case: dict[str, Any]) -> None:
    evidence = ground(case)
    kind = agreement(case, evidence)
    if case["id"] in KNOWN_DIFFERENCES:
        assert kind != "exact", f"now agrees, remove it from KNOWN_DIFFERENCES: {describe(case, evidence)}"
    else:
        assert kind == "exact", f"{kind}: {describe(case, evidence)}"


def test_every_known_difference_is_a_case_with_a_one_line_reason() -> None:
    ids = {case["id"] for case in CASES}
    assert set(KNOWN_DIFFERENCES) <= ids, set(KNOWN_DIFFERENCES) - ids
    assert all(reason.strip() and "\n" not in reason for reason in KNOWN_DIFFERENCES.values())


def test_summary_figures() -> None:
    found = figures()
    print(f"langextract alignment cases: {found['exact']} of {found['cases']} unique cases agree exactly, "
          f"{found['within_half']} within half a span, {found['differences']} differ "
          f"({sum(r.startswith('TODO extractor:') for r in KNOWN_DIFFERENCES.values())} of them extractor's to fix)")
    assert found["cases"] == 86  # regenerated from another langextract commit: look at the new cases
    assert found["exact"] == found["cases"] - len(KNOWN_DIFFERENCES)
    assert found["exact"] >= 79 and found["within_half"] >= 80
