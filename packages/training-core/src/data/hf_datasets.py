"""Hugging Face `datasets` input: `Dataset`/`DatasetDict` objects, `save_to_disk` folders, Parquet files, hub ids.

Each row becomes a record exactly like a line of our token (or span) JSON lines, so documents and their fingerprint
do not depend on the format they came in; messages number rows from 1, as the lines of its JSON lines export. Integer
tags are named by the column's `ClassLabel` feature, else by `tag_names`. `datasets` is an optional extra.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.columns import SPAN_COLUMNS, TAG_COLUMNS, TOKEN_COLUMNS, Columns, column
from data.formats import Record
from data.schemes import declared_types, io_names
from data.split_names import file_split
from training.common.errors import DataError, TagNamesNeeded, first_line
from training.common.json_files import read_json_file
from training.common.optional import require
from training.common.quiet import QuietLibrary

HUB_PREFIX = "hf://"
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")  # how `push_to_hub` names the Parquet shards of a split
_RECORD_COLUMNS = ("id", "group")  # a document's id, and the group folds and hold-outs keep together
_NEEDED_BY = "reading Hugging Face datasets input (a Dataset, a save_to_disk folder, Parquet or hf:// id)"
quiet_datasets = QuietLibrary("datasets.utils.logging")  # "Generating train split" bars would cut into our output


@dataclass(frozen=True, slots=True)
class HubId:
    """`hf://org/name[:config][@revision]`: a dataset on the Hugging Face hub (or in the local `datasets` cache)."""

    repo: str
    config: str | None = None
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> HubId:
        """Read `hf://org/name`, optionally followed by `:config` and `@revision`."""
        rest, _, revision = text.removeprefix(HUB_PREFIX).partition("@")
        repo, _, config = rest.partition(":")
        if not repo or repo.startswith("/") or repo.endswith("/") or "@" in revision:
            raise DataError(f"{text}: not a hub dataset id; expected hf://org/name[:config][@revision]")
        return cls(repo, config or None, revision or None)


def is_datasets_input(asset: object) -> bool:
    """Whether `asset` is read through `datasets`: an object of that library, a hub id, Parquet or a saved folder."""
    if not isinstance(asset, (str, os.PathLike)):
        return type(asset).__module__.split(".")[0] == "datasets"
    text = os.fspath(asset)
    if text.startswith(HUB_PREFIX):
        return True
    path = Path(text)
    if path.is_file():
        return path.suffix.lower() == ".parquet"
    return path.is_dir() and (_saved_to_disk(path) or any(path.glob("*.parquet")))


def read_datasets_input(
    asset: object, *, tag_names: Sequence[str] | None = None, columns: Columns = Columns()
) -> tuple[str, dict[str, tuple[str, list[Record], Columns]], tuple[str, ...] | None]:
    """A name for `asset`, its splits (as the data names them), each its records' format, its records (token records
    with tag names, or span records) and their words' and tags' keys (the columns' names, for messages), and the entity
    types its `ClassLabel` names declare (None without)."""
    datasets = require("datasets", _NEEDED_BY)
    declared: dict[str, None] | None = None
    columns = columns.names(_source(asset))
    with quiet_datasets():
        source, splits = _open(datasets, asset)
        records = {}
        for split, table in splits.items():
            if isinstance(table, datasets.IterableDataset):  # streaming: its rows are read once, into memory
                rows = list(table)
                if not rows:  # often of no known features (after `map`): no columns, none of them words
                    raise DataError(f"{source}[{split}]: the {split!r} split streams no rows")
                table = datasets.Dataset.from_list(rows, features=table.features)
            if not isinstance(table, datasets.Dataset):
                raise DataError(f"{source}: split {split!r} is a {type(table).__name__}; expected a datasets.Dataset")
            nested = columns.tokens is None and "sentences" in table.column_names  # and no words beside
            if nested and not {*TOKEN_COLUMNS} & {*table.column_names}:
                table = _sentence_rows(datasets, f"{source}[{split}]", table)
            *records[split], types = _records(datasets, f"{source}[{split}]", table, tag_names, columns)
            if types is not None:
                declared = {**(declared or {}), **dict.fromkeys(types)}
    if not records:
        raise DataError(f"{source}: the dataset has no splits")
    return source, records, None if declared is None else tuple(declared)


def _source(asset: object) -> str:
    """How messages name `asset`: its path or hub id, else its type (`<DatasetDict>`)."""
    return os.fspath(asset) if isinstance(asset, (str, os.PathLike)) else f"<{type(asset).__name__}>"


def _open(datasets: Any, asset: object) -> tuple[str, dict[str, Any]]:
    text = _source(asset)
    if not isinstance(asset, (str, os.PathLike)):
        named = isinstance(asset, (datasets.DatasetDict, datasets.IterableDatasetDict))
        return text, dict(asset) if named else {"train": asset}
    if text.startswith(HUB_PREFIX):
        return text, _from_hub(datasets, HubId.parse(text), text)
    path = Path(text)
    if _saved_to_disk(path):
        # `datasets` reads the JSON files it saved beside the data without naming one that is damaged
        for file in [*sorted(path.glob("*.json")), *sorted(path.glob("*/*.json"))]:
            saved = read_json_file(file, "file of a dataset saved with save_to_disk", DataError)
            if file.name == "state.json" and isinstance(saved, dict) and saved.get("_data_files") == []:
                # `datasets` saves an empty split without a data file, then fails to read it back (IndexError).
                raise DataError(f"{file.parent}: an empty split (saved with no data file); drop it or give it rows")
        loaded = datasets.load_from_disk(str(path))
        return text, dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    if path.is_file():
        return text, {"train": _from_parquet(datasets, [path])}
    shards: dict[str, list[Path]] = {}
    for file in sorted(path.iterdir()):
        if file.suffix == ".parquet":  # `train.parquet`, or the hub's `train-00000-of-00002.parquet`
            shards.setdefault(_SHARD.sub("", file.stem), []).append(file)
        elif file_split(file):  # a split in another format would be dropped unsaid
            raise DataError(f"{text}: holds Parquet files and {file.name}; keep the splits in one format")
    return text, {split: _from_parquet(datasets, files) for split, files in shards.items()}


def _saved_to_disk(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _from_parquet(datasets: Any, files: list[Path]) -> Any:
    """Parquet files (the shards of one split) as a `Dataset`, with the features `datasets` keeps in their metadata."""
    parquet = require("pyarrow.parquet", _NEEDED_BY)
    tables = []
    for file in files:
        try:
            tables.append(datasets.Dataset(datasets.table.InMemoryTable(parquet.read_table(file))))
        except (OSError, ValueError) as error:
            raise DataError(f"{file}: cannot read Parquet: {error}") from error
    try:
        return datasets.concatenate_datasets(tables)
    except ValueError as error:
        raise DataError(f"{files[0].parent}: the shards of one split differ: {error}") from error


def _from_hub(datasets: Any, hub: HubId, text: str) -> dict[str, Any]:
    """The hub dataset's splits: from the local cache when offline (`HF_HUB_OFFLINE=1`), else downloaded."""
    try:
        loaded = datasets.load_dataset(hub.repo, hub.config, revision=hub.revision)
    except Exception as error:  # the hub client raises many kinds; each becomes one line naming the id
        raise DataError(
            f"{text}: cannot load the hub dataset ({type(error).__name__}: {first_line(error)}); "
            "offline, it must be in the local datasets cache"
        ) from error
    return dict(loaded)


def _records(
    datasets: Any, where: str, table: Any, tag_names: Sequence[str] | None, columns: Columns
) -> tuple[str, list[Record], Columns, tuple[str, ...] | None]:
    """The rows of `table` as records of a format: `tokens` (keyed by the columns' names), or `spans` for a `text`
    column beside entities (and no words or tags), as a line of span JSON is read; the records' keys of words and
    tags (a span record's tags are its spans, under their column's name); and the entity types of the tag column's
    (or span labels') `ClassLabel`, if any."""
    usual = {*TOKEN_COLUMNS, *TAG_COLUMNS} & {*table.column_names}  # words under another name: a setting away
    spans = columns.tokens is None and "text" in table.column_names and not usual
    if spans:
        first, second = "text", _column(where, table, columns, SPAN_COLUMNS, "tags")
        names = _span_label_names(datasets, table.features[second])
    else:
        first = _column(where, table, columns, TOKEN_COLUMNS, "tokens")
        second = _column(where, table, columns, TAG_COLUMNS, "tags")
        names = _tag_names(datasets, where, table.features[second], second, tag_names)
    types = None  # as run_ner.py, a ClassLabel's names are the label set: a subset without a type trains its head
    if isinstance(getattr(table.features[second], "feature", None), datasets.ClassLabel):
        types = declared_types(names or ())
    elif spans:
        types = names
    kept = [column for column in _RECORD_COLUMNS if column in table.column_names]  # as a JSON line keeps them
    rows = table.select_columns([first, second, *kept]).to_dict()
    records = []
    for row, (content, tags) in enumerate(zip(rows[first], rows[second], strict=True)):
        fields = {column: rows[column][row] for column in kept}
        if spans:
            entities = _structs(tags)
            if names is not None and isinstance(entities, list):
                labels = named_tags(where, row + 1, second, [entity["label"] for entity in entities], names)
                entities = [{**entity, "label": label} for entity, label in zip(entities, labels, strict=True)]
            records.append(Record(row + 1, {**fields, "text": content, second: entities}))
            continue
        if names is not None and isinstance(tags, list):
            tags = named_tags(where, row + 1, second, tags, names)
        records.append(Record(row + 1, {**fields, first: content, second: tags}))
    return ("spans" if spans else "tokens", records, Columns(None if spans else first, second), types)


def _span_label_names(datasets: Any, feature: Any) -> tuple[str, ...] | None:
    """The names of span labels held as ids: the `ClassLabel` of `label` in the entities' structs (a list of structs,
    or a `Sequence` of them, which `datasets` keeps as a struct of lists); None for labels written as strings."""
    struct = feature[0] if isinstance(feature, list) and feature else getattr(feature, "feature", feature)
    label = struct.get("label") if isinstance(struct, dict) else None
    label = getattr(label, "feature", label)
    return tuple(label.names) if isinstance(label, datasets.ClassLabel) else None


def _sentence_rows(datasets: Any, where: str, table: Any) -> Any:
    """OntoNotes' layout (`conll2012_ontonotesv5`), a row per document whose `sentences` hold `words` and
    `named_entities`, as a row per sentence whose group is its document (as CoNLL's -DOCSTART- groups)."""
    kind = table.features["sentences"]  # `datasets` before 4 keeps a declared `[{...}]` as a plain list
    sentence = kind[0] if isinstance(kind, list) and kind else getattr(kind, "feature", None)
    if not isinstance(sentence, dict) or not {"words", "named_entities"} <= sentence.keys():
        raise DataError(
            f"{where}: column 'sentences' holds {table.features['sentences']}; expected sentences of 'words' and "
            "'named_entities' (OntoNotes' layout), or set data.columns.tokens"
        )
    ids = table["document_id"] if "document_id" in table.column_names else range(len(table))
    rows: dict[str, list[Any]] = {"tokens": [], "ner_tags": [], "group": []}
    for document, sentences in zip(ids, table["sentences"], strict=True):
        for each in _structs(sentences):
            rows["tokens"].append(each["words"])
            rows["ner_tags"].append(each["named_entities"])
            rows["group"].append(str(document))
    kinds = {"tokens": sentence["words"], "ner_tags": sentence["named_entities"], "group": datasets.Value("string")}
    return datasets.Dataset.from_dict(rows, features=datasets.Features(kinds))


def _structs(value: Any) -> Any:
    """A list of structs as a list of dicts: `datasets` gives a `Sequence` of structs as a dict of lists."""
    if not isinstance(value, dict):
        return value
    return [dict(zip(value, each, strict=True)) for each in zip(*value.values(), strict=True)]


def _column(where: str, table: Any, columns: Columns, usual: tuple[str, ...], setting: str) -> str:
    """The column of `table` holding `setting` (tokens or tags), as `data.columns` names it or among the `usual`."""
    chosen = columns.tokens if setting == "tokens" else columns.tags
    found = column(table.column_names, chosen, usual, columns.inherited)
    if found is None:
        raise DataError(
            f"{where}: none of the columns {list(usual)} found in {table.column_names}; set data.columns.{setting}"
        )
    if found not in table.column_names:
        raise DataError(f"{where}: data.columns.{setting}: no column {found!r}; the columns are {table.column_names}")
    return found


def _tag_names(
    datasets: Any, where: str, feature: Any, column: str, tag_names: Sequence[str] | None
) -> tuple[str, ...] | None:
    """Names of integer tags: the `ClassLabel` inside the column's list feature, or `tag_names`; None for strings."""
    inner = getattr(feature, "feature", None)
    if isinstance(inner, datasets.ClassLabel):
        if tag_names is not None and tuple(tag_names) != tuple(inner.names):
            raise DataError(
                f"{where}: data.tag_names {list(tag_names)} differ from the ClassLabel names {inner.names} "
                f"of column {column!r}; drop data.tag_names or make them equal"
            )
        return io_names(inner.names)
    if isinstance(inner, datasets.Value) and inner.dtype.startswith(("int", "uint")):
        if tag_names is None:
            raise TagNamesNeeded(f"{where}: column {column!r} holds integer tags without a ClassLabel feature")
        return io_names(tag_names)
    return None


def named_tags(where: str, row: int, column: str, tags: list[Any], names: Sequence[str]) -> list[Any]:
    """The names of tag ids `tags` (of row `row` of `where`, from 1), else an error naming the first bad id and the ids
    there are; one lookup per tag where all are ids in range (the usual case: millions of tags, no Python call each)."""
    if {*map(type, tags)} <= {int} and min(tags, default=0) >= 0 and max(tags, default=-1) < len(names):
        return [names[tag] for tag in tags]
    for tag in tags:
        if not (isinstance(tag, int) and not isinstance(tag, bool) and 0 <= tag < len(names)):
            raise DataError(
                f"{where}:{row}: tag id {tag!r} in {column!r} is not one of 0..{len(names) - 1} ({list(names)})"
            )
    return [names[tag] for tag in tags]
