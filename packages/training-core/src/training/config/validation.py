"""Validation of raw config data into records, with one-line errors naming file, key path and value."""

from __future__ import annotations

import datetime
import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from training.common.errors import ConfigError
from training.common.json_files import read_json_file

Model = TypeVar("Model", bound=BaseModel)
Sourcer = Callable[[tuple[str | int, ...]], str]
_UNION_TAGS = ("choice", "int", "uniform", "loguniform", "fixed")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d)")  # `timeout_s: 2h`, `grace_period: 3m`
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_BOUNDS = {"less_than": "less than", "less_than_equal": "less than or equal to", "greater_than": "greater than",
           "greater_than_equal": "greater than or equal to"}  # pydantic's words  # fmt: skip


def validate(model: type[Model], data: Any, source: str | Sourcer) -> Model:
    """Validate `data` as `model`; errors name where the key came from (`source`, or `source(loc)`)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        where = source if callable(source) else (lambda _loc: source)
        raise ConfigError("; ".join(_describe(model, item, where) for item in error.errors())) from None


def _describe(model: type[BaseModel], item: Mapping[str, Any], where: Sourcer) -> str:
    loc = tuple(part for part in item["loc"] if part not in _UNION_TAGS)
    path = ".".join(str(part) for part in loc)
    prefix = f"{where(loc)}: {path}" if path else where(loc)
    if item["type"] == "extra_forbidden":
        return unknown_key(prefix, str(loc[-1]), _fields_at(model, item["loc"][:-1]))
    if item["type"] == "missing":
        return f"{prefix}: required key is missing"
    if item["type"] in ("union_tag_not_found", "union_tag_invalid"):  # the key naming the kind (`type: choice`)
        key = item["ctx"]["discriminator"].strip("'")
        if item["type"] == "union_tag_not_found":
            return f"{prefix}.{key}: required key is missing"
        return f"{prefix}.{key}: expected one of {item['ctx']['expected_tags']}, got {_shown(item['input'][key])}"
    message = item["msg"].replace("Input should be", "expected").replace("Value error, ", "")
    received = item.get("input")
    bound = next(iter(item.get("ctx", {}).values()), None)
    if item["type"] in _BOUNDS and isinstance(bound, int):  # pydantic prints 2**64 as a float: 18446744073709552000
        message = f"expected {_BOUNDS[item['type']]} {bound}"
    # pydantic's `a valid integer, got a number with a fractional part`: the value, then its kind (not twice `got`)
    if ", got " in message and item["type"] != "value_error":  # our validators' own messages name the value
        message, kind = message.split(", got ", 1)
        return f"{prefix}: {message}, got {_shown(received)} ({kind})"
    # `labels: [NO]` meant the word, `revision: 5e10293` (read as inf) the commit
    if isinstance(received, bool) and item["type"] in ("string_type", "literal_error"):  # `type: off` meant a word
        hint = "YAML reads unquoted yes, no, on, off as booleans: quote the word"
        return f"{prefix}: {message}, got {received!r} ({hint})"
    if item["type"] == "string_type" and isinstance(received, (int, float, datetime.date)):
        hint = f"YAML read the unquoted value as a {type(received).__name__}: quote it"
        return f"{prefix}: {message}, got {received!r} ({hint})"
    if item["type"] in ("tuple_type", "list_type") and isinstance(received, str):  # `labels: PER, LOC`: one string
        listed = ", ".join(part.strip() for part in received.split(","))
        return f"{prefix}: expected a list, got {_shown(received)} (write [{listed}])"
    if item["type"] in ("int_parsing", "float_parsing") and (duration := _DURATION.fullmatch(str(received).strip())):
        seconds = float(duration[1]) * _UNIT_SECONDS[duration[2]]
        return f"{prefix}: {message}, got {_shown(received)} (durations are numbers of seconds: write {seconds:g})"
    return f"{prefix}: {message}" if isinstance(received, dict) else f"{prefix}: {message}, got {_shown(received)}"


def _shown(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters: a damaged record's list or text would fill the one-line error; None
    as YAML's null (`seed:` with nothing after it is one)."""
    if value is None:
        return "null (a value written empty, ~ or null)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


def unknown_key(prefix: str, key: str, valid: Sequence[str]) -> str:
    """The message for an unknown `key` at `prefix`: the nearest valid key, then all of them."""
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{prefix}: unknown key; {hint}valid keys: {', '.join(valid)}"


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the record found at `loc` inside `model`: through optionals, mappings and lists of records, and
    tagged unions (`loc` holds the tag, as `search_space.lr.loguniform`); none where the record is not known."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        field = next((record.model_fields[part] for record in current if part in record.model_fields), None)
        if field is not None:
            current = _records(field.annotation)
        else:  # a mapping key or list index (the records stay), or a union's tag (`type: loguniform`: its record)
            tags = {kind: get_args(getattr(kind.model_fields.get("type"), "annotation", None)) for kind in current}
            current = [record for record in current if part in tags[record]] or current
    return list(current[0].model_fields) if len(current) == 1 else []


def _records(annotation: Any) -> list[type[BaseModel]]:
    """The records an annotation holds, however nested (`dict[str, A | B] | None` -> [A, B])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [record for argument in get_args(annotation) for record in _records(argument)]


# Schemes of the MLflow tracking URIs a run or sweep may log to (a plain path is MLflow's `file:` store).
MLFLOW_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "azureml")


def check_mlflow_uri(uri: str) -> str:
    """`uri`, checked to be an MLflow tracking URI of a known scheme or a local path (else `ValueError`)."""
    scheme, separator, rest = uri.partition(":")
    if uri.strip() and (not separator or len(scheme) == 1):  # a local folder (C:\\... on Windows)
        return uri
    if scheme.split("+")[0] not in MLFLOW_SCHEMES or not rest.strip("/"):
        raise ValueError(f"{uri!r} is not an MLflow tracking URI; expected {', '.join(MLFLOW_SCHEMES)}: or a folder")
    return uri


def apply_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set `data[a][b] = value` for `key` "a.b", creating nested mappings as needed; a mapping given for a section
    is merged into it (`training={seed: 1}` sets the seed and keeps the section's other values)."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{source}: {key!r} is not a dotted key such as training.learning_rate")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key!r}: {part!r} holds a value, not a section")
        node = child
    if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
        for name, item in value.items():
            apply_dotted(node[parts[-1]], str(name), item, source)
        return
    node[parts[-1]] = value


def read_record(model: type[Model], path: str | os.PathLike[str], what: str) -> Model:
    """A JSON record file read as `model`; any fault (missing, unreadable, invalid) is one `ConfigError` naming it."""
    return validate(model, read_json_file(path, what), str(path))
