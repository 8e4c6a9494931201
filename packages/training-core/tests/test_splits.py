"""Seeded document-level splits and hold-out validation sets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from data.documents import Document, Span
from data.loaders import Dataset
from data.splits import hold_out, stratification_keys, train_test_split
from training.common.errors import DataError


def doc(index: int, *labels: str) -> Document:
    """'x x ... x' with one one-letter entity per label on the first words."""
    spans = tuple(Span(2 * k, 2 * k + 1, label) for k, label in enumerate(labels))
    return Document.from_spans(f"d{index}", " ".join("x" * (len(labels) + 1)), spans)


def corpus(common: int, rare: int, plain: int = 0) -> list[Document]:
    docs = [doc(i, "PER") for i in range(common)]
    docs += [doc(common + i, "PER", "RARE") for i in range(rare)]
    docs += [doc(common + rare + i) for i in range(plain)]
    return docs


def types(docs: list[Document], indices: list[int]) -> set[str]:
    return {label for i in indices for label in docs[i].entity_types}


def test_split_is_disjoint_covers_everything_and_has_the_asked_size() -> None:
    docs = corpus(20, 0, 5)
    train, test = train_test_split(docs, 0.2, seed=1)
    assert set(train).isdisjoint(test)
    assert sorted(train + test) == list(range(25))
    assert len(test) == 5
    assert train == sorted(train) and test == sorted(test)


def test_split_is_deterministic_by_seed() -> None:
    docs = corpus(30, 0)
    assert train_test_split(docs, 0.3, seed=7) == train_test_split(docs, 0.3, seed=7)
    assert train_test_split(docs, 0.3, seed=7) != train_test_split(docs, 0.3, seed=8)


def test_stratification_key_is_the_rarest_type() -> None:
    assert stratification_keys(corpus(3, 1, 1)) == ["PER", "PER", "PER", "RARE", "<none>"]


@pytest.mark.parametrize(("common", "rare", "plain", "test_size"), [(8, 2, 0, 0.2), (16, 2, 2, 0.2), (40, 3, 10, 0.1)])
def test_stratified_split_keeps_rare_types_on_both_sides(common: int, rare: int, plain: int, test_size: float) -> None:
    docs = corpus(common, rare, plain)
    for seed in range(5):
        train, test = train_test_split(docs, test_size, seed=seed, stratify=True)
        assert types(docs, train) == types(docs, test) == {"PER", "RARE"}
        assert len(test) == round(len(docs) * test_size)


def test_stratified_split_is_proportional() -> None:
    docs = corpus(60, 20, 20)
    train, test = train_test_split(docs, 0.25, seed=3, stratify=True)
    keys = stratification_keys(docs)
    assert sorted(keys[i] for i in test).count("RARE") == 5
    assert sorted(keys[i] for i in test).count("<none>") == 5
    assert len(train) == 75


def test_a_single_document_of_a_type_goes_to_one_side() -> None:
    docs = corpus(9, 1)
    train, test = train_test_split(docs, 0.2, seed=0, stratify=True)
    assert len(test) == 2
    assert sorted(train + test) == list(range(10))


def test_tiny_sets_keep_one_document_on_each_side() -> None:
    assert train_test_split(corpus(2, 0), 0.9, seed=0) in (([0], [1]), ([1], [0]))
    assert len(train_test_split(corpus(3, 0), 0.01, seed=0)[1]) == 1


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.5, 2])
def test_test_size_must_be_a_fraction(test_size: float) -> None:
    with pytest.raises(DataError, match=f"test_size must be between 0 and 1 \\(exclusive\\), got {test_size}"):
        train_test_split(corpus(5, 0), test_size)


def test_one_document_cannot_be_split() -> None:
    with pytest.raises(DataError, match=r"cannot split 1 document into train and test; need at least 2"):
        train_test_split(corpus(1, 0), 0.5)
    with pytest.raises(DataError, match=r"cannot split 1 document into train and validation; need at least 2"):
        hold_out(Dataset({"train": corpus(1, 0)}), 0.5)  # it named a test split the run never made


def test_hold_out_moves_a_seeded_fraction_of_train_to_validation() -> None:
    docs = corpus(16, 4)
    dataset = Dataset({"train": docs, "test": corpus(2, 0)})
    held = hold_out(dataset, 0.25, seed=5, stratify=True)
    assert list(held) == ["train", "test", "validation"]
    assert len(held["train"]) == 15 and len(held["validation"]) == 5
    assert {d.id for d in held["train"]}.isdisjoint(d.id for d in held["validation"])
    assert {d.id for d in held["train"] + held["validation"]} == {d.id for d in docs}
    assert held["test"] == dataset["test"]
    assert any("RARE" in d.entity_types for d in held["validation"])
    assert held.report.documents == {"train": 15, "test": 2, "validation": 5}
    assert held.labels == dataset.labels
    assert hold_out(dataset, 0.25, seed=5, stratify=True).fingerprint == held.fingerprint
    assert held.fingerprint != dataset.fingerprint


def grouped(groups: int, size: int) -> list[Document]:
    """`groups` articles of `size` sentences each, one PER entity per sentence."""
    return [replace(doc(g * size + s, "PER"), group=f"article-{g}") for g in range(groups) for s in range(size)]


def test_hold_out_keeps_the_sentences_of_one_article_together_by_default() -> None:
    dataset = Dataset({"train": grouped(10, 4)})
    held = hold_out(dataset, 0.3, seed=2, stratify=True)
    train_groups = {d.group for d in held["train"]}
    validation_groups = {d.group for d in held["validation"]}
    assert not train_groups & validation_groups
    assert len(validation_groups) == 3 and len(held["validation"]) == 12  # 30% of the articles
    assert held.report.documents == {"train": 28, "validation": 12}


def test_grouping_can_be_switched_off_and_ungrouped_data_splits_per_document() -> None:
    docs = grouped(10, 4)
    _, test = train_test_split(docs, 0.3, seed=2, group_by=None)
    assert len(test) == 12 and len({docs[i].group for i in test}) > 3
    plain = corpus(20, 0, 5)
    assert train_test_split(plain, 0.2, seed=1) == train_test_split(plain, 0.2, seed=1, group_by=None)


def test_one_group_cannot_be_split() -> None:
    with pytest.raises(DataError, match=r"^cannot split 1 group into train and test; need at least 2 \(or set"):
        train_test_split(grouped(1, 5), 0.2)


def test_hold_out_refuses_to_replace_a_validation_split() -> None:
    dataset = Dataset({"train": corpus(4, 0), "validation": corpus(2, 0)})
    with pytest.raises(DataError, match="the dataset already has a validation split; hold_out would replace it"):
        hold_out(dataset, 0.2)
