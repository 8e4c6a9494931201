"""Counts in words: `1 trial`, `3 trials`, never `1 trials`."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, in the plural (`plural`, else `noun` + s) unless the count is one."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
