"""Validation of raw config data into records, with one-line errors naming file, key path and value."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from training.common.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)
Sourcer = Callable[[tuple[str | int, ...]], str]


def validate(model: type[Model], data: Any, source: str | Sourcer) -> Model:
    """Validate `data` as `model`; errors name where the key came from (`source`, or `source(loc)`)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        where = source if callable(source) else (lambda _loc: source)
        raise ConfigError("; ".join(_describe(model, item, where) for item in error.errors())) from None


def _describe(model: type[BaseModel], item: Mapping[str, Any], where: Sourcer) -> str:
    loc = tuple(part for part in item["loc"] if not _is_union_tag(part))
    path = ".".join(str(part) for part in loc)
    prefix = f"{where(loc)}: {path}" if path else where(loc)
    if item["type"] == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{prefix}: unknown key; {hint}valid keys: {', '.join(valid)}"
    if item["type"] == "missing":
        return f"{prefix}: required key is missing"
    message = item["msg"].replace("Input should be", "expected").replace("Value error, ", "")
    received = item.get("input")
    return f"{prefix}: {message}" if isinstance(received, dict) else f"{prefix}: {message}, got {received!r}"


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and part in ("choice", "int", "uniform", "loguniform", "fixed")


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the record found at `loc` inside `model` (best effort through containers)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _record_type(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _record_type(annotation: Any) -> Any:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def apply_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set `data[a][b] = value` for `key` "a.b", creating nested mappings as needed."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{source}: {key!r} is not a dotted key such as training.learning_rate")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key!r}: {part!r} holds a value, not a section")
        node = child
    node[parts[-1]] = value


def read_json_file(path: str | os.PathLike[str], what: str) -> Any:
    """Parse a JSON file; a missing or unreadable one is a `ConfigError` naming it as `what` it should be."""
    file = Path(path)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{file}: not a readable {what} ({error})") from error


def read_record(model: type[Model], path: str | os.PathLike[str], what: str) -> Model:
    """A JSON record file read as `model`; any fault (missing, unreadable, invalid) is one `ConfigError` naming it."""
    return validate(model, read_json_file(path, what), str(path))
