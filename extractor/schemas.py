"""Document schemas: a pydantic model, its instructions and few-shot examples, found in `schemas/`.

A schema module defines `MODEL` (a pydantic model), `INSTRUCTIONS` (str) and `EXAMPLES` (a list of
`(document_text, MODEL instance)` pairs), and optionally `DESCRIPTION`. Its name is the file stem.
Its version is a hash of the JSON schema, the instructions and the examples, recorded on every row,
so a change to any of them is visible in the results.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractor.errors import ConfigError

# Columns extractor adds to rows (table.META_DTYPES, plus the spreadsheet export's `corrected` and
# `from_labels`); a schema field may not reuse these names. Kept as plain names so listing schemas does
# not import polars; a test keeps the two in step.
META_COLUMNS = (
    "doc_id", "source_path", "content_sha256", "status", "error_type", "error_message",
    "schema_name", "schema_version", "model", "endpoint", "attempts", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cost_usd", "latency_s", "compute_s", "extracted_at", "run_id",
    "batch_id", "corrected", "from_labels", "grounded", "needs_review",
    "archived_to",
)


@dataclass(frozen=True)
class Example:
    text: str
    output: BaseModel


@dataclass(frozen=True)
class Schema:
    name: str
    model: type[BaseModel]
    instructions: str
    examples: tuple[Example, ...]
    description: str
    path: Path

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

    @property
    def field_names(self) -> list[str]:
        return list(self.model.model_fields)


def validate_field(model: type[BaseModel], name: str, value: Any, base: dict[str, Any] | None = None) -> Any:
    """Validate one field's value with the schema's own validators; returns its JSON form.

    Raises pydantic.ValidationError. `base` supplies the other fields (cross-field validators see them).
    """
    instance = model.model_construct(**{k: (base or {}).get(k) for k in model.model_fields})
    model.__pydantic_validator__.validate_assignment(instance, name, value)
    return instance.model_dump(mode="json", include={name})[name]


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
    description = getattr(module, "DESCRIPTION", None) or (model.__doc__ or "").strip().splitlines()[0:1]
    if isinstance(description, list):
        description = description[0] if description else ""
    return Schema(name=path.stem, model=model, instructions=instructions.strip(), examples=tuple(examples),
                  description=str(description), path=path)


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
