"""`~` in the paths a user gives: expanded as a shell expands it, wherever the path came from."""

from __future__ import annotations

import os
from pathlib import Path

from training.common.errors import InputError


def expand_home(path: str | os.PathLike[str]) -> Path:
    """`path` with a leading `~` or `~user` expanded (no shell expands one after `--output=`, nor in a config file);
    a `~name` of no user here is an `InputError` naming it, where pathlib raised a RuntimeError naming nothing."""
    text = os.fspath(path)
    expanded = os.path.expanduser(text)
    if expanded.startswith("~"):
        head = text.split(os.sep, 1)[0]
        expected = f"expected ~/... or ~<user>/... (./{text} for a path so named)"
        raise InputError(f"{text}: {head} names no user of this machine; {expected}")
    return Path(expanded)
