"""Document schemas: a pydantic model, its instructions and few-shot examples, found in `schemas/`.

A schema module defines `MODEL` (a pydantic model), `INSTRUCTIONS` (str) and `EXAMPLES` (a list of
`(document_text, MODEL instance)` pairs), and optionally `DESCRIPTION` (one line: what kind of document it is),
`KEYWORDS` (words and phrases typical of that kind: routing hints for `--schema auto`, `extraction.routing`),
`SHAPES` (names of the shapes of that kind, in any language: `extraction.shapes`, e.g. a letter's "salutation") and
`CHECKS`: functions of a validated MODEL instance that yield `(field, message)` for each rule its values break (an
invoice's lines that do not add up to its net); a broken rule flags the row for review (`review_flags`,
`needs_review`), it never fails it. Its name is the file stem.
Its version is a hash of the JSON schema, the instructions and the examples, recorded on every row,
so a change to any of them is visible in the results.

Each field's kind (`FieldKind`: text, name, email, phone, currency, number, date, choice, bool or a nested
object, and whether it is a list) is decided here once per model, from its type and name, or from the
field's own `json_schema_extra={"x-kind": ...}`. Comparing values (`values.metrics`), grounding them
(`values.evidence`) and asking for them field by field (`extraction.fields`) all read it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import hashlib
import importlib.util
import json
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel

from extractor.errors import ConfigError
from extractor.layout import TAKEN_STEMS

# Columns extractor adds to rows (table.META_DTYPES, plus the spreadsheet export's `corrected` and
# `from_labels`); a schema field may not reuse these names. Kept as plain names so listing schemas does
# not import polars; a test keeps the two in step.
META_COLUMNS = (
    "doc_id", "source_path", "content_sha256", "status", "error_type", "error_message",
    "schema_name", "schema_version", "model", "endpoint", "attempts", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cost_usd", "latency_s", "compute_s", "extracted_at", "run_id",
    "batch_id", "corrected", "from_labels", "grounded", "needs_review", "review_flags",
    "archived_to", "chunks", "conflicts",
)
# The key columns of a child table (table.CHILD_KEYS): an item field of a list of objects may not reuse them.
CHILD_KEYS = ("doc_id", "index")


@dataclass(frozen=True)
class Example:
    text: str
    output: BaseModel


Check = Callable[[Any], Iterable[tuple[str, str]]]  # a validated MODEL -> (field, message) per broken rule


@dataclass(frozen=True)
class Schema:
    name: str
    model: type[BaseModel]
    instructions: str
    examples: tuple[Example, ...]
    description: str
    path: Path
    checks: tuple[Check, ...] = ()  # the module's CHECKS (see the module docstring)
    keywords: tuple[str, ...] = ()  # routing hints (KEYWORDS): not part of the version, they route, not extract
    shapes: tuple[str, ...] = ()  # routing hints (SHAPES): names of `extraction.shapes` detectors, as keywords

    @property
    def json_schema(self) -> dict:
        return self.model.model_json_schema()

    @functools.cached_property
    def version(self) -> str:
        payload = {
            "json_schema": self.json_schema,
            "instructions": self.instructions,
            "examples": [{"text": e.text, "output": e.output.model_dump(mode="json")} for e in self.examples],
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def flags(self, values: dict[str, Any]) -> list[str]:
        """What the schema's CHECKS say of a result's values (JSON form, as a row holds them): one
        "field: message" per broken rule, none when every rule holds or the schema declares none. Raises
        pydantic.ValidationError where the values no longer validate, and whatever a check raises."""
        if not self.checks:
            return []
        instance = self.model.model_validate({k: values.get(k) for k in self.model.model_fields if k in values})
        return [f"{field}: {message}" for check in self.checks for field, message in check(instance)]

    @property
    def field_names(self) -> list[str]:
        return list(self.model.model_fields)

    @property
    def kinds(self) -> dict[str, FieldKind]:
        """Every field's kind by dotted path (`salary`, `salary.min`), nested models' fields included."""
        return kind_paths(self.model)


def validate_field(model: type[BaseModel], name: str, value: Any, base: dict[str, Any] | None = None) -> Any:
    """Validate one field's value with the schema's own validators; returns its JSON form.

    Raises pydantic.ValidationError. `base` supplies the other fields (cross-field validators see them).
    """
    instance = model.model_construct(**{k: (base or {}).get(k) for k in model.model_fields})
    model.__pydantic_validator__.validate_assignment(instance, name, value)
    return instance.model_dump(mode="json", include={name})[name]


# -- what each field is ---------------------------------------------------------------------------------------

KIND_MARK = "x-kind"  # json_schema_extra={"x-kind": "phone"}: the field's kind, where its type and name mislead
DERIVED_MARK = "x-evidence"  # json_schema_extra={"x-evidence": "derived"}: computed or classified, not copied
VALUE_KINDS = ("text", "name", "email", "phone", "currency", "number", "date")  # what an x-kind may say
KINDS = (*VALUE_KINDS, "choice", "bool", "object")
# A text field whose name contains one of these is a name (compared blind to punctuation).
_NAME_HINTS = ("name", "company", "companies", "location", "title", "role", "college", "degree")


@dataclass(frozen=True)
class FieldKind:
    """What one field of a schema is: the one answer every part of extractor reads (see the module docstring).

    `kind` is one of KINDS; a list's is its items' (`skills`: text, is_list). A nested model is `object`, its
    own fields have kinds of their own (`field_kinds(nested)`).
    """

    name: str
    kind: str
    is_list: bool = False
    nested: type[BaseModel] | None = None  # kind "object": the nested model
    options: tuple[Any, ...] | None = None  # a Literal's or an Enum's values
    derived: bool = False  # computed or classified rather than copied: a choice, a bool, or marked x-evidence
    declared: bool = False  # the kind comes from the field's x-kind, not from its type and name


def unwrap(annotation: Any) -> Any:
    """The type inside Optional[...] and Annotated[...] (a union of several types is returned as it is)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _by_name(name: str) -> str:
    lowered = name.lower()
    if "email" in lowered:
        return "email"
    if "phone" in lowered:
        return "phone"
    if lowered == "currency" or lowered.endswith("_currency"):
        return "currency"
    if any(hint in lowered for hint in _NAME_HINTS):
        return "name"
    return "text"


def _natural(name: str, annotation: Any) -> FieldKind:
    """The kind a field's type says (its name where the type is only text)."""
    annotation = unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset, Sequence):
        args = typing.get_args(annotation)
        item = _natural(name, args[0] if args else str)
        return FieldKind(name, item.kind, True, item.nested, item.options)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return FieldKind(name, "object", nested=annotation)
    if origin is Literal:
        return FieldKind(name, "choice", options=typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return FieldKind(name, "choice", options=tuple(m.value for m in annotation))
    if annotation is bool:
        return FieldKind(name, "bool")
    if annotation in (int, float, decimal.Decimal):
        return FieldKind(name, "number")
    if annotation is dt.date or annotation is dt.datetime:
        return FieldKind(name, "date")
    return FieldKind(name, _by_name(name))


@functools.cache
def field_kinds(model: type[BaseModel]) -> dict[str, FieldKind]:
    """Field name -> its kind, for a pydantic model (decided once per model). Raises ConfigError for an x-kind
    that is not a kind, or one on a nested model."""
    kinds: dict[str, FieldKind] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        found = _natural(name, info.annotation)
        declared = extra.get(KIND_MARK)
        if declared is not None:
            if declared not in VALUE_KINDS:
                raise ConfigError(f"field {model.__name__}.{name}: {KIND_MARK} {declared!r} is not a kind "
                                  f"(one of {', '.join(VALUE_KINDS)})")
            if found.kind == "object":
                raise ConfigError(f"field {model.__name__}.{name}: {KIND_MARK} does not apply to a nested model "
                                  f"(give its own fields their kinds)")
            found = FieldKind(name, str(declared), found.is_list, None, found.options, declared=True)
        derived = found.kind != "object" and (found.kind in ("choice", "bool") or extra.get(DERIVED_MARK) == "derived")
        kinds[name] = FieldKind(name, found.kind, found.is_list, found.nested, found.options, derived, found.declared)
    return kinds


def kind_paths(model: type[BaseModel], prefix: str = "",
               _inside: frozenset[type] = frozenset()) -> dict[str, FieldKind]:
    """Every field's kind by dotted path, nested models' fields (in lists too) following their parent's (a model
    nested in itself is listed once)."""
    out: dict[str, FieldKind] = {}
    for name, kind in field_kinds(model).items():
        out[prefix + name] = kind
        if kind.nested is not None and kind.nested not in _inside:
            out.update(kind_paths(kind.nested, f"{prefix}{name}.", _inside | {model}))
    return out


def _import(path: Path) -> object:
    module_name = f"extractor_schema_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import schema file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pydantic resolves forward references through sys.modules
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"schema {path.name} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def load_schema_file(path: Path) -> Schema:
    module = _import(path)
    model = getattr(module, "MODEL", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"schema {path.name} must define MODEL, a pydantic BaseModel subclass")
    instructions = getattr(module, "INSTRUCTIONS", None)
    if not isinstance(instructions, str) or not instructions.strip():
        raise ConfigError(f"schema {path.name} must define INSTRUCTIONS (a non-empty string)")
    examples: list[Example] = []
    for i, item in enumerate(getattr(module, "EXAMPLES", ())):
        try:
            text, output = item
        except (TypeError, ValueError):
            raise ConfigError(f"schema {path.name}: EXAMPLES[{i}] must be (text, {model.__name__})") from None
        if not isinstance(output, model):
            raise ConfigError(f"schema {path.name}: EXAMPLES[{i}] output must be a {model.__name__}")
        examples.append(Example(text=text, output=output))
    clash = set(model.model_fields) & set(META_COLUMNS)
    if clash:
        raise ConfigError(f"schema {path.name}: field name(s) {sorted(clash)} are reserved for extractor")
    try:
        kind_paths(model)  # every field's kind, nested ones too, checked now rather than mid-run
    except ConfigError as exc:
        raise ConfigError(f"schema {path.name}: {exc}") from None
    for name, kind in field_kinds(model).items():
        if kind.is_list and kind.nested is not None:  # a child table of its own (extractor.table.child_frame)
            if name in TAKEN_STEMS:
                raise ConfigError(f"schema {path.name}: the list of objects {name!r} would be written over "
                                  f"{name}.parquet, which extractor writes itself: rename the field")
            clash = set(kind.nested.model_fields) & set(CHILD_KEYS)
            if clash:
                raise ConfigError(f"schema {path.name}: {name}'s item field(s) {sorted(clash)} clash with the "
                                  f"child table's key columns {list(CHILD_KEYS)}: rename them")
    description = getattr(module, "DESCRIPTION", None) or (model.__doc__ or "").strip().splitlines()[0:1]
    if isinstance(description, list):
        description = description[0] if description else ""
    checks = tuple(getattr(module, "CHECKS", ()))
    if not all(callable(check) for check in checks):
        raise ConfigError(f"schema {path.name}: CHECKS must be a list of functions of a {model.__name__} that "
                          f"yield (field, message) for each rule its values break")
    keywords = getattr(module, "KEYWORDS", ())
    if isinstance(keywords, str) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise ConfigError(f"schema {path.name}: KEYWORDS must be a list of words or phrases (non-empty strings)")
    shapes = getattr(module, "SHAPES", ())
    if isinstance(shapes, str) or not all(isinstance(k, str) and k.strip() for k in shapes):
        raise ConfigError(f"schema {path.name}: SHAPES must be a list of shape names (non-empty strings)")
    return Schema(name=path.stem, model=model, instructions=instructions.strip(), examples=tuple(examples),
                  description=str(description), path=path, checks=checks, keywords=tuple(k.strip() for k in keywords),
                  shapes=tuple(k.strip() for k in shapes))


def schema_files(schemas_dir: Path) -> list[Path]:
    if not schemas_dir.is_dir():
        where = f" (looked in {Path.cwd() / schemas_dir})" if not schemas_dir.is_absolute() else ""
        raise ConfigError(
            f"schemas folder {schemas_dir} does not exist{where}: run from the folder that holds your schemas/, "
            "pass --schemas DIR, or set schemas_dir in extractor.toml (a schema is a .py file with MODEL and "
            "INSTRUCTIONS; see schemas/cover_letter.py in extractor's repository)")
    return sorted(p for p in schemas_dir.glob("*.py") if not p.name.startswith(("_", ".")))


def load_schema(schemas_dir: Path, name: str) -> Schema:
    path = schemas_dir / f"{name}.py"
    if not path.is_file():
        available = ", ".join(p.stem for p in schema_files(schemas_dir)) or "none"
        raise ConfigError(f"no schema named {name!r} in {schemas_dir} (available: {available})")
    return load_schema_file(path)


def list_schemas(schemas_dir: Path) -> list[Schema]:
    return [load_schema_file(p) for p in schema_files(schemas_dir)]


AUTO = "auto"  # `--schema auto`: each document routed to the schema of its kind (extraction.routing)
NONE_OF_THEM = "none"  # the routing answer for a document of no known kind


def load_candidates(schemas_dir: Path, names: Sequence[str] = ()) -> list[Schema]:
    """The schemas `--schema auto` routes among: `names` (the `schemas` setting) or every schema in the folder."""
    if AUTO in names or NONE_OF_THEM in names:
        raise ConfigError(f"schemas: {AUTO!r} and {NONE_OF_THEM!r} are routing words, not schema names")
    found = [load_schema(schemas_dir, name) for name in names] if names else list_schemas(schemas_dir)
    if not found:
        raise ConfigError(f"--schema auto: no schema in {schemas_dir} to route documents to (a schema is a .py file "
                          "with MODEL and INSTRUCTIONS)")
    if any(s.name in (AUTO, NONE_OF_THEM) for s in found):
        raise ConfigError(f"--schema auto: a schema may not be named {AUTO!r} or {NONE_OF_THEM!r} (rename the file)")
    return found


def candidates_version(schemas: Sequence[Schema], method: str) -> str:
    """The identity of a routing decision's question: which schemas, as described and hinted, and how it was
    decided (`method`: the routing rules' own version). A change to any of them asks every document again."""
    payload = {"method": method,
               "schemas": [[s.name, s.description, list(s.keywords), list(s.shapes)] for s in schemas]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
