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
    "devel": "validation",  # BioBERT's corpora (NCBI-disease, BC5CDR, JNLPBA): train.tsv, devel.tsv, test.tsv
    "development": "validation",
    "test": "test",
}
SPLIT_ORDER = ("train", "validation", "test")
# CoNLL-2002 and CoNLL-2003 as distributed (eng.train, eng.testa, eng.testb; deu, esp, ned alike) name the split by
# suffix: the shared tasks tuned on testa and reported on testb.
SPLIT_SUFFIXES = {".train": "train", ".testa": "validation", ".testb": "test"}


def file_split(file: Path) -> str | None:
    """The split a data file of a folder holds, by its name (`dev.jsonl`, `eng.testa`), or None: a file of another
    name (a README, CoNLL-2003's gazetteer `eng.list`, BioBERT's `train_dev.tsv`) is not read."""
    return SPLIT_ALIASES.get(file.stem.lower()) or SPLIT_SUFFIXES.get(file.suffix.lower())


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
