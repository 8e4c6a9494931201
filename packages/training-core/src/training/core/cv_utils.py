"""K-fold cross-validation splits at document level: seeded, stratified, group-aware, saved with the data's fingerprint.

Documents (or whole groups, largest first) are dealt one unit at a time to the fold holding the smallest share so far
of the unit's strata and of all documents; a stratum in fewer than k units cannot reach every fold (`notes` says so).
"""

from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from data.loaders import Dataset
from data.splits import GroupBy, group_units, stratification_keys
from training.common.atomic import atomic_write_json
from training.common.errors import ConfigError, DataError
from training.common.plural import counted
from training.config.validation import read_record

_FORMAT = "training.kfold-splits"
_VERSION = 1


@dataclass(frozen=True)
class Fold:
    """One fold: indices into the split's documents that train and that validate."""

    index: int
    train_indices: tuple[int, ...]
    validation_indices: tuple[int, ...]


class _FoldRecord(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True)

    index: int
    train: list[int]
    validation: list[int]


class _SplitsFields(BaseModel):
    """How the splits were made, and of which data: fields of both `KFoldSplits` and its file."""

    model_config = ConfigDict(frozen=True)

    k: int
    seed: int
    stratify: bool
    group_by: GroupBy
    split: str
    dataset_fingerprint: str


_SHARED = set(_SplitsFields.model_fields)


class _SplitsFile(_SplitsFields):
    """The splits file (`splits.json`) as `KFoldSplits.save` writes it; the folds must partition the documents."""

    model_config = ConfigDict(strict=True)

    format: Literal["training.kfold-splits"]
    version: Literal[1]
    notes: list[str]
    folds: list[_FoldRecord]

    @model_validator(mode="before")
    @classmethod
    def _known_format(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a k-fold splits file (expected 'format': {_FORMAT!r})")
        if data.get("version") != _VERSION:
            raise ValueError(f"splits format version {data.get('version')!r} is not supported; expected {_VERSION}")
        return data

    @model_validator(mode="after")
    def _partition(self) -> _SplitsFile:
        if self.k < 2:
            raise ValueError(f"k is {self.k}; k-fold splits need at least 2 folds")
        if len(self.folds) != self.k:
            raise ValueError(f"k is {self.k} but the file has {len(self.folds)} folds")
        documents = list(range(sum(len(fold.validation) for fold in self.folds)))
        if sorted(i for fold in self.folds for i in fold.validation) != documents:
            raise ValueError(f"the validation folds do not cover documents 0 to {len(documents) - 1} once each")
        for position, fold in enumerate(self.folds):
            if fold.index != position:
                raise ValueError(f"folds[{position}] has index {fold.index}; expected {position}")
            if sorted(fold.train + fold.validation) != documents:
                raise ValueError(f"fold {position}'s train and validation indices overlap or miss documents")
        return self


class KFoldSplits(_SplitsFields):
    """The k folds of one split of one dataset, and how they were made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folds: tuple[Fold, ...]
    notes: tuple[str, ...] = ()

    def fold_dataset(self, dataset: Dataset, index: int) -> Dataset:
        """The `train` and `validation` documents of fold `index`, with the parent's entity types."""
        self._check_dataset(dataset, "these splits were")
        if not 0 <= index < self.k:
            raise DataError(f"fold {index} does not exist; these splits have k={self.k} folds (0 to {self.k - 1})")
        fold, documents = self.folds[index], dataset[self.split]
        train = tuple(documents[i] for i in fold.train_indices)
        validation = tuple(documents[i] for i in fold.validation_indices)
        report = dataset.report.model_copy(
            update={
                "source": f"{dataset.report.source} (fold {index} of {self.k})",
                "documents": {"train": len(train), "validation": len(validation)},
            }
        )
        return Dataset({"train": train, "validation": validation}, labels=dataset.labels, report=report)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the folds as JSON (atomically), with a format version and the dataset fingerprint."""
        folds = [
            _FoldRecord(index=f.index, train=list(f.train_indices), validation=list(f.validation_indices))
            for f in self.folds
        ]
        shared = self.model_dump(include=_SHARED)
        record = _SplitsFile(format=_FORMAT, version=_VERSION, **shared, notes=list(self.notes), folds=folds)
        return atomic_write_json(path, record.model_dump())  # keys sorted: the same file as ever

    @classmethod
    def load(cls, path: str | os.PathLike[str], dataset: Dataset | None = None) -> KFoldSplits:
        """Read splits written by `save`; with `dataset`, also check they were made for it."""
        try:
            record = read_record(_SplitsFile, path, "k-fold splits file")
        except ConfigError as error:  # the splits belong to the data: a fault in them is a data error
            raise DataError(str(error)) from None
        folds = tuple(Fold(f.index, tuple(f.train), tuple(f.validation)) for f in record.folds)
        splits = cls(**record.model_dump(include=_SHARED), folds=folds, notes=tuple(record.notes))
        if dataset is not None:
            splits._check_dataset(dataset, f"{path} was")
        return splits

    def _check_dataset(self, dataset: Dataset, subject: str) -> None:
        if dataset.fingerprint != self.dataset_fingerprint:
            raise DataError(
                f"{subject} made for dataset {self.dataset_fingerprint[:12]}, this dataset is "
                f"{dataset.fingerprint[:12]}"
            )
        documents = sum(len(fold.validation_indices) for fold in self.folds)  # an edited file: its split or indices
        if self.split not in dataset or len(dataset[self.split]) != documents:
            has = len(dataset[self.split]) if self.split in dataset else "none"
            raise DataError(
                f"{subject} made for {counted(documents, repr(self.split) + ' document')}; this dataset has {has}"
            )


def create_kfold_splits(
    dataset: Dataset,
    k: int = 5,
    *,
    seed: int = 0,
    stratify: bool = True,
    group_by: GroupBy = "group",
    split: str = "train",
) -> KFoldSplits:
    """Assign the documents of `dataset[split]` to `k` folds, deterministically for a `seed`.

    `stratify` balances folds by each document's rarest entity type; `group_by="group"` keeps the documents of one
    `Document.group` together (a document without one is its own group); `None` deals every document on its own.
    """
    Dataset.check(dataset)  # a list of documents was refused with its whole repr as a dataset's splits
    if split not in dataset:
        raise DataError(f"the dataset has no {split!r} split to cross-validate; it has {list(dataset)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"k must be an integer of at least 2 folds, got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):  # pydantic's ValidationError once the folds were dealt
        raise DataError(f"seed must be an integer, got {seed!r}")
    documents = dataset[split]
    units = group_units(documents, group_by)
    unit = "group" if len(units) < len(documents) else "document"
    if k > len(units):
        hint = " (or set data.group_by: null to split the documents of a group)" if unit == "group" else ""
        has = counted(len(units), unit)
        raise DataError(f"k={k} folds need at least {k} {unit}s; the {split!r} split has {has}{hint}")
    keys = stratification_keys(documents) if stratify else [""] * len(documents)
    assignment, notes = _deal(units, keys, k, random.Random(seed), unit)
    folds = tuple(
        Fold(
            index,
            tuple(i for i, fold in enumerate(assignment) if fold != index),
            tuple(i for i, fold in enumerate(assignment) if fold == index),
        )
        for index in range(k)
    )
    made = {"k": k, "seed": seed, "stratify": stratify, "group_by": group_by, "split": split}
    return KFoldSplits(folds=folds, **made, dataset_fingerprint=dataset.fingerprint, notes=tuple(notes))


def _deal(
    units: list[list[int]], keys: list[str], k: int, rng: random.Random, unit_name: str
) -> tuple[list[int], list[str]]:
    """Fold of each document, and notes on strata found in fewer than k units."""
    total = Counter(keys)
    unit_strata = [Counter(keys[i] for i in unit) for unit in units]
    rarest = [min(strata, key=lambda key: (total[key], key)) for strata in unit_strata]
    order = list(range(len(units)))
    rng.shuffle(order)
    # Largest units first (as GroupKFold does), then stratum by stratum, rarest first; the shuffle breaks ties.
    order.sort(key=lambda u: (-len(units[u]), total[rarest[u]], rarest[u]))
    fold_sizes = [0] * k
    held: dict[str, list[int]] = defaultdict(lambda: [0] * k)  # documents of each stratum in each fold

    def cost(unit: int, fold: int) -> tuple[float, int, int]:
        # The share of each of the unit's strata, and of all documents, that the fold already holds.
        fill = sum(count * held[key][fold] / total[key] for key, count in unit_strata[unit].items())
        return fill + len(units[unit]) * fold_sizes[fold] / len(keys), fold_sizes[fold], fold

    assignment = [0] * len(keys)
    for u in order:
        fold = min(range(k), key=lambda f: cost(u, f))
        fold_sizes[fold] += len(units[u])
        for key, count in unit_strata[u].items():
            held[key][fold] += count
        for index in units[u]:
            assignment[index] = fold
    reach = Counter(key for strata in unit_strata for key in strata)
    notes = [
        f"stratum {key!r} has {counted(reach[key], unit_name)} < k={k}: only {reach[key]} of {k} folds can validate "
        "on it"
        for key in sorted(reach)
        if key and reach[key] < k
    ]
    return assignment, notes
