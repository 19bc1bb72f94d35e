"""Dry run: what a run would send, and what it would cost, without sending anything.

Token counts are estimated from characters. No tokenizer can be downloaded offline, so the ratio
is calibrated from what earlier runs of the same model actually reported (prompt tokens per prompt
character, mean completion tokens); with no history it falls back to 4 characters per token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from extractor.budget import DEFAULT_COMPLETION_TOKENS, DEFAULT_TOKENS_PER_CHAR, Budget
from extractor.config import RunConfig
from extractor.documents import DocumentReader, discover, sha256_file
from extractor.errors import ConfigError, DocumentError
from extractor.pricing import Pricer
from extractor.prompts import system_prompt
from extractor.schemas import load_schema
from extractor.store import Journal


@dataclass(frozen=True)
class PlannedDocument:
    doc_id: str
    reason: str  # new | changed | retry | settings changed | forced
    prompt_chars: int
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Plan:
    documents: int
    to_send: list[PlannedDocument] = field(default_factory=list)
    cached: int = 0
    not_sendable: list[tuple[str, str, str]] = field(default_factory=list)  # doc_id, status, message
    tokens_per_char: float = DEFAULT_TOKENS_PER_CHAR
    calibration: str = ""
    model: str = ""
    cost_usd: float | None = 0.0
    max_cost_usd: float | None = None
    fit_under_limit: int | None = None  # documents, in order, whose estimated cost fits under max_cost_usd

    @property
    def prompt_tokens(self) -> int:
        return sum(d.prompt_tokens for d in self.to_send)

    @property
    def completion_tokens(self) -> int:
        return sum(d.completion_tokens for d in self.to_send)


def plan(config: RunConfig) -> Plan:
    return asyncio.run(plan_async(config))


async def plan_async(config: RunConfig) -> Plan:
    schema = load_schema(config.schemas_dir, config.schema)
    try:
        files = discover(config.input_dir)
    except DocumentError as exc:
        raise ConfigError(str(exc)) from None
    system = system_prompt(schema)
    journal = Journal(config.schema_output_dir / "journal.sqlite3")
    reader = DocumentReader(max_chars=config.max_chars, timeout_s=config.parse_timeout_s)
    result = Plan(documents=len(files), model=config.resolved_model)
    observed = journal.tokens_per_char(config.resolved_model)
    if observed:
        result.tokens_per_char, completion, n = observed
        result.calibration = (f"calibrated on {n} earlier document(s) of {config.resolved_model}: "
                              f"{1 / result.tokens_per_char:.2f} characters per prompt token")
    else:
        completion = DEFAULT_COMPLETION_TOKENS
        result.calibration = (f"no earlier run of {config.resolved_model}: assuming 4 characters per token "
                              f"and {DEFAULT_COMPLETION_TOKENS:.0f} completion tokens")
    pricer = Pricer.for_config(config)
    try:
        for src in files:
            sha = await asyncio.to_thread(sha256_file, src.path)
            key = config.document_key(src.doc_id, sha, schema.version)
            if not config.force and journal.cached_row(key) is not None:
                result.cached += 1
                continue
            try:
                doc = await reader.read(src)
            except DocumentError as exc:
                result.not_sendable.append((src.doc_id, exc.status, str(exc)))
                continue
            seen = journal.last_seen(src.doc_id)
            if config.force:
                reason = "forced"
            elif seen is None:
                reason = "new"
            elif seen[0] != sha:
                reason = "changed"
            elif seen[1] != "ok":
                reason = "retry"
            else:
                reason = "settings changed"
            chars = len(system) + len(doc.text)
            result.to_send.append(PlannedDocument(
                doc_id=src.doc_id, reason=reason, prompt_chars=chars,
                prompt_tokens=round(chars * result.tokens_per_char), completion_tokens=round(completion)))
    finally:
        reader.close()
        journal.close()
    result.cost_usd = pricer.cost(result.prompt_tokens, result.completion_tokens, 0)
    if config.max_cost_usd is not None and result.cost_usd is not None:
        # The run's own admission rule, with every document in flight at once (nothing settles here).
        budget = Budget(config.max_cost_usd, pricer, observed)
        result.max_cost_usd = config.max_cost_usd
        result.fit_under_limit = sum(budget.admit(d.prompt_chars) is not None for d in result.to_send)
    return result
