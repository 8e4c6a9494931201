"""Files of settings read whole (JSON here, YAML in `training.config.yaml_io`): each fault (missing, unreadable, not a
file, malformed, nested too deeply) one error naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from training.common.errors import TOO_DEEP, ConfigError, InputError


def read_json_file(path: str | os.PathLike[str], what: str, error: type[InputError] = ConfigError) -> Any:
    """Parse a JSON file; a missing or unreadable one is an `error` naming it as `what` it should be."""
    file = Path(path)
    check_not_special(file, f"a {what}", error)
    try:
        # a BOM too: Notepad saves a best config with one
        return json.loads(file.read_text(encoding="utf-8-sig"), object_pairs_hook=_distinct_keys)
    except FileNotFoundError:
        raise error(f"{file}: no such {what}") from None
    except (OSError, ValueError) as reason:  # ValueError: JSON, UTF-8 or a key written twice
        raise error(f"{file}: not a readable {what} ({reason})") from reason
    except RecursionError:
        raise error(f"{file}: not a readable {what} (invalid JSON: {TOO_DEEP})") from None


def _distinct_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are distinct: json keeps a key's last value, where a hand edit may have meant the first."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} is written twice in one object; keep one")
        seen.add(key)
    return dict(pairs)


def check_not_special(path: Path, expected: str, error: type[InputError] = ConfigError) -> None:
    """Refuse a device or socket at `path` as an `error`: read whole, it never ends (`/dev/zero`) or waits on a
    terminal. A pipe is read as `cat` reads it (`hpo best --json | training final /dev/stdin`)."""
    if path.is_char_device() or path.is_block_device() or path.is_socket():
        raise error(f"{path}: is a device or socket; expected {expected}")
