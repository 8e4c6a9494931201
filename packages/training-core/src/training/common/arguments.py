"""The argparse type every command line of the toolkit gives its path arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def non_empty(parse: Callable[[str], T], expected: str = "a path") -> Callable[[str], T]:
    """`parse` as an argparse type refusing the empty string, an unset shell variable in `--output "$OUT"`: a path
    reads it as the working directory, `--host` as every interface, other options as their default."""

    def checked(text: str) -> T:
        if not text:
            raise argparse.ArgumentTypeError(f"expected {expected}, got an empty string")
        return parse(text)

    return checked
