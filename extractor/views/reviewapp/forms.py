"""What a person can type for each field of a schema: an input kind read from the field's annotation, and
what was typed turned into the value the schema's own validators then check.

Kinds: `text`, `number`, `integer`, `date`, `datetime`, `choice` (a Literal, an Enum, a bool: `choices` are
the JSON values), `list` (typed one item per line, or separated by `;`), `object` (a nested model, field by
field) and `json` (anything else, typed as JSON)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from extractor.store import Label


@dataclass(frozen=True)
class FieldInput:
    """How one field (or a nested field, or a list's items) is typed in."""

    name: str
    kind: str
    description: str | None = None
    required: bool = False
    nullable: bool = True
    choices: tuple[Any, ...] = ()  # JSON values, for `choice`
    item: FieldInput | None = None  # for `list`: its items
    fields: tuple[FieldInput, ...] = field(default_factory=tuple)  # for `object`: its fields

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "description": self.description,
                               "required": self.required, "nullable": self.nullable}
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        if self.item is not None:
            out["item"] = self.item.as_dict()
        if self.fields:
            out["fields"] = [f.as_dict() for f in self.fields]
        return out


def inputs_of(model: type[BaseModel]) -> dict[str, FieldInput]:
    """The input of each field of a model, in the schema's order."""
    return {name: _from_info(name, info) for name, info in model.model_fields.items()}


def _from_info(name: str, info: FieldInfo) -> FieldInput:
    spec = input_for(name, info.annotation)
    return FieldInput(name=name, kind=spec.kind, description=info.description, required=info.is_required(),
                      nullable=spec.nullable, choices=spec.choices, item=spec.item, fields=spec.fields)


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def input_for(name: str, annotation: Any) -> FieldInput:
    """The input for a value of this annotation (Optional: `nullable`)."""
    annotation = _unwrap(annotation)
    nullable = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        kept = [a for a in args if a is not type(None)]
        nullable = len(kept) < len(args)
        if len(kept) != 1:
            return FieldInput(name, "json", nullable=nullable)
        annotation = _unwrap(kept[0])
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return FieldInput(name, "choice", nullable=nullable, choices=typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return FieldInput(name, "choice", nullable=nullable, choices=tuple(m.value for m in annotation))
    if annotation is bool:
        return FieldInput(name, "choice", nullable=nullable, choices=(True, False))
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        items = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        item = input_for(name, items[0]) if len(items) == 1 else FieldInput(name, "text")
        if item.kind in ("list", "object", "json"):  # a list of objects or lists: typed as JSON
            return FieldInput(name, "json", nullable=nullable)
        return FieldInput(name, "list", nullable=nullable, item=item)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        subs = tuple(_from_info(n, i) for n, i in annotation.model_fields.items())
        if any(s.kind in ("object", "json") for s in subs):
            return FieldInput(name, "json", nullable=nullable)
        return FieldInput(name, "object", nullable=nullable, fields=subs)
    simple = {int: "integer", float: "number", decimal.Decimal: "number", dt.datetime: "datetime",
              dt.date: "date", str: "text"}
    for kind_type, kind in simple.items():  # datetime before date: a datetime is a date
        if isinstance(annotation, type) and issubclass(annotation, kind_type):
            return FieldInput(name, kind, nullable=nullable)
    return FieldInput(name, "json", nullable=nullable)


def from_input(spec: FieldInput, raw: Any) -> Any:
    """What was typed as the value to validate: blank is no value (null), a list's text is split into its
    items (lines, or `;`), an object's fields each by their own input, JSON text parsed. Anything else is
    passed on as given: the schema's validators decide."""
    if isinstance(raw, str) and not raw.strip():
        return [] if spec.kind == "list" else None
    if spec.kind == "list" and isinstance(raw, str):
        parts = [p.strip() for line in raw.splitlines() for p in line.split(";")]
        return [from_input(spec.item, p) if spec.item is not None else p for p in parts if p]
    if spec.kind == "object" and isinstance(raw, dict):
        subs = {f.name: f for f in spec.fields}
        out = {k: from_input(subs[k], v) if k in subs else v for k, v in raw.items()}
        return None if spec.nullable and out and all(v is None for v in out.values()) else out
    if spec.kind == "json" and isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if spec.kind in ("number", "integer") and isinstance(raw, str):
        return raw.strip()
    return raw


def version(value: Any, label: Label | None) -> str:
    """What a field showed when a page loaded it: the model's value and a person's label, if any. A form
    sends it back; a different one now means a newer run or another person changed the field since."""
    shown = [value, label is not None, label.value if label is not None else None]
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()[:16]
