"""Seeded document-level splits, optionally stratified by which entity types a document holds and grouped.

Grouping (`group_by="group"`, the default) keeps the documents of one `Document.group` (a CoNLL `-DOCSTART-`
document) on one side, so sentences of one article never land in both train and validation.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from data.documents import Document
from data.loaders import Dataset
from training.common.errors import DataError
from training.common.plural import counted

NO_ENTITY = "<none>"
GroupBy = Literal["group"] | None
GROUP_FIELDS = ("group",)


def group_units(documents: Sequence[Document], group_by: GroupBy) -> list[list[int]]:
    """Document indices that move together: one list per group (or per ungrouped document), in first-seen order."""
    if group_by is not None and group_by not in GROUP_FIELDS:
        raise DataError(f"group_by must be None or one of {list(GROUP_FIELDS)}, got {group_by!r}")
    if group_by is None:
        return [[index] for index in range(len(documents))]
    groups: dict[tuple[str, Any], list[int]] = defaultdict(list)
    for index, doc in enumerate(documents):
        groups[("group", doc.group) if doc.group is not None else ("document", index)].append(index)
    return list(groups.values())


def stratification_keys(documents: Sequence[Document]) -> list[str]:
    """One stratum per document: its rarest entity type in the collection (or `<none>`)."""
    frequency = Counter(label for doc in documents for label in doc.entity_types)
    return [
        min(doc.entity_types, key=lambda label: (frequency[label], label)) if doc.entity_types else NO_ENTITY
        for doc in documents
    ]


def train_test_split(
    documents: Sequence[Document],
    test_size: float = 0.2,
    *,
    seed: int = 0,
    stratify: bool = False,
    group_by: GroupBy = "group",
    held: str = "test",
) -> tuple[list[int], list[int]]:
    """Indices of a seeded train/test split; with `stratify`, each stratum is split in proportion. With groups,
    `test_size` is the share of groups (as `GroupShuffleSplit`), each stratified by its rarest entity type. `held`
    names the held-out part in errors."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    units = group_units(documents, group_by)
    what = "groups" if len(units) < len(documents) else "documents"
    if len(units) < 2:
        raise DataError(
            f"cannot split {counted(len(units), what[:-1])} into train and {held}; need at least 2"
            + (" (or set data.group_by: null)" if what == "groups" else "")
        )
    rng = random.Random(seed)
    keys = stratification_keys(documents) if stratify else [NO_ENTITY] * len(documents)
    frequency = Counter(keys)
    strata: dict[str, list[int]] = defaultdict(list)
    for position, unit in enumerate(units):
        strata[min((keys[i] for i in unit), key=lambda key: (frequency[key], key))].append(position)
    test_total = min(len(units) - 1, max(1, round(len(units) * test_size)))
    allocation = _allocate({key: len(positions) for key, positions in strata.items()}, test_total)
    test: set[int] = set()
    for key in sorted(strata):
        rng.shuffle(strata[key])
        test.update(index for position in strata[key][: allocation[key]] for index in units[position])
    return sorted(set(range(len(documents))) - test), sorted(test)


def _allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Test places per stratum: proportional (largest remainders), then moved so that a stratum of two or more has
    one on each side, rarest first, as far as `total` allows."""
    quotas = {key: size * total / sum(sizes.values()) for key, size in sizes.items()}
    allocation = {key: int(quota) for key, quota in quotas.items()}
    by_remainder = sorted(quotas, key=lambda key: (allocation[key] - quotas[key], key))
    for key in by_remainder[: total - sum(allocation.values())]:
        allocation[key] += 1
    low = {key: 1 if size > 1 else 0 for key, size in sizes.items()}
    high = {key: size - 1 if size > 1 else size for key, size in sizes.items()}
    for key in sorted(sizes, key=lambda key: (sizes[key], key)):
        while allocation[key] < low[key]:
            donors = [other for other in sizes if allocation[other] > low[other] and other != key]
            if not donors:
                break
            allocation[max(donors, key=lambda other: (allocation[other] - quotas[other], other))] -= 1
            allocation[key] += 1
        while allocation[key] > high[key]:
            takers = [other for other in sizes if allocation[other] < high[other] and other != key]
            if not takers:
                break
            allocation[max(takers, key=lambda other: (quotas[other] - allocation[other], other))] += 1
            allocation[key] -= 1
    return allocation


def hold_out(
    dataset: Dataset,
    fraction: float,
    *,
    seed: int = 0,
    stratify: bool = False,
    source: str = "train",
    group_by: GroupBy = "group",
) -> Dataset:
    """A copy of `dataset` whose `validation` split is a seeded `fraction` of `source` (whole groups), taken from it."""
    if "validation" in dataset:
        raise DataError("the dataset already has a validation split; hold_out would replace it")
    documents = dataset[source]
    train_index, held_index = train_test_split(
        documents, fraction, seed=seed, stratify=stratify, group_by=group_by, held="validation"
    )
    splits = dict(dataset)
    splits[source] = tuple(documents[i] for i in train_index)
    splits["validation"] = tuple(documents[i] for i in held_index)
    report = dataset.report.model_copy(update={"documents": {name: len(docs) for name, docs in splits.items()}})
    return Dataset(splits, labels=dataset.labels, report=report)
