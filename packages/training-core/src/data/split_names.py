"""Split names: ours (train, validation, test), the names data files and datasets give them, and the one asked for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from training.common.errors import DataError, InputError

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
# CoNLL-2002/2003 as distributed (eng.train, eng.testa, eng.testb) name the split by suffix: testa tunes, testb tests.
SPLIT_SUFFIXES = {".train": "train", ".testa": "validation", ".testb": "test"}
# Words naming a split inside a longer name: GermEval 2014's NER-de-train.tsv, WNUT-17's wnut17train.conll.
_SPLIT_WORDS = {**SPLIT_ALIASES, **{suffix[1:]: split for suffix, split in SPLIT_SUFFIXES.items()}}
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters: digits, underscores and punctuation part words
# Files that are never data whatever their names: a run's train.log, a config folder's train.yaml, a study's study.db.
_NOT_DATA_SUFFIXES = frozenset(
    {".log", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".lock", ".db", ".py", ".sh", ".md", ".html", ".png", ".pt"}
    | {".bin", ".safetensors", ".onnx"}
)
# Data once unpacked, not before: a corpus's train.conll.gz, a download's .tar.gz or .zip.
_PACKED_SUFFIXES = frozenset({".gz", ".tgz", ".zip", ".tar", ".bz2", ".xz", ".7z"})


def not_data(file: Path) -> str | None:
    """Why `file` is not read as data, by its suffix (a log, a config, a compressed file), or None."""
    if file.suffix.lower() in _PACKED_SUFFIXES:
        return f"a compressed file ({file.suffix}): unpack it (gunzip, unzip or tar -x)"
    return f"a {file.suffix} file is not data" if file.suffix.lower() in _NOT_DATA_SUFFIXES else None


def file_split(file: Path) -> str | None:
    """The split a data file holds by its name alone (`dev.jsonl`, `eng.testa`), or None (a README, CoNLL-2003's
    gazetteer `eng.list`, BioBERT's `train_dev.tsv`)."""
    return SPLIT_ALIASES.get(file.stem.lower()) or SPLIT_SUFFIXES.get(file.suffix.lower())


def split_files(folder: Path) -> dict[str, Path]:
    """The file of each split in `folder`, in our order: the files named by a split alone (`train.jsonl`, `eng.testa`)
    where there are any, else by the one split word inside each name (`NER-de-dev.tsv`); two files for a split, or two
    split words in a name read, are an error."""
    files = _data_files(folder)
    named = {file: file_split(file) for file in files}
    alone = any(named.values())
    if not alone:
        named = {file: _split_inside(folder, file) for file in files if not file.name.startswith(".")}
    found: dict[str, Path] = {}
    for file, split in named.items():
        if split is None:
            continue
        if split in found:
            raise DataError(
                f"{folder}: both {found[split].name} and {file.name} hold the {split!r} split; keep one (move the "
                "other out)"
            )
        found[split] = file
    renames = _renames(files, found) if alone else {}
    if "train" not in found and any(split == "train" for split, _ in renames):  # NER-de-train.tsv beside dev.tsv
        to = ", ".join(f"{' or '.join(names)} to {name}" for (_, name), names in renames.items())
        raise DataError(
            f"{folder}: no train file; a split word inside a name is read only where no file is named by a split alone "
            f"({', '.join(file.name for file in found.values())}): rename {to}"
        )
    if "train" not in found:
        folders = ", ".join(f"{name}/" for name in split_folders(folder))  # brat's layout alone: of .txt/.ann pairs
        found_folders = f"; found {folders}: a split is one file (join each folder's files into one)" if folders else ""
        skipped = [f for f in sorted(folder.iterdir()) if f.is_file() and not_data(f) and _split_words(f)]
        shown = [f.name + (" (compressed: unpack it)" if f.suffix.lower() in _PACKED_SUFFIXES else "") for f in skipped]
        unread = f"; not read as data, by their suffix: {', '.join(shown)}" if shown else ""
        raise DataError(
            f"{folder}: no train file; expected files named train, validation (or dev, devel, development) and test "
            f"with a suffix such as .jsonl, .json or .conll (or CoNLL-2003's eng.train, eng.testa, eng.testb), or "
            f"names holding one of those words (NER-de-train.tsv, wnut17train.conll){found_folders}{unread}"
        )
    return {name: found[name] for name in SPLIT_ORDER if name in found}


def split_folders(folder: Path) -> dict[str, Path]:
    """The subfolders of `folder` named by a split (`train`, `dev`, ...), by name: brat's splits of documents."""
    return {sub.name: sub for sub in sorted(folder.iterdir()) if sub.is_dir() and sub.name.lower() in SPLIT_ALIASES}


def unread_split_files(folder: Path, found: Mapping[str, Path]) -> dict[str, str]:
    """The files of `folder` whose names hold one split word for a split not `found` (`NER-de-dev.tsv` beside
    `train.tsv`, which `split_files` does not read), each with the name that would have it read (`dev.tsv`)."""
    renames = _renames(_data_files(folder), found)
    return {file: name for (_, name), files in renames.items() for file in files}


def _data_files(folder: Path) -> list[Path]:
    """The files of `folder` that may hold data, by name: not its logs, configs, databases, ..."""
    files = [file for file in sorted(folder.iterdir()) if file.is_file()]
    return [file for file in files if not_data(file) is None]


def _split_inside(folder: Path, file: Path) -> str | None:
    """The split one word of `file`'s name names (`train` in `wnut17train.conll`), or None; two are an error."""
    words = _split_words(file)
    if len(set(words.values())) > 1:
        raise DataError(
            f"{folder}: {file.name} names two splits ({', '.join(words)}); rename it after one split, or move it out"
        )
    return next(iter(words.values()), None)


def _renames(files: list[Path], found: Mapping[str, Path]) -> dict[tuple[str, str], list[str]]:
    """Files not hidden whose names hold one split word for a split not `found` (`NER-de-dev.tsv`), by that split and
    the name to give them (`dev.tsv`), in our split order."""
    renames: dict[tuple[str, str], list[str]] = {}
    for file in files:
        words = _split_words(file)
        splits = set(words.values())
        if file.name.startswith(".") or len(splits) != 1 or splits <= found.keys():
            continue
        split, word = splits.pop(), next(iter(words))
        renames.setdefault((split, f"{word if word in SPLIT_ALIASES else split}{file.suffix}"), []).append(file.name)
    return dict(sorted(renames.items(), key=lambda item: SPLIT_ORDER.index(item[0][0])))


def _split_words(file: Path) -> dict[str, str]:
    """The words of `file`'s name that name a split, in order, each with its split (`train` in `wnut17train.conll`)."""
    return {word: _SPLIT_WORDS[word] for word in _WORD.findall(file.name.lower()) if word in _SPLIT_WORDS}


def chosen_split(splits: Mapping[str, object], data_path: str | Path, split: str | None, default: str) -> str:
    """The split `split` (`--split`) names (`dev` too); without one, `default`, or the one split of a data file (or of
    a folder of brat documents, which is one split as a file is)."""
    path = Path(data_path)
    if split is None and (path.is_file() or (path.is_dir() and any(path.glob("*.ann")))):
        return next(iter(splits))
    named = split or default
    ours = SPLIT_ALIASES.get(named.lower(), named)
    if ours not in splits:
        raise InputError(f"split {named} (--split): {data_path} has no such split; it has {', '.join(splits)}")
    return ours
