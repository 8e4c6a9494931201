"""YAML in and out: `safe_load` only, and `2e-5` read as the number it looks like."""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from data.text_files import EncodingError, decode_text
from training.common.errors import TOO_DEEP, ConfigError
from training.common.json_files import check_not_special


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads numbers in YAML 1.2's spellings (`2e-5` and `-.5` floats, `1:30` text), and that refuses
    what readers disagree on: a key written twice in one mapping (PyYAML keeps the last one), `010` (eight or ten)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # merged keys may be overridden: that is their use
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):  # SafeLoader names an unhashable key
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_number(self, node: yaml.ScalarNode) -> Any:
        """An int or float; a scalar the resolver took for one but Python cannot read (`0x_`, `._`) is a YAML error
        at its line, not a bare ValueError."""
        try:
            if node.tag == "tag:yaml.org,2002:int":
                if ":" in str(node.value):  # YAML 1.2: `1:30` is a string, not YAML 1.1's sexagesimal ninety
                    return str(node.value)
                text = str(node.value).replace("_", "")
                digits = text.lstrip("+-")
                if digits.isdigit() and len(digits) > 1 and digits.startswith("0"):  # most likely a typo
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"{node.value!r}: a leading zero is octal to YAML 1.1 readers and decimal to YAML 1.2 ones: "
                        f"write {int(text, 10)}, or quote it for text",
                        node.start_mark,
                    )
                if digits.isdigit():
                    return int(text, 10)
                return self.construct_yaml_int(node)
            return self.construct_yaml_float(node)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a number", node.start_mark
            ) from None


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings such as `'2e5'`, which `_Loader` would read as floats."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
for _cls in (_Loader, _Dumper):
    _cls.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    # after YAML 1.1's own int forms: decimals it reads as strings (`09`, `0089`) are numbers to YAML 1.2, so refused
    _cls.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9][0-9_]*$"), list("-+0123456789"))


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_number)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_number)


def parse_yaml(text: str, source: str, *, lines: bool = True) -> Any:
    """Parse YAML text; a syntax error becomes a `ConfigError` naming `source` and (with `lines`, the text of a file,
    not of `--set k=v`) the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if isinstance(error, yaml.reader.ReaderError):  # a character YAML refuses: where it is, in one line
            line = text.count("\n", 0, error.position) + 1
        where = f"{source}:{line}" if line is not None and lines else source
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if "'\\t'" in problem:  # an editor's tab, where YAML takes spaces alone
            problem += "; indent and separate with spaces, not tabs"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from error
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: {TOO_DEEP}") from None


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level must be a mapping (an empty file is an empty mapping)."""
    check_not_special(path, "a YAML file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file{yml_hint(path)}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file ({error})") from error
    try:  # the data files' decoding: a UTF-16 file (PowerShell 5's `>`) named as such, a byte not UTF-8 by its line
        text = decode_text(raw, str(path))
    except EncodingError as error:
        reason = f"line {error.line}: {error.reason}" if error.line else error.reason
        raise ConfigError(f"{path}: cannot read the file ({reason})") from error
    value = parse_yaml(text, str(path))
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level, got {type(value).__name__}")
    return value


def yml_hint(path: Path) -> str:
    """A note on `x.yml` beside a missing `x.yaml`: config files are found by their `.yaml` name."""
    other = path.with_suffix(".yml")
    found = path.suffix == ".yaml" and other.is_file()
    return f" ({other.name} is there: config files are named .yaml)" if found else ""


def dump_yaml(value: Any) -> str:
    """YAML text for plain data, keys in the given order."""
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
