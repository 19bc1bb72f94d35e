"""USD cost of tokens: the genai-prices table, with per-model overrides for self-hosted models."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from extractor.config import ModelPrice

log = logging.getLogger("extractor.pricing")


class Pricer:
    """Prices one model's usage. Unknown model: cost is None and one warning is logged, once."""

    def __init__(self, model: str, *, base_url: str | None, overrides: Mapping[str, ModelPrice],
                 free: bool = False) -> None:
        self.model = model
        self._base_url = base_url
        self._override = overrides.get(model)
        self._free = free
        self.warning: str | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> float | None:
        if self._free:
            return 0.0
        if self._override is not None:
            p = self._override
            cached_rate = p.cached_input_per_mtok if p.cached_input_per_mtok is not None else p.input_per_mtok
            return ((prompt_tokens - cached_tokens) * p.input_per_mtok + cached_tokens * cached_rate
                    + completion_tokens * p.output_per_mtok) / 1e6
        if self.warning is not None:
            return None
        from genai_prices import Usage, calc_price

        usage = Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                      cache_read_tokens=cached_tokens or None)
        attempts: list[dict] = [{"provider_api_url": self._base_url}] if self._base_url else []
        attempts.append({})  # provider unknown to the table (self-hosted): match on the model name alone
        for kwargs in attempts:
            try:
                return float(calc_price(usage, self.model, **kwargs).total_price)
            except LookupError:
                continue
        self.warning = (f"no price known for model {self.model!r}: cost_usd is left empty; "
                        f"set [prices.{self.model!r}] in the config file to price it")
        log.warning(self.warning)
        return None
