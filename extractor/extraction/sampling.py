"""Which documents get self-consistency samples (`--samples K --sample-fraction F`): an exact, stable draw.

Independent draws per document (a hash under F) are stable but not exact: 25% of 24 letters drew 8. Ranking
the documents by a seeded hash and taking the first round(F * n) is exact but not stable: a document added to
the folder pushes another out of the draw, and that one's cache key flips (it is paid for again). So the
decision is remembered: the journal keeps each document's draw under the seed and fraction, a document keeps
its decision night after night, and only documents never drawn before fill what is left of round(F * n), in
hash order. With unchanged settings and a folder that only grows, each run samples round(F * n) of its n
documents; a folder that loses drawn documents, or a changed fraction's new scope, can leave it one or more
off (a new seed or fraction draws afresh, exactly).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

from extractor.config import RunConfig
from extractor.store import Journal


def rank(seed: int, doc_id: str) -> int:
    """A document's place in the draw: a seeded hash of its name (not its bytes: an edit keeps its place)."""
    return int(hashlib.sha256(f"{seed}:{doc_id}".encode()).hexdigest()[:16], 16)


def scope(config: RunConfig) -> str:
    """What a remembered decision holds under: the seed and the fraction (K and the temperature change the
    sampled documents' keys anyway, not who is drawn)."""
    return f"seed={config.sample_seed};fraction={config.sample_fraction!r}"


@dataclass(frozen=True)
class Draw:
    """The documents of one run that get K samples, and the decisions taken now (to remember)."""

    sampled: frozenset[str]
    new: dict[str, bool]


def draw(config: RunConfig, doc_ids: Iterable[str], remembered: dict[str, bool]) -> Draw:
    """The exact, stable draw of the module docstring over this run's documents."""
    ids = sorted(set(doc_ids))
    if config.samples < 2 or not ids:
        return Draw(frozenset(), {})
    target = math.floor(config.sample_fraction * len(ids) + 0.5)  # half up: 2.5 -> 3 (round() would give 2)
    kept = {d for d in ids if remembered.get(d) is True}
    fresh = sorted((d for d in ids if d not in remembered), key=lambda d: rank(config.sample_seed, d))
    chosen = set(fresh[:max(0, target - len(kept))])
    return Draw(frozenset(kept | chosen), {d: d in chosen for d in fresh})


def draw_for_run(config: RunConfig, journal: Journal | None, doc_ids: Iterable[str], *,
                 remember: bool) -> frozenset[str]:
    """The draw with the journal's remembered decisions; `remember`: keep the new ones (a run; a dry run
    previews the draw and keeps nothing)."""
    if config.samples < 2:
        return frozenset()
    ids = list(doc_ids)
    where = scope(config)
    remembered = journal.sample_decisions(where, ids) if journal is not None else {}
    result = draw(config, ids, remembered)
    if remember and journal is not None and result.new:
        journal.record_sample_decisions(where, result.new)
    return result.sampled
