"""`--max-cost`: how much one run may spend, enforced before each document is sent.

What is spent so far, what is in flight and what the next document is expected to cost must fit
under the limit; documents that do not fit are left for the next run. Expected costs come from the
document's characters, so even the first requests (sent before any cost is known) are reserved.
"""

from __future__ import annotations

from extractor.llm.pricing import Pricer
from extractor.llm.tokens import TokenRate


class Budget:
    """`max_cost_usd` for one run: a document is sent only if what is spent, what is in flight and what
    this document is expected to cost fit under the limit.

    A document's expected cost is priced from its prompt characters, with tokens per character and
    completion tokens calibrated on earlier runs of the model (`llm.tokens.TokenRate`; None: its defaults,
    4 characters a token and 200 completion tokens), then scaled by how this run's actual costs compared
    with their estimates.
    """

    def __init__(self, limit: float | None, pricer: Pricer, rate: TokenRate | None = None) -> None:
        self.limit = limit
        self._pricer = pricer
        self.rate = rate or TokenRate()
        self.spent = 0.0
        self._in_flight = 0.0  # estimated cost of documents sent and not yet settled (scaled when compared)
        self._estimated = 0.0  # estimates of the settled paid documents

    @property
    def scale(self) -> float:
        """This run's actual cost over its estimates so far (1 until a paid document settled)."""
        return self.spent / self._estimated if self._estimated > 0 and self.spent > 0 else 1.0

    def admit(self, prompt_chars: int, requests: int = 1, completion_tokens: int | None = None
              ) -> tuple[float, float] | None:
        """(estimate, expected cost) if the document may be sent now, reserving it; else None. `requests`: the
        chunks a long document is asked in, each with its answer (`prompt_chars` counts all of them);
        `completion_tokens`: an answer's tokens when they are known to differ from a document's (a routing
        question's)."""
        if self.limit is None:
            return 0.0, 0.0
        completion = (round(self.rate.completion) if completion_tokens is None else completion_tokens) * requests
        estimate = self._pricer.cost(self.rate.prompt_tokens(prompt_chars), completion, 0) or 0.0
        expected = estimate * self.scale
        # What is in flight at today's scale, not the one it was admitted at: the first documents go out before
        # any cost is known, and an estimate below the real cost (the schema's answer is longer than guessed)
        # would otherwise let the run overspend by what they were underestimated.
        if self.spent + self._in_flight * self.scale + expected > self.limit:
            return None
        self._in_flight += estimate
        return estimate, expected

    def settle(self, reservation: tuple[float, float], cost: float | None) -> None:
        estimate, _ = reservation
        self._in_flight -= estimate
        if cost:  # a document that billed nothing (a 400, unreadable) says nothing about the scale
            self.spent += cost
            self._estimated += estimate
