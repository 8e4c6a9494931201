"""Validation of raw config data into records, with one-line errors naming file, key path and value."""

from __future__ import annotations

import datetime
import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from training.common.errors import ConfigError
from training.common.json_files import read_json_file

Model = TypeVar("Model", bound=BaseModel)
Sourcer = Callable[[tuple[str | int, ...]], str]
# pydantic's errors for a value of the wrong type: of a union's members, they say the value is none of them
_MISMATCHES = {"string_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type",
               "bool_parsing", "literal_error", "model_type", "model_attributes_type", "dict_type",
               "list_type", "tuple_type"}  # fmt: skip
_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d)")  # `timeout_s: 2h`, `grace_period: 3m`
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
# text that unquoted YAML would read as the number or boolean expected (pydantic's errors for a value of another type)
_UNQUOTED = {
    "int_type": re.compile(r"[-+]?\d+"),
    "float_type": re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"),
    "bool_type": re.compile("true|false|yes|no|on|off", re.IGNORECASE),
}
_BOUNDS = {"less_than": "less than", "less_than_equal": "less than or equal to", "greater_than": "greater than",
           "greater_than_equal": "greater than or equal to"}  # pydantic's words  # fmt: skip


def validate(model: type[Model], data: Any, source: str | Sourcer) -> Model:
    """Validate `data` as `model`; errors name where the key came from (`source`, or `source(loc)`)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        where = source if callable(source) else (lambda _loc: source)
        groups: dict[Any, list[dict[str, Any]]] = {}  # the errors of one union's members about one value together
        errors = error.errors()
        for number, item in enumerate(errors):
            loc, _, members = _walk(model, item["loc"])
            if members and item["type"] in _MISMATCHES and _taken_by_another_member(item["loc"], errors):
                continue
            groups.setdefault(loc if members else number, []).append({**item, "key": loc, "members": members})
        items = [item for group in groups.values() for item in _one_per_value(group)]
        raise ConfigError("; ".join(_describe(model, item, where) for item in items)) from None


def _taken_by_another_member(loc: tuple[str | int, ...], errors: list[Any]) -> bool:
    """Whether another member of the union at `loc[:-1]` took the value and failed inside it (`window: {size: big}`:
    the mapping is the record's, whose `size` is wrong): the value is of that member's type, not of none of them."""
    union = loc[:-1]
    return any(len(other["loc"]) > len(loc) and other["loc"][: len(union)] == union for other in errors)


def _one_per_value(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors of a union's members (pydantic's one per member) as one where the value is none of their types
    (`tokens: [1]`: expected a string or an integer); else those of the members whose type it is."""
    wrong = [item for item in group if item["type"] in _MISMATCHES]
    if not group[0]["members"] or len(wrong) < len(group):
        return [item for item in group if item not in wrong] or group
    kinds = " or ".join(dict.fromkeys(_kind(member) for member in group[0]["members"]))
    first = next((item for item in group if item["type"] == "string_type"), group[0])  # its hints: a word YAML read
    return [{**first, "msg": f"Input should be {kinds}"}]


def _describe(model: type[BaseModel], item: Mapping[str, Any], where: Sourcer) -> str:
    loc = item["key"]
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
        hint = f"unquoted, it is read as {_KINDS.get(type(received), 'a date')}: quote it"  # YAML's or JSON's
        return f"{prefix}: {message}, got {received!r} ({hint})"
    if item["type"] in ("tuple_type", "list_type") and isinstance(received, str):  # `labels: PER, LOC`: one string
        listed = ", ".join(part.strip() for part in received.split(","))
        return f"{prefix}: expected a list, got {_shown(received)} (write [{listed}])"
    if isinstance(received, bool) and item["type"] in ("int_type", "float_type"):  # `warmup_steps: no` meant 0
        hint = "unquoted yes, no, on, off, true, false are booleans: write a number"
        return f"{prefix}: {message}, got {received!r} ({hint})"
    if item["type"] in ("int_type", "float_type") and (duration := _DURATION.fullmatch(str(received).strip())):
        seconds = float(duration[1]) * _UNIT_SECONDS[duration[2]]
        return f"{prefix}: {message}, got {_shown(received)} (durations are numbers of seconds: write {seconds:g})"
    if isinstance(received, str) and (typed := _UNQUOTED.get(item["type"])) and typed.fullmatch(received.strip()):
        return f"{prefix}: {message}, got {_shown(received)} (quoted, it is text: write it without quotes)"
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
    """Field names of the record found at pydantic's `loc` inside `model`; none where the record is not known."""
    members = _members(_walk(model, loc)[1])
    return list(members[0].model_fields) if len(members) == 1 and _is_record(members[0]) else []


def _walk(model: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], Any, list[Any]]:
    """pydantic's `loc` without the names it gives a union's members (the tag in `search_space.lr.loguniform.low`, the
    type in `data.columns.tokens.str`); the annotation it reaches (None where not known); and the members of the union
    it ends in (none where it ends in no union's member)."""
    kept: list[str | int] = []
    annotation: Any = model
    members: list[Any] = []
    for part in loc:
        options = _members(annotation)
        if len(options) > 1:  # `part` names the member: a record by its tag (`type: loguniform`), any other by type
            annotation = next((option for option in options if _names(part, option)), None)
            members = options
            continue
        kept.append(part)
        annotation, members = _inside(options[0] if options else None, part), []
    return tuple(kept), annotation, members


def _members(annotation: Any) -> list[Any]:
    """The types a value of `annotation` may be: a union's members (None aside, as an optional's), through Annotated."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [member for argument in get_args(annotation) for member in _members(argument)]
    return [] if annotation is None or annotation is type(None) else [annotation]


def _names(part: str | int, member: Any) -> bool:
    """Whether `part` is the name pydantic gives the union member `member`: a record's class name or tag (the values
    of its `type`), any other type's name (`str`, `list[str]`, `list[union[str,int]]`)."""
    if _is_record(member):
        kind = member.model_fields.get("type")
        return part in {member.__name__, *get_args(kind.annotation if kind is not None else None)}
    name = getattr(get_origin(member) or member, "__name__", None)
    return isinstance(part, str) and name is not None and part.split("[", 1)[0] == name


def _inside(annotation: Any, part: str | int) -> Any:
    """The annotation of `part` (a field, a mapping's key, a list's index) of a value of `annotation`."""
    if _is_record(annotation):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin, arguments = get_origin(annotation), get_args(annotation)
    if not isinstance(origin, type) or not arguments:
        return None
    if issubclass(origin, Mapping):
        return arguments[-1]
    if origin is tuple and Ellipsis not in arguments:
        return arguments[part] if isinstance(part, int) and part < len(arguments) else None
    return arguments[0] if issubclass(origin, Sequence) else None


def _kind(member: Any) -> str:
    """What a value of the type `member` is, in words (`an integer`, `a mapping`, `'auto'`)."""
    if get_origin(member) is Literal:
        return ", ".join(map(repr, get_args(member)))
    if isinstance(member, type) and member in _KINDS:
        return _KINDS[member]
    origin = get_origin(member) or member
    if _is_record(origin) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return "a mapping"
    if isinstance(origin, type) and issubclass(origin, Sequence):
        return "a list"
    return str(getattr(member, "__name__", member))


def _is_record(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


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
