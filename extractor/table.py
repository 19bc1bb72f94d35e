"""The typed shape of a results row: polars dtypes derived from the schema's pydantic model."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import types
import typing
from typing import Any, Literal, Union

import polars as pl
from polars.datatypes import DataTypeClass
from pydantic import BaseModel

PolarsDataType = DataTypeClass | pl.DataType  # a dtype as polars hands it out: a class or an instance

STATUSES = ("ok", "failed", "skipped")
# A route's: deferred, its question did not fit under --max-cost; stopped, the run stopped before its question
ROUTE_STATUSES = (*STATUSES, "deferred", "stopped")
LIST_SEPARATOR = "; "  # a list in one cell (the sheets, and the `corrected` and `from_labels` columns)

META_DTYPES: dict[str, pl.DataType] = {
    "doc_id": pl.String(),
    "source_path": pl.String(),
    "content_sha256": pl.String(),
    "status": pl.Enum(list(STATUSES)),
    "error_type": pl.String(),
    "error_message": pl.String(),
    "schema_name": pl.String(),
    "schema_version": pl.String(),
    "model": pl.String(),
    "endpoint": pl.String(),
    "attempts": pl.Int32(),
    "prompt_tokens": pl.Int64(),
    "completion_tokens": pl.Int64(),
    "cached_tokens": pl.Int64(),
    "cost_usd": pl.Float64(),
    "latency_s": pl.Float64(),
    "compute_s": pl.Float64(),
    "extracted_at": pl.Datetime("us", "UTC"),
    "run_id": pl.String(),
    "batch_id": pl.String(),  # the OpenAI batch that answered, for rows collected from the Batch API
    "archived_to": pl.String(),  # where `run --archive` moved the input (its row stays in the results)
    "grounded": pl.Float64(),  # share of the copied values found in the document (extractor.values.evidence)
    "needs_review": pl.Boolean(),  # a value not found in the document, or trusted less than the threshold
    # why a row needs review besides its values' evidence: a schema's CHECKS that fail ("total_amount: net 10.00 +
    # tax 1.90 is 11.90, the total is 12.90"), a list item whose values stand far apart in the document
    "review_flags": pl.List(pl.String()),

    "chunks": pl.Int32(),  # parts the text was asked in (1: it fit the model's context); null: not sent
    "conflicts": pl.Int32(),  # fields whose chunks gave grounded answers that disagree (the row needs review)
}


def dtype_for(annotation: Any) -> pl.DataType:
    """Polars dtype for a pydantic field annotation (Optional, Annotated, Literal, list, model...)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return dtype_for(args[0])
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return dtype_for(rest[0]) if len(rest) == 1 else pl.String()
    if origin is Literal:
        if all(isinstance(a, str) for a in args):
            return pl.Enum(list(args))
        return dtype_for(type(args[0]))
    if origin in (list, tuple, set, frozenset):
        return pl.List(dtype_for(args[0]) if args else pl.String())
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return pl.Struct({name: dtype_for(f.annotation) for name, f in annotation.model_fields.items()})
        if issubclass(annotation, enum.Enum):
            return pl.Enum([str(m.value) for m in annotation])
        if issubclass(annotation, bool):
            return pl.Boolean()
        if issubclass(annotation, int):
            return pl.Int64()
        if issubclass(annotation, float | decimal.Decimal):
            # Decimal money as a number people can sum; the journal keeps the exact text the model gave.
            return pl.Float64()
        if issubclass(annotation, dt.datetime):
            return pl.Datetime("us", "UTC")
        if issubclass(annotation, dt.date):
            return pl.Date()
    return pl.String()


def row_schema(model: type[BaseModel]) -> dict[str, pl.DataType]:
    """Meta columns first (identity, status), then one typed column per schema field, then cost."""
    fields = {name: dtype_for(f.annotation) for name, f in model.model_fields.items()}
    head = ["doc_id", "source_path", "content_sha256", "status", "error_type", "error_message"]
    schema = {name: META_DTYPES[name] for name in head}
    schema.update(fields)
    schema.update({k: v for k, v in META_DTYPES.items() if k not in schema})
    return schema


def runs_schema() -> dict[str, pl.DataType]:
    """Columns of runs.parquet: one row per run, its totals."""
    return {
        "run_id": pl.String(), "started_at": pl.String(), "finished_at": pl.String(),
        "schema_name": pl.String(), "schema_version": pl.String(), "backend": pl.String(),
        "model": pl.String(), "endpoint": pl.String(), "documents": pl.Int64(), "ok": pl.Int64(),
        "failed": pl.Int64(), "skipped": pl.Int64(), "cached": pl.Int64(), "deferred": pl.Int64(),
        "prompt_tokens": pl.Int64(),
        "completion_tokens": pl.Int64(), "cached_tokens": pl.Int64(), "cost_usd": pl.Float64(),
        "embedding_tokens": pl.Int64(), "embedding_cost_usd": pl.Float64(),
        "compute_s": pl.Float64(), "requests": pl.Int64(), "transport_retries": pl.Int64(),
        "throttled": pl.Int64(), "timeouts": pl.Int64(), "lowest_concurrency": pl.Int64(), "wall_s": pl.Float64(),
        "docs_per_s": pl.Float64(), "interrupted": pl.String(), "aborted": pl.String(),
        "cost_limited": pl.String(), "submitted": pl.Int64(), "pending": pl.Int64(),
    }


OVERALL = "(overall)"  # experiments.parquet: the `field` of a variant's all-fields row


def experiments_schema() -> dict[str, pl.DataType]:
    """Columns of experiments.parquet (`extractor experiment`): one row per experiment, variant and field, plus
    one `field == OVERALL` row per variant. The per-document figures repeat on each of a variant's rows; they
    are means over the variant's labeled sample, whether its results were paid for now or reused (a reused
    result keeps the tokens and cost it was extracted with: the figures say what the variant costs)."""
    return {
        "experiment_id": pl.String(), "finished_at": pl.String(),
        "variant": pl.String(),  # the SPEC as given: "examples=similar:3", "model=gpt-4.1-mini,examples=static"
        "schema_version": pl.String(), "backend": pl.String(), "model": pl.String(), "examples": pl.String(),
        "strategy": pl.String(), "samples": pl.Int64(), "run_id": pl.String(),
        "field": pl.String(),  # a schema field; `line_items.amount`: an item field of a list of objects (matched items)
        "documents": pl.Int64(),  # labeled documents scored (for OVERALL: in the sample)
        "accuracy": pl.Float64(),  # mean per-document accuracy of the field; OVERALL: fields right / labeled fields
        "labeled_values": pl.Int64(),  # labeled field values scored (OVERALL: all of them; a list of objects:
        # each labeled item value, values.metrics.RecordScore)
        "ok": pl.Int64(), "failed": pl.Int64(),  # the sample's documents by status
        "prompt_tokens_per_doc": pl.Float64(), "completion_tokens_per_doc": pl.Float64(),
        "cached_tokens_per_doc": pl.Float64(), "requests_per_doc": pl.Float64(),
        "cost_usd_per_doc": pl.Float64(),  # null when the model has no known price
        "latency_s_per_doc": pl.Float64(),
        "spent_usd": pl.Float64(),  # what this experiment paid for the variant now (reused results cost 0)
        "agreement": pl.Float64(),  # self-consistency of the field (samples > 1), else null
        "not_found_share": pl.Float64(),  # share of the field's values not found in the document, else null
        "labeled_pool": pl.Int64(),  # labeled documents the examples could come from
        # retrieval = "embeddings": what this run's choosing of examples used a document (0 once every vector
        # is kept in the journal; a new document needs its own); not in cost_usd_per_doc
        "embedding_tokens_per_doc": pl.Float64(), "embedding_usd_per_doc": pl.Float64(),
        # a locally fine-tuned model (`extractor finetune-local`, its manifest): its file name, the documents it
        # was trained on (never scored), its training's wall and CPU seconds; null for any other variant
        "finetuned": pl.String(), "trained_documents": pl.Int64(), "training_s": pl.Float64(),
        "training_compute_s": pl.Float64(),
        "compute_s_per_doc": pl.Float64(),  # the local model server's CPU seconds a document; null for a remote one
    }


def routes_schema() -> dict[str, pl.DataType]:
    """`_routing/routes.parquet`: one row per document of a `--schema auto` run, the route it took.

    `status`: ok (routed to `schema_name`), skipped (of no known kind: `error_message` names the candidates),
    failed (the question could not be asked; asked again next run) or deferred (its question and its extraction
    did not fit under `--max-cost`; asked next run). `method`: label (a reviewer's re-route),
    keywords (the schemas' routing hints: keywords and shapes), abstained (no hint of any candidate: none),
    neighbours (labeled documents like it), model (the constrained question), with `cached` when an earlier
    run's decision for the same bytes and candidates was reused."""
    return {
        "doc_id": pl.String(), "source_path": pl.String(), "content_sha256": pl.String(),
        "status": pl.Enum(list(ROUTE_STATUSES)), "schema_name": pl.String(), "method": pl.String(),
        "confidence": pl.Float64(), "error_message": pl.String(), "candidates": pl.List(pl.String()),
        "candidates_version": pl.String(), "previous_schema": pl.String(), "cached": pl.Boolean(),
        "prompt_tokens": pl.Int64(), "completion_tokens": pl.Int64(), "cost_usd": pl.Float64(),
        "latency_s": pl.Float64(), "model": pl.String(), "run_id": pl.String(),
        "routed_at": pl.Datetime("us", "UTC"),
    }


# -- child tables: a list of objects as rows of its own ------------------------------------------------------------

ITEM_INDEX = "index"  # a child table's column of the item's place in its document's list (0-based, as `items[3]`)
# The two columns that say which document's which item a child row is (schemas.CHILD_KEYS, which checks a schema's
# item fields do not reuse them, spells them again without polars; a test keeps the two in step).
CHILD_KEYS = ("doc_id", ITEM_INDEX)


def _item_model(annotation: Any) -> type[BaseModel] | None:
    """The item model of `list[Model]` (inside Optional/Annotated), else None."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _item_model(args[0])
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _item_model(rest[0]) if len(rest) == 1 else None
    if origin in (list, tuple, set, frozenset) and args:
        item = args[0]
        while typing.get_origin(item) is typing.Annotated:
            item = typing.get_args(item)[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
    return None


def child_fields(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Field -> item model of every `list[BaseModel]` field of a schema: each is a child table of its own
    (`line_items` -> line_items.parquet, a `line_items` sheet), in the schema's field order."""
    return {name: item for name, f in model.model_fields.items() if (item := _item_model(f.annotation)) is not None}


def child_schema(item: type[BaseModel]) -> dict[str, pl.DataType]:
    """Columns of a child table: `doc_id`, `index`, then one typed column per item field (nested as in the
    parent: an object stays a Struct, a list a List)."""
    return {"doc_id": pl.String(), ITEM_INDEX: pl.Int64(),
            **{name: dtype_for(f.annotation) for name, f in item.model_fields.items()}}


def child_frame(results: pl.DataFrame, name: str, item: type[BaseModel]) -> pl.DataFrame:
    """One row per item of the `name` list of each results row (`row_schema` columns), in document then list
    order; a row with no items (failed, skipped, or an empty list) has none."""
    schema = child_schema(item)
    if results.is_empty():
        return pl.DataFrame(schema=schema)
    items = (results.select("doc_id", pl.col(name).alias("_item"))
             .filter(pl.col("_item").list.len() > 0)
             .with_columns(pl.int_ranges(pl.col("_item").list.len(), dtype=pl.Int64).alias(ITEM_INDEX))
             .explode("_item", ITEM_INDEX))
    fields = [pl.col("_item").struct.field(f).alias(f) for f in item.model_fields]
    return items.select("doc_id", ITEM_INDEX, *fields).cast(schema)  # type: ignore[arg-type]
