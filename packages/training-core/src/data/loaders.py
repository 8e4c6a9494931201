"""`load_dataset`: a folder of split files or one file, validated into documents with a fingerprint."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from data.brat import brat_records, brat_splits, is_brat
from data.columns import Columns
from data.csv_tables import csv_records, is_csv_table
from data.document_builder import DocumentBuilder, MisalignedPolicy, OverlapPolicy
from data.documents import Document, document_items, iob2_tag_names
from data.formats import (
    CONLL_SUFFIXES,
    CSV_SUFFIXES,
    DOCSTART,
    FORMATS,
    JSON_SUFFIXES,
    Record,
    detect_format,
    read_records,
)
from data.hf_datasets import is_datasets_input, named_tags, read_datasets_input
from data.report import LoadReport
from data.schemes import SCHEMES, Place, declared_types, detect_scheme, io_names, typed_prefixes
from data.sniffing import content_format
from data.split_names import SPLIT_ALIASES, SPLIT_ORDER, not_data, split_files, unread_split_files
from data.text_files import ENCODINGS, is_text_encoding, read_data
from training.common.errors import DataError, TagNamesNeeded, expect_instance
from training.common.fingerprint import fingerprint_items
from training.common.gc_pause import gc_paused


class Dataset(Mapping[str, tuple[Document, ...]]):
    """Splits of documents (like a `DatasetDict`), their entity types and a content fingerprint."""

    def __init__(
        self,
        splits: Mapping[str, Sequence[Document]],
        labels: Sequence[str] | None = None,
        report: LoadReport | None = None,
    ) -> None:
        self._splits = _checked_splits(splits)
        _refuse_string("labels", labels)
        found = {label for docs in self._splits.values() for doc in docs for label in doc.entity_types}
        if labels is not None and (unknown := sorted(found - set(labels))):
            raise DataError(f"labels {unknown} occur in the data but not in the schema {list(labels)}")
        self.labels: tuple[str, ...] = tuple(labels if labels is not None else sorted(found))
        self.report = report or LoadReport(
            source="<memory>", documents={name: len(d) for name, d in self._splits.items()}
        )

    @classmethod
    def check(cls, value: object) -> Dataset:
        """`value` if it is a Dataset, else an `InputError` naming the argument `dataset`."""
        return expect_instance(value, cls, "dataset", "a Dataset (load_dataset(path) or config.data.load())")

    def __getitem__(self, split: str) -> tuple[Document, ...]:
        try:
            return self._splits[split]
        except KeyError:
            raise KeyError(f"no split {split!r}; this dataset has {list(self._splits)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._splits)

    def __len__(self) -> int:
        return len(self._splits)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(docs)}" for name, docs in self._splits.items())
        return f"Dataset({sizes}, labels={list(self.labels)}, fingerprint={self.fingerprint[:12]})"

    @property
    def tag_names(self) -> tuple[str, ...]:
        """IOB2 tag names: `O`, then `B-X`, `I-X` for each entity type in order."""
        return iob2_tag_names(self.labels)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over labels and each split's texts and spans: equal content, equal fingerprint."""
        return fingerprint_items(self._fingerprint_items())

    def _fingerprint_items(self) -> Iterator[Any]:
        yield {"labels": list(self.labels)}
        for name in sorted(self._splits):
            yield {"split": name}
            yield from document_items(self._splits[name])


@gc_paused()
def load_dataset(
    data_asset: str | os.PathLike[str] | Any,
    *,
    format: str = "auto",
    labels: Sequence[str] | None = None,
    overlap_policy: OverlapPolicy = "error",
    misaligned_policy: MisalignedPolicy = "expand",
    scheme: str = "auto",
    tag_names: Sequence[str] | None = None,
    columns: Columns | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """Load a folder (`train`/`validation`/`test` files), one file (a `train` split) or a Hugging Face dataset.

    `labels` is the entity-type schema (default: the data's; a single one also types bare `B`, `I` tags). A span edge
    inside a word is widened to whole words and counted (`misaligned_policy="expand"`) or an error; overlaps are
    resolved after that. Tags of any `scheme` become IOB2; `tag_names` names integer tags; `columns` names the columns
    of `datasets` input and keys of JSON token records, or gives CoNLL files' column positions (0 first, -1 last).
    Files are read in `encoding` (Python's codec name: latin-1 for CoNLL-2002's files), UTF-8 by default.
    """
    if format != "auto" and format not in FORMATS:
        raise DataError(f"{data_asset}: unknown format {format!r}; expected one of auto, {', '.join(FORMATS)}")
    if overlap_policy not in ("error", "keep_longest"):
        raise DataError(f"unknown overlap_policy {overlap_policy!r}; expected 'error' or 'keep_longest'")
    if misaligned_policy not in ("expand", "error"):
        raise DataError(f"unknown misaligned_policy {misaligned_policy!r}; expected 'expand' or 'error'")
    if scheme != "auto" and scheme not in SCHEMES:
        raise DataError(f"unknown tagging scheme {scheme!r}; expected auto or one of {', '.join(SCHEMES)}")
    if not is_text_encoding(encoding):
        raise DataError(f"unknown encoding {encoding!r}; expected {ENCODINGS}")
    for name, names in (("labels", labels), ("tag_names", tag_names)):
        _refuse_string(name, names)
    twice = [name for name, count in Counter(tag_names or ()).items() if count > 1]  # a typo merges two tags' words
    if twice:
        raise DataError(f"data.tag_names names {twice[0]!r} twice; expected one name per tag id, got {list(tag_names)}")
    columns = expect_instance(columns, (Columns, type(None)), "columns", "data.columns.Columns", DataError) or Columns()
    if labels is None and tag_names is not None:  # as a ClassLabel's names, they declare the label set
        labels = declared_types(io_names(tag_names))
    unread: dict[str, str] = {}
    counts: Counter[str] = Counter()
    if is_datasets_input(data_asset):
        source, raw, declared = read_datasets_input(data_asset, tag_names=tag_names, columns=columns)
        labels = declared if labels is None else labels
        sources = {name: _Source(f"{source}[{split}]", *raw[split]) for name, split in _splits(source, raw)}
    else:
        expected = "a data folder or file (or a datasets object)"
        source = str(expect_instance(data_asset, (str, os.PathLike), "data_asset", expected, DataError))
        path = Path(data_asset)
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
        if path.is_file() and (why := not_data(path)):  # a run's train.log, a config's train.yaml, a train.conll.gz
            raise DataError(f"{path}: {why}; expected a data folder or a data file")
        format = "brat" if format == "auto" and is_brat(path) else format  # a folder of .txt/.ann pairs, or of splits
        files = brat_splits(path) if format == "brat" else split_files(path) if path.is_dir() else {"train": path}
        if _all_json(files.values(), format):  # positions for a folder of CoNLL and JSON files are the CoNLL's
            read_by = "its files are JSON, read by their keys" if path.is_dir() else "a JSON file is read by its keys"
            columns.refuse_positions(source, read_by)
        sources = {
            name: _file_source(file, format, tag_names, columns, encoding, counts) for name, file in files.items()
        }
        if path.is_dir() and format != "brat":
            unread = unread_split_files(path, files)
    sources = {name: _docstart_groups(part) for name, part in sources.items()}
    renames: list[Callable[[Sequence[str]], Sequence[str]]] = []
    if labels is not None and len(labels) == 1:  # the one type of tags without one (`B`, `I`: keyphrase corpora)
        renames.append(partial(typed_prefixes, label=labels[0]))
    if scheme in ("auto", "IO"):  # another scheme has no bare types: they stay the malformed tags they are there
        renames.append(io_names)
    sources = _retagged(sources, renames)
    used = _scheme(scheme, sources.values())
    builders = {
        name: DocumentBuilder(
            part.where, name, part.format, labels, overlap_policy, misaligned_policy, counts, used, part.columns
        )
        for name, part in sources.items()
    }
    splits = {name: builders[name].load(part.records) for name, part in sources.items()}
    report = LoadReport(
        source=source,
        documents={name: len(docs) for name, docs in splits.items()},
        misaligned={name: builder.misaligned() for name, builder in builders.items()},
        scheme=used,
        files_unread=unread,
        **counts,
    )
    return Dataset(splits, labels=labels, report=report)


def _refuse_string(name: str, names: object) -> None:
    if isinstance(names, str):  # read letter by letter, 'PER' was the schema P, E, R
        raise DataError(f"{name}: expected a list of names, got the string {names!r}")


def _checked_splits(splits: object) -> dict[str, tuple[Document, ...]]:
    """`splits` as a `Dataset` holds them, or a `DataError` naming what is not a list of `Document`s: a list of
    documents, a split of strings or dicts failed deep inside (an AttributeError naming `items` or `entity_types`)."""
    expected = "a mapping of split names to lists of Documents, such as {'train': documents}"
    if not isinstance(splits, Mapping):
        raise DataError(f"splits: expected {expected}, got {type(splits).__name__} {splits!r:.60}")
    checked = {}
    for name, documents in splits.items():
        if isinstance(documents, (str, Document)) or not isinstance(documents, Iterable):
            raise DataError(f"splits[{name!r}]: expected {expected}, got {type(documents).__name__} {documents!r:.60}")
        checked[name] = tuple(documents)
        for index, document in enumerate(checked[name]):
            if not isinstance(document, Document):
                what = f"{type(document).__name__} {document!r:.60}"
                raise DataError(f"splits[{name!r}][{index}]: expected a Document (Document.from_spans), got {what}")
    return checked


def columns_taken(data_asset: str | os.PathLike[str], format: str = "auto") -> tuple[bool, bool]:
    """Whether the data at `data_asset` takes `data.columns` positions (a CoNLL file) and names (JSON token records, a
    CSV header or `datasets`)."""
    if is_datasets_input(data_asset):
        return False, True
    path = Path(data_asset)
    if format == "brat" or (format == "auto" and is_brat(path)):
        return False, False
    suffixes = [file.suffix.lower() for file in (split_files(path).values() if path.is_dir() else [path])]
    named = JSON_SUFFIXES | CSV_SUFFIXES
    positions = format == "conll" or (format == "auto" and any(suffix not in named for suffix in suffixes))
    names = format in ("tokens", "csv") or (format == "auto" and any(s not in CONLL_SUFFIXES for s in suffixes))
    return positions, names  # a file of no known suffix is CoNLL, or a CSV table where its header names the columns


def _all_json(files: Iterable[Path], format: str) -> bool:
    """Whether `files` read in `format` are all JSON (a file of another suffix is CoNLL, or refused as unknown)."""
    return format in ("spans", "tokens") or (format == "auto" and all(f.suffix.lower() in JSON_SUFFIXES for f in files))


@dataclass(frozen=True)
class _Source:
    """The records of one split, where they come from (for messages), their format and the keys of token records."""

    where: str
    format: str
    records: list[Record]
    columns: Columns = Columns()


def _file_source(
    file: Path, format: str, tag_names: Sequence[str] | None, columns: Columns, encoding: str, counts: Counter[str]
) -> _Source:
    if format == "brat":  # `file` is a split's folder of documents
        columns.refuse_positions(str(file), "a brat folder is read by its offsets")
        columns.refuse_names(str(file))
        return _Source(str(file), "spans", brat_records(file, encoding, counts))
    text = read_data(file, encoding)
    if format == "conll" and (shown := content_format(file, encoding=encoding)) in ("spans", "tokens"):
        # Read as CoNLL, JSON fails at a column count, a lone `[` or a tag `"O"]}`, none saying what the file holds.
        raise DataError(
            f"{file}: read as CoNLL (data.format conll), but it looks like JSON ({shown} records): data.format {shown}"
        )
    if format == "auto":
        file_format = "csv" if is_csv_table(file, text, columns) else detect_format(file, text, columns)
    else:
        file_format = format
    if file_format == "csv":  # sentences of words and tags found by the header's names: token records like CoNLL's
        return _Source(str(file), file_format, list(csv_records(file, text, columns)))
    records = list(read_records(file, text, file_format, columns.positions(str(file), file_format)))
    if file_format == "spans":  # read by their own keys: a run's names (inherited) name none of them
        columns.refuse_names(str(file))
        return _Source(str(file), file_format, records)
    if file_format == "tokens":  # a span record's other fields are its own business
        records = [_named_tags(file, record, tag_names, columns) for record in records]
    return _Source(str(file), file_format, records, columns)


def _docstart_groups(part: _Source) -> _Source:
    """`part` with the one-token `-DOCSTART-` records of CoNLL converted to token records starting a group of the
    records after them, as in a CoNLL file, not read as documents."""
    if part.format != "tokens" or not any(record.fields.get("tokens") == [DOCSTART] for record in part.records):
        return part
    records, group = [], 0
    for record in part.records:
        if record.fields.get("tokens") == [DOCSTART]:
            group += 1
        else:
            records.append(replace(record, group=f"doc{group}") if group and record.group is None else record)
    return replace(part, records=records)


def _named_tags(file: Path, record: Record, names: Sequence[str] | None, columns: Columns) -> Record:
    """A token record whose tags are ids (as `datasets` exports `ClassLabel` columns) with `names` in their place."""
    _, key = columns.keys(f"{file}:{record.line}", record.fields)
    tags = record.fields.get(key) if key is not None else None
    if not isinstance(tags, list) or not tags or not all(type(tag) is int for tag in tags):  # true/false are no ids
        return record
    if names is None:
        raise TagNamesNeeded(f"{file}:{record.line}: '{key}' holds tag ids", after=" (or write the names)")
    named = named_tags(str(file), record.line, key, tags, io_names(names))
    return replace(record, fields={**record.fields, key: named})


def _splits(source: str, raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Our split names for a dataset's own (`validation`, `valid`, `dev`, `test`), in our order."""
    found: dict[str, str] = {}
    for split in raw:
        name = SPLIT_ALIASES.get(split.lower())
        if name is None:
            raise DataError(f"{source}: split {split!r} is not one of {', '.join(SPLIT_ALIASES)}; rename or drop it")
        if name in found:
            raise DataError(f"{source}: splits {found[name]!r} and {split!r} both are the {name!r} split; keep one")
        found[name] = split
    if "train" not in found:
        raise DataError(f"{source}: no train split; the dataset has {list(raw)}")
    return [(name, found[name]) for name in SPLIT_ORDER if name in found]


def _tagged(sources: Iterable[_Source]) -> Iterator[tuple[_Source, Record, list[str]]]:
    """Each token record with its tag names (a list of strings), and its source."""
    for part in sources:
        if part.format == "spans":
            continue
        for record in part.records:
            key = part.columns.tag_key(record.fields)
            tags = record.fields.get(key) if key is not None else None
            if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
                yield part, record, tags


def _retagged(
    sources: dict[str, _Source], renames: Sequence[Callable[[Sequence[str]], Sequence[str]]]
) -> dict[str, _Source]:
    """`sources` with their tags as `renames`, in turn, read all their tag names together (`io_names`: Few-NERD's bare
    entity types as IO tags); the tags are walked once for all."""
    if not renames:
        return sources
    distinct = sorted(set().union(*(tags for *_, tags in _tagged(sources.values()))))
    renamed: Sequence[str] = distinct
    for rename in renames:
        renamed = rename(renamed)
    named = {tag: new for tag, new in zip(distinct, renamed, strict=True) if tag != new}
    if not named:
        return sources
    return {name: _renamed(part, named) for name, part in sources.items()}


def _renamed(part: _Source, named: Mapping[str, str]) -> _Source:
    """`part` with the tags of its token records renamed as `named` says (a malformed tag stays, for errors)."""
    if part.format == "spans":
        return part
    records = []
    for record in part.records:
        key = part.columns.tag_key(record.fields)
        tags = record.fields.get(key) if key is not None else None
        if key is not None and isinstance(tags, list):
            renamed = [named.get(tag, tag) if isinstance(tag, str) else tag for tag in tags]
            record = replace(record, fields={**record.fields, key: renamed})
        records.append(record)
    return replace(part, records=records)


def _scheme(requested: str, sources: Iterable[_Source]) -> str | None:
    """The tagging scheme of every token record together (detected unless requested); None without tags."""
    sequences = [(Place(part.where, record.line, record.lines), tags) for part, record, tags in _tagged(sources)]
    if not sequences:
        return None
    return detect_scheme(sequences) if requested == "auto" else requested
