"""The argparse types every command line of the toolkit gives its path arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from training.common.errors import InputError
from training.common.home import expand_home

T = TypeVar("T")


def non_empty(parse: Callable[[str], T], expected: str = "a path") -> Callable[[str], T]:
    """`parse` as an argparse type refusing the empty string, an unset shell variable in `--output "$OUT"`: a path
    reads it as the working directory, `--host` as every interface, other options as their default."""

    def checked(text: str) -> T:
        if not text:
            raise argparse.ArgumentTypeError(f"expected {expected}, got an empty string")
        return parse(text)

    return checked


def home_path(text: str) -> Path:
    """A path argument with `~` expanded (`--output=~/x`: no shell expands a tilde after `=`, nor a quoted one); a
    `~name` of no user here is a usage error."""
    try:
        return expand_home(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
