"""USD cost of tokens: the genai-prices table, with per-model overrides for self-hosted models."""

from __future__ import annotations

import importlib.resources
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from extractor.config import ModelPrice

log = logging.getLogger("extractor.pricing")


class Pricer:
    """Prices one model's usage. Unknown model: cost is None and one warning is logged, once."""

    def __init__(self, model: str, *, base_url: str | None, overrides: Mapping[str, ModelPrice],
                 free: bool = False, discount: float = 1.0) -> None:
        self.model = model
        self.discount = discount  # share of the list price billed (the Batch API bills half)
        self._base_url = base_url
        self._override = overrides.get(model)
        self._free = free
        self.warning: str | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> float | None:
        full = self._list_cost(prompt_tokens, completion_tokens, cached_tokens)
        return None if full is None else full * self.discount

    def _list_cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> float | None:
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


DEFAULT_FINETUNE_TARGET = "gpt-4.1-nano-2025-04-14"


@dataclass(frozen=True)
class FinetunePrice:
    """USD per million tokens for training a model and for running the fine-tuned result."""

    model: str
    training_per_mtok: float
    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class FinetunePriceTable:
    as_of: str
    source: str
    batch_discount: float
    models: dict[str, FinetunePrice]

    def get(self, model: str) -> FinetunePrice:
        if model not in self.models:
            known = ", ".join(sorted(self.models))
            raise KeyError(f"no fine-tuning price for {model!r} (known: {known}); add [finetune_prices.{model!r}]")
        return self.models[model]


def finetune_prices(overrides: Mapping[str, Mapping[str, float]] | None = None) -> FinetunePriceTable:
    """The dated table shipped in extractor/data/finetune_prices.toml, with config overrides applied."""
    raw = tomllib.loads(importlib.resources.files("extractor.data").joinpath("finetune_prices.toml").read_text())
    models = {name: FinetunePrice(model=name, **spec) for name, spec in raw["models"].items()}
    for name, spec in (overrides or {}).items():
        base = models.get(name)
        merged = {**(base.__dict__ if base else {}), **spec, "model": name}
        models[name] = FinetunePrice(**merged)
    return FinetunePriceTable(as_of=raw["as_of"], source=raw["source"], batch_discount=raw["batch_discount"],
                              models=models)
