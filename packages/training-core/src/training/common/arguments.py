"""The argparse type every command line of the toolkit gives its path arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def non_empty(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type refusing the empty string, which a path reads as the working directory (an unset
    shell variable in `--output "$OUT"`)."""

    def checked(text: str) -> T:
        if not text:
            raise argparse.ArgumentTypeError("expected a path, got an empty string")
        return parse(text)

    return checked
