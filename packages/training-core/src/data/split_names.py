"""Split names: ours (train, validation, test), the names data files and datasets give them, and the one asked for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from training.common.errors import InputError

SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}
SPLIT_ORDER = ("train", "validation", "test")


def chosen_split(splits: Mapping[str, object], data_path: str | Path, split: str | None, default: str) -> str:
    """The split `split` (`--split`) names (`dev` too); without one, `default`, or the one split of a single data
    file."""
    if split is None and Path(data_path).is_file():
        return next(iter(splits))
    named = split or default
    ours = SPLIT_ALIASES.get(named.lower(), named)
    if ours not in splits:
        raise InputError(f"split {named} (--split): {data_path} has no such split; it has {', '.join(splits)}")
    return ours
