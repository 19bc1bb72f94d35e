"""USD cost of tokens: the genai-prices table, with per-model overrides for self-hosted models."""

from __future__ import annotations

import importlib.resources
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from extractor.config import ModelPrice, RunConfig

log = logging.getLogger("extractor.llm.pricing")


MTOK = 1_000_000


def list_cost(model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int, *,
              base_url: str | None = None, overrides: Mapping[str, ModelPrice] | None = None) -> float | None:
    """USD of one usage at list price; None when no price is known for `model`.

    The model's override (the config's [prices]) wins, its cached input billed at the input rate unless it
    has a cached price. Otherwise genai-prices, matched on the provider of `base_url` first and then, for a
    self-hosted or proxy URL the table does not know, on the model name alone, then as an OpenAI model (the
    table finds `text-embedding-3-small` only so).
    """
    override = overrides.get(model) if overrides else None
    if override is not None:
        p = override
        cached_rate = p.cached_input_per_mtok if p.cached_input_per_mtok is not None else p.input_per_mtok
        return ((prompt_tokens - cached_tokens) * p.input_per_mtok + cached_tokens * cached_rate
                + completion_tokens * p.output_per_mtok) / MTOK
    from genai_prices import Usage, calc_price

    usage = Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                  cache_read_tokens=cached_tokens or None)
    attempts: list[dict[str, str]] = [{"provider_api_url": base_url}] if base_url else []
    attempts.append({})  # provider unknown to the table (self-hosted): match on the model name alone
    attempts.append({"provider_id": "openai"})  # names the table matches only under a provider (embeddings)
    for kwargs in attempts:
        try:
            return float(calc_price(usage, model, **kwargs).total_price)  # type: ignore[call-overload]
        except LookupError:
            continue
    return None


def context_window(config: RunConfig) -> int | None:
    """Tokens the model reads at most (prompt and answer): the embedded server's context, else genai-prices'
    maintained table (matched as `list_cost` matches prices); None when unknown (a self-hosted model). The setting
    `context_tokens` wins over both."""
    if config.context_tokens is not None:
        return config.context_tokens
    if config.resolved_backend == "embedded":
        from extractor.llm.embedded import CONTEXT_TOKENS

        return CONTEXT_TOKENS
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    attempts: list[tuple[str | None, str | None]] = [(None, config.base_url)] if config.base_url else []
    attempts += [(None, None), ("openai", None)]
    for provider_id, url in attempts:
        try:
            _, model = snapshot.find_provider_model(config.resolved_model, None, provider_id, url)
        except LookupError:
            continue
        return int(model.context_window) if model.context_window else None
    return None


def unit_prices(model: str, base_url: str | None = None,
                overrides: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """USD per million input, cached-input and output tokens of `model` (cached input always set); None when
    no price is known. `list_cost` of a million tokens of each kind, so overrides, provider matching and "no
    cache price means the input price" are exactly those of the cost recorded on each row."""
    per = {kind: list_cost(model, prompt, completion, cached, base_url=base_url, overrides=overrides)
           for kind, (prompt, completion, cached) in
           {"input": (MTOK, 0, 0), "cached": (MTOK, 0, MTOK), "output": (0, MTOK, 0)}.items()}
    if per["input"] is None or per["cached"] is None or per["output"] is None:
        return None
    return ModelPrice(input_per_mtok=per["input"], output_per_mtok=per["output"],
                      cached_input_per_mtok=per["cached"])


def has_batch_api(model: str, backend: str | None = "openai", endpoint: str | None = None) -> bool:
    """Whether `model` can be run through OpenAI's Batch API: served by OpenAI (api.openai.com, or a model OpenAI
    sells, genai-prices tells which, behind a compatible URL); never the embedded or another local model."""
    if backend == "embedded" or not model:
        return False
    if endpoint == "api.openai.com":
        return True
    from genai_prices import Usage, calc_price

    try:
        calc_price(Usage(input_tokens=1), model, provider_id="openai")
    except LookupError:
        return False
    return True


def flat_rates(model: str, base_url: str | None = None,
               overrides: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """`unit_prices` where a usage's cost is linear in its tokens whatever its size and time: an override, or a
    genai-prices entry (matched as `list_cost` matches it) with one unconditional price (not a list of dated or
    off-peak ones) and no tiers; its variants (service tiers) apply only under a price context, which `list_cost`
    never gives. None where each usage must be priced in full (or no price is known)."""
    if not (overrides and model in overrides):
        from genai_prices import data_snapshot
        from genai_prices.types import ModelPrice as TablePrice
        from genai_prices.types import TieredPrices

        snapshot = data_snapshot.get_snapshot()
        attempts: list[tuple[str | None, str | None]] = [(None, base_url)] if base_url else []
        attempts += [(None, None), ("openai", None)]
        for provider_id, url in attempts:
            try:
                _, info = snapshot.find_provider_model(model, None, provider_id, url)
            except LookupError:
                continue
            prices = info.prices
            if (not isinstance(prices, TablePrice)
                    or any(isinstance(v, TieredPrices) for v in vars(prices).values())):
                return None
            break
        else:
            return None
    return unit_prices(model, base_url, overrides)


class Pricer:
    """Prices one model's usage. Unknown model: cost is None and one warning is logged, once.

    A flat price (`flat_rates`) is looked up once per pricer: genai-prices' `calc_price` took ~0.5 ms a usage
    (its unit registry is walked on every call), paid on every document of a run."""

    def __init__(self, model: str, *, base_url: str | None, overrides: Mapping[str, ModelPrice],
                 free: bool = False, discount: float = 1.0) -> None:
        self.model = model
        self.discount = discount  # share of the list price billed (the Batch API bills half)
        self._base_url = base_url
        self._overrides = overrides
        self._free = free
        self.warning: str | None = None
        self._flat: tuple[ModelPrice | None] | None = None  # looked up on the first usage priced

    @classmethod
    def for_config(cls, config: RunConfig) -> Pricer:
        """The pricer of a run: its model, its [prices] overrides, free when embedded, the Batch API's
        discount (from the dated table) with --batch."""
        return cls(config.resolved_model, base_url=config.base_url, overrides=config.prices,
                   free=config.resolved_backend == "embedded",
                   discount=finetune_prices().batch_discount if config.batch else 1.0)

    @property
    def known(self) -> bool:
        """Whether a price is known for the model (without logging the unknown-price warning)."""
        return self._free or list_cost(self.model, 1, 1, 0, base_url=self._base_url,
                                       overrides=self._overrides) is not None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> float | None:
        full = self._list_cost(prompt_tokens, completion_tokens, cached_tokens)
        return None if full is None else full * self.discount

    def _list_cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> float | None:
        if self._free:
            return 0.0
        if self.warning is not None:  # looked up before and not found: the table will not change
            return None
        if self._flat is None:
            self._flat = (flat_rates(self.model, self._base_url, self._overrides),)
        if (rates := self._flat[0]) is not None:
            cached_rate = rates.cached_input_per_mtok
            assert cached_rate is not None  # unit_prices always sets it
            return ((prompt_tokens - cached_tokens) * rates.input_per_mtok + cached_tokens * cached_rate
                    + completion_tokens * rates.output_per_mtok) / MTOK
        cost = list_cost(self.model, prompt_tokens, completion_tokens, cached_tokens,
                         base_url=self._base_url, overrides=self._overrides)
        if cost is None:
            self.warning = (f"no price known for model {self.model!r}: cost_usd is left empty; "
                            f"set [prices.{self.model!r}] in the config file to price it")
            log.warning(self.warning)
        return cost


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
