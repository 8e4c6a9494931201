"""Seeded document-level splits, optionally stratified by which entity types a document holds."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

from data.documents import Document
from data.loaders import Dataset
from training.common.errors import DataError

NO_ENTITY = "<none>"


def stratification_keys(documents: Sequence[Document]) -> list[str]:
    """One stratum per document: its rarest entity type in the collection (or `<none>`)."""
    frequency = Counter(label for doc in documents for label in doc.entity_types)
    return [
        min(doc.entity_types, key=lambda label: (frequency[label], label)) if doc.entity_types else NO_ENTITY
        for doc in documents
    ]


def train_test_split(
    documents: Sequence[Document], test_size: float = 0.2, *, seed: int = 0, stratify: bool = False
) -> tuple[list[int], list[int]]:
    """Indices of a seeded train/test split; with `stratify`, each stratum is split in proportion."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    if len(documents) < 2:
        raise DataError(f"cannot split {len(documents)} document(s) into train and test; need at least 2")
    rng = random.Random(seed)
    keys = stratification_keys(documents) if stratify else [NO_ENTITY] * len(documents)
    strata: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        strata[key].append(index)
    test_total = min(len(documents) - 1, max(1, round(len(documents) * test_size)))
    allocation = _allocate({key: len(indices) for key, indices in strata.items()}, test_total)
    test: set[int] = set()
    for key in sorted(strata):
        rng.shuffle(strata[key])
        test.update(strata[key][: allocation[key]])
    return sorted(set(range(len(documents))) - test), sorted(test)


def _allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Test places per stratum: proportional (largest remainders), then moved so that every stratum of
    two or more documents has at least one on each side, rarest strata first, as far as `total` allows."""
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
    dataset: Dataset, fraction: float, *, seed: int = 0, stratify: bool = False, source: str = "train"
) -> Dataset:
    """A copy of `dataset` whose `validation` split is a seeded `fraction` of `source`, removed from it."""
    if "validation" in dataset:
        raise DataError("the dataset already has a validation split; hold_out would replace it")
    documents = dataset[source]
    train_index, held_index = train_test_split(documents, fraction, seed=seed, stratify=stratify)
    splits = dict(dataset)
    splits[source] = tuple(documents[i] for i in train_index)
    splits["validation"] = tuple(documents[i] for i in held_index)
    report = replace(dataset.report, documents={name: len(docs) for name, docs in splits.items()})
    return Dataset(splits, labels=dataset.labels, report=report)
