"""K-fold cross-validation splits at document level: seeded, stratified, group-aware, saved with the data's fingerprint.

Documents (or whole groups of them, largest first) are dealt to folds one unit at a time, each to the fold that
holds the smallest share so far of its documents' strata and of all documents. Without groups every stratum is
spread as evenly as its size allows and fold sizes differ by at most one; a stratum found in fewer than k documents
(or groups) cannot reach every fold, which `KFoldSplits.notes` records.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.loaders import Dataset
from data.splits import GroupBy, group_units, stratification_keys
from training.common.atomic import atomic_write_json
from training.common.errors import DataError

_FORMAT = "training.kfold-splits"
_VERSION = 1


@dataclass(frozen=True)
class Fold:
    """One fold: indices into the split's documents that train and that validate."""

    index: int
    train_indices: tuple[int, ...]
    validation_indices: tuple[int, ...]


@dataclass(frozen=True)
class KFoldSplits:
    """The k folds of one split of one dataset, and how they were made."""

    folds: tuple[Fold, ...]
    k: int
    seed: int
    stratify: bool
    group_by: str | None
    split: str
    dataset_fingerprint: str
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
        return atomic_write_json(
            path,
            {
                "format": _FORMAT,
                "version": _VERSION,
                "k": self.k,
                "seed": self.seed,
                "stratify": self.stratify,
                "group_by": self.group_by,
                "split": self.split,
                "dataset_fingerprint": self.dataset_fingerprint,
                "notes": list(self.notes),
                "folds": [
                    {"index": f.index, "train": list(f.train_indices), "validation": list(f.validation_indices)}
                    for f in self.folds
                ],
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], dataset: Dataset | None = None) -> KFoldSplits:
        """Read splits written by `save`; with `dataset`, also check they were made for it."""
        source = Path(path)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except OSError as error:
            raise DataError(f"{source}: cannot read k-fold splits ({error.strerror})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{source}: not valid JSON k-fold splits ({error})") from None
        splits = cls(**_parse(source, data))
        if dataset is not None:
            splits._check_dataset(dataset, f"{source} was")
        return splits

    def _check_dataset(self, dataset: Dataset, subject: str) -> None:
        if dataset.fingerprint != self.dataset_fingerprint:
            raise DataError(
                f"{subject} made for dataset {self.dataset_fingerprint[:12]}, this dataset is "
                f"{dataset.fingerprint[:12]}"
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

    `stratify` balances folds by each document's rarest entity type; `group_by="group"` (the default) keeps the
    documents of one `Document.group` together (a document without a group is a group of its own, so data without
    groups is dealt document by document); `None` deals every document on its own.
    """
    if split not in dataset:
        raise DataError(f"the dataset has no {split!r} split to cross-validate; it has {list(dataset)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"k must be an integer of at least 2 folds, got {k!r}")
    documents = dataset[split]
    units = group_units(documents, group_by)
    what = "groups" if len(units) < len(documents) else "documents"
    if k > len(units):
        hint = " (or set data.group_by: null to split the documents of a group)" if what == "groups" else ""
        raise DataError(f"k={k} folds need at least {k} {what}; the {split!r} split has {len(units)} {what}{hint}")
    keys = stratification_keys(documents) if stratify else [""] * len(documents)
    assignment, notes = _deal(units, keys, k, random.Random(seed), what)
    folds = tuple(
        Fold(
            index,
            tuple(i for i, fold in enumerate(assignment) if fold != index),
            tuple(i for i, fold in enumerate(assignment) if fold == index),
        )
        for index in range(k)
    )
    return KFoldSplits(folds, k, seed, stratify, group_by, split, dataset.fingerprint, tuple(notes))


def _deal(
    units: list[list[int]], keys: list[str], k: int, rng: random.Random, what: str
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
        f"stratum {key!r} has {reach[key]} {what} < k={k}: only {reach[key]} of {k} folds can validate on it"
        for key in sorted(reach)
        if key and reach[key] < k
    ]
    return assignment, notes


def _parse(source: Path, data: Any) -> dict[str, Any]:
    """The `KFoldSplits` fields of loaded JSON, after checking its shape and that the folds partition the documents."""
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise DataError(f"{source}: not a k-fold splits file (expected 'format': {_FORMAT!r})")
    if data.get("version") != _VERSION:
        raise DataError(
            f"{source}: splits format version {data.get('version')!r} is not supported; expected {_VERSION}"
        )
    expected_types = {
        "k": int,
        "seed": int,
        "stratify": bool,
        "group_by": (str, type(None)),
        "split": str,
        "dataset_fingerprint": str,
        "notes": list,
        "folds": list,
    }
    for name, expected in expected_types.items():
        value = data.get(name)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise DataError(f"{source}: field {name!r} is {value!r}; expected {_type_name(expected)}")
    folds = []
    for position, item in enumerate(data["folds"]):
        if not (
            isinstance(item, dict)
            and item.get("index") == position
            and _is_index_list(item.get("train"))
            and _is_index_list(item.get("validation"))
        ):
            raise DataError(
                f"{source}: folds[{position}] must be {{'index': {position}, 'train': [...], "
                "'validation': [...]}} with integer indices"
            )
        folds.append(Fold(position, tuple(item["train"]), tuple(item["validation"])))
    _check_partition(source, data["k"], folds)
    fields = {name: data[name] for name in ("k", "seed", "stratify", "group_by", "split", "dataset_fingerprint")}
    return {**fields, "folds": tuple(folds), "notes": tuple(str(note) for note in data["notes"])}


def _check_partition(source: Path, k: int, folds: list[Fold]) -> None:
    if len(folds) != k:
        raise DataError(f"{source}: k is {k} but the file has {len(folds)} folds")
    validation = [i for fold in folds for i in fold.validation_indices]
    everything = set(validation)
    if len(everything) != len(validation) or everything != set(range(len(validation))):
        raise DataError(f"{source}: the validation folds do not cover documents 0 to {len(validation) - 1} once each")
    for fold in folds:
        if sorted(fold.train_indices + fold.validation_indices) != list(range(len(validation))):
            raise DataError(f"{source}: fold {fold.index}'s train and validation indices overlap or miss documents")


def _is_index_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in value)


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {int: "an integer", bool: "true or false", str: "a string", list: "a list", type(None): "null"}
    options = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names[option] for option in options)
