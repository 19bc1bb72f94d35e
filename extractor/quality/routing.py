"""Routing accuracy (`extractor eval --routing`): the routes `--schema auto` decided against what people say the
documents are.

The truth of a document's kind: a reviewer's re-route (`extractor route`, the routing store; "none" for a document
of no known kind), else the schema whose labels store holds labels for it (a labeled letter is a letter). What is
scored is the newest route the signals decided (keywords, abstained, neighbours, the model), never the re-route itself,
which always agrees with its label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from extractor.config import RunConfig
from extractor.schemas import NONE_OF_THEM, load_candidates
from extractor.store import Labels, Routes
from extractor.values.metrics import wilson


@dataclass
class RoutingReport:
    labeled: int = 0  # documents whose kind a person or a labels store says
    scored: int = 0  # of those, with a route the signals decided
    right: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (truth, routed) -> documents
    by_method: dict[str, list[int]] = field(default_factory=dict)  # method -> [right, scored]
    unscored: list[tuple[str, str]] = field(default_factory=list)  # (doc_id, why)

    @property
    def accuracy(self) -> float | None:
        return self.right / self.scored if self.scored else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the accuracy."""
        return wilson(self.right / self.scored, self.scored) if self.scored else None

    def as_dict(self) -> dict[str, Any]:
        return {"labeled": self.labeled, "scored": self.scored, "right": self.right, "accuracy": self.accuracy,
                "interval": self.interval, "by_method": self.by_method,
                "confusion": [{"truth": t, "routed": r, "documents": n}
                              for (t, r), n in sorted(self.confusion.items())],
                "unscored": [list(u) for u in self.unscored]}


def routing_truth(config: RunConfig, store: Routes | None) -> dict[str, str]:
    """doc_id -> its kind (a schema name or "none"): labels stores first, a person's re-route over them."""
    truth: dict[str, str] = {}
    for schema in load_candidates(config.schemas_dir, config.schemas):
        path = config.for_schema(schema.name).layout.journal
        if not path.is_file():
            continue
        labels = Labels.open_readonly(path)
        try:
            truth.update(dict.fromkeys(labels.latest(), schema.name))
        finally:
            labels.close()
    if store is not None:
        truth.update({doc_id: name for doc_id, (name, _, _) in store.reroutes().items()})
    return truth


def evaluate_routing(config: RunConfig) -> RoutingReport:
    report = RoutingReport()
    store = Routes.open_readonly(config.routing_layout.store)
    try:
        truth = routing_truth(config, store)
        report.labeled = len(truth)
        for doc_id, kind in sorted(truth.items()):
            route = store.automatic_route(doc_id) if store is not None else None
            if route is None or route.get("status") == "failed":
                report.unscored.append((doc_id, "no route decided by the signals yet (run --schema auto)"))
                continue
            routed = route.get("schema_name") or NONE_OF_THEM
            report.scored += 1
            report.right += routed == kind
            report.confusion[(kind, routed)] += 1
            tally = report.by_method.setdefault(str(route.get("method")), [0, 0])
            tally[0] += routed == kind
            tally[1] += 1
    finally:
        if store is not None:
            store.close()
    return report
