"""K-fold splits: a partition of documents, seeded, stratified, group-aware, saved and loaded with the data."""

import json

import pytest

from data.documents import Document, Span
from data.loaders import Dataset, load_dataset
from data.splits import stratification_keys
from training.common.errors import DataError, InputError
from training.core.cv_utils import Fold, KFoldSplits, create_kfold_splits


def _document(index: int, labels: tuple[str, ...], group: str | None = None) -> Document:
    """A document naming one entity of each label, e.g. 'Report 3: Ann in Rome on Monday'."""
    words = {"PER": "Ann", "LOC": "Rome", "ORG": "Acme", "DATE": "Monday"}
    text, spans = f"Report {index}:", []
    for label in labels:
        text += " with "
        spans.append(Span(len(text), len(text) + len(words[label]), label))
        text += words[label]
    return Document.from_spans(f"doc-{index}", text, tuple(spans), group)


def _dataset(count: int = 40, rare_every: int = 8, groups: int | None = None) -> Dataset:
    """`count` documents with PER, some with LOC, every `rare_every`-th with DATE; optional groups of mixed size."""
    documents = []
    for index in range(count):
        labels = ("PER", "LOC") if index % 2 else ("PER",)
        if index % rare_every == 0:
            labels += ("DATE",)
        group = f"g{index * index % groups}" if groups and index % 5 else None
        documents.append(_document(index, labels, group))
    return Dataset({"train": documents, "test": [_document(99, ("PER",))]}, labels=("DATE", "LOC", "ORG", "PER"))


def _assert_partition(splits: KFoldSplits, count: int) -> None:
    validation = sorted(i for fold in splits.folds for i in fold.validation_indices)
    assert validation == list(range(count)), "every document validates in exactly one fold"
    for fold in splits.folds:
        assert not set(fold.train_indices) & set(fold.validation_indices)
        assert sorted(fold.train_indices + fold.validation_indices) == list(range(count))


def test_folds_partition_the_documents_without_leakage():
    splits = create_kfold_splits(_dataset(), k=5)

    _assert_partition(splits, 40)
    assert [fold.index for fold in splits.folds] == [0, 1, 2, 3, 4]
    assert {len(fold.validation_indices) for fold in splits.folds} == {8}


@pytest.mark.parametrize("stratify", [True, False])
def test_fold_sizes_differ_by_at_most_one(stratify):
    splits = create_kfold_splits(_dataset(count=23), k=4, stratify=stratify)

    _assert_partition(splits, 23)
    assert sorted(len(fold.validation_indices) for fold in splits.folds) == [5, 6, 6, 6]


def test_each_stratum_and_each_fold_size_differ_by_at_most_one_over_seeds():
    dataset = _dataset(count=37, rare_every=6)
    keys = stratification_keys(dataset["train"])

    for seed in range(10):
        for k in (2, 3, 5, 7):
            splits = create_kfold_splits(dataset, k=k, seed=seed)
            sizes = [len(fold.validation_indices) for fold in splits.folds]
            assert max(sizes) - min(sizes) <= 1, (seed, k, sizes)
            for key in set(keys):
                counts = [sum(keys[i] == key for i in fold.validation_indices) for fold in splits.folds]
                assert max(counts) - min(counts) <= 1, (seed, k, key, counts)


def test_same_seed_same_folds_other_seed_other_folds():
    dataset = _dataset()

    first = create_kfold_splits(dataset, k=5, seed=7)

    assert create_kfold_splits(dataset, k=5, seed=7) == first
    assert create_kfold_splits(dataset, k=5, seed=8).folds != first.folds


def test_stratification_spreads_a_rare_type_over_every_fold():
    dataset = _dataset(count=40, rare_every=8)  # DATE in documents 0, 8, 16, 24, 32
    dated = {index for index, doc in enumerate(dataset["train"]) if "DATE" in doc.entity_types}

    splits = create_kfold_splits(dataset, k=5)

    assert [len(dated & set(fold.validation_indices)) for fold in splits.folds] == [1, 1, 1, 1, 1]
    assert splits.notes == ()


def test_a_stratum_smaller_than_k_is_spread_one_per_fold_and_noted():
    dataset = _dataset(count=40, rare_every=15)  # DATE in documents 0, 15, 30
    dated = {index for index, doc in enumerate(dataset["train"]) if "DATE" in doc.entity_types}

    splits = create_kfold_splits(dataset, k=5)

    assert sorted(len(dated & set(fold.validation_indices)) for fold in splits.folds) == [0, 0, 1, 1, 1]
    assert splits.notes == ("stratum 'DATE' has 3 documents < k=5: only 3 of 5 folds can validate on it",)


def test_groups_never_straddle_train_and_validation():
    dataset = _dataset(count=40, groups=6)
    documents = dataset["train"]
    group_of = [doc.group or doc.id for doc in documents]

    splits = create_kfold_splits(dataset, k=4, group_by="group")

    _assert_partition(splits, 40)
    for fold in splits.folds:
        validation_groups = {group_of[i] for i in fold.validation_indices}
        train_groups = {group_of[i] for i in fold.train_indices}
        assert not validation_groups & train_groups
    sizes = [len(fold.validation_indices) for fold in splits.folds]
    assert max(sizes) - min(sizes) <= max(group_of.count(group) for group in set(group_of))


def test_groups_are_kept_together_by_default():
    dataset = _dataset(count=40, groups=6)
    group_of = [doc.group or doc.id for doc in dataset["train"]]

    splits = create_kfold_splits(dataset, k=4)

    assert splits.group_by == "group"
    for fold in splits.folds:
        assert not {group_of[i] for i in fold.validation_indices} & {group_of[i] for i in fold.train_indices}


def test_conll_docstart_documents_stay_in_one_fold(tmp_path):
    articles = ["-DOCSTART- O\n\n" + "".join(f"W{a}s{s} B-PER\nsaid O\n\n" for s in range(a + 2)) for a in range(6)]
    path = tmp_path / "train.conll"
    path.write_text("".join(articles), encoding="utf-8")
    dataset = load_dataset(path)
    article_of = [doc.group for doc in dataset["train"]]
    assert len(article_of) == sum(a + 2 for a in range(6)) and len(set(article_of)) == 6

    splits = create_kfold_splits(dataset, k=3, stratify=False)

    for fold in splits.folds:
        assert not {article_of[i] for i in fold.validation_indices} & {article_of[i] for i in fold.train_indices}
    ungrouped = create_kfold_splits(dataset, k=3, stratify=False, group_by=None)
    assert any(
        {article_of[i] for i in fold.validation_indices} & {article_of[i] for i in fold.train_indices}
        for fold in ungrouped.folds
    )


def test_conll_without_docstart_splits_by_sentence(tmp_path):
    """WNUT-17 and WikiNER files have no -DOCSTART- lines: each sentence is its own unit, not one group for all."""
    path = tmp_path / "train.conll"
    path.write_text("".join(f"@user{s}\tB-person\nsaid\tO\n\n" for s in range(6)), encoding="utf-8")
    dataset = load_dataset(path)
    assert [doc.group for doc in dataset["train"]] == [None] * 6

    splits = create_kfold_splits(dataset, k=3, stratify=False)

    assert [len(fold.validation_indices) for fold in splits.folds] == [2, 2, 2]


def test_every_document_its_own_group_when_none_has_one():
    dataset = _dataset(count=12)

    grouped = create_kfold_splits(dataset, k=3, group_by="group")

    _assert_partition(grouped, 12)
    assert grouped.group_by == "group"


def test_invalid_requests_are_data_errors_with_the_numbers():
    dataset = _dataset(count=6, groups=2)  # groups g0, g1 plus the ungrouped documents 0 and 5

    with pytest.raises(DataError, match=r"^k must be an integer of at least 2 folds, got 1$"):
        create_kfold_splits(dataset, k=1)
    with pytest.raises(DataError, match=r"^k=7 folds need at least 7 documents; the 'train' split has 6 documents$"):
        create_kfold_splits(dataset, k=7, group_by=None)
    with pytest.raises(
        DataError,
        match=r"^k=5 folds need at least 5 groups; the 'train' split has 4 groups "
        r"\(or set data.group_by: null to split the documents of a group\)$",
    ):
        create_kfold_splits(dataset, k=5)
    with pytest.raises(DataError, match=r"^the dataset has no 'validation' split to cross-validate; it has \['train'"):
        create_kfold_splits(dataset, split="validation")
    with pytest.raises(DataError, match=r"^group_by must be None or one of \['group'\], got 'author'$"):
        create_kfold_splits(dataset, group_by="author")
    with pytest.raises(DataError, match=r"^seed must be an integer, got '1'$"):
        create_kfold_splits(dataset, k=2, seed="1")  # pydantic's ValidationError, once the folds were dealt
    documents = r"got list \[Document\(id='doc-0', .{0,40}$"  # the whole list, every document's words and spans
    with pytest.raises(InputError, match=rf"^dataset: expected a Dataset \(load_dataset\(path\) .*\), {documents}"):
        create_kfold_splits(list(dataset["train"]), k=2)


def test_save_and_load_round_trip(tmp_path):
    dataset = _dataset(count=40, rare_every=15, groups=6)
    splits = create_kfold_splits(dataset, k=4, seed=3, group_by="group")

    path = splits.save(tmp_path / "splits.json")

    assert path == tmp_path / "splits.json"
    content = json.loads(path.read_text())
    assert (content["version"], content["dataset_fingerprint"]) == (1, dataset.fingerprint)
    assert KFoldSplits.load(path) == splits
    assert KFoldSplits.load(path, dataset) == splits


def test_load_for_another_dataset_names_both_fingerprints(tmp_path):
    dataset, other = _dataset(count=20), _dataset(count=21)
    path = create_kfold_splits(dataset, k=5).save(tmp_path / "splits.json")

    expected = f"{path} was made for dataset {dataset.fingerprint[:12]}, this dataset is {other.fingerprint[:12]}"
    with pytest.raises(DataError, match=f"^{expected}$"):
        KFoldSplits.load(path, other)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not a readable k-fold splits file"),
        ('{"format": "something else"}', "not a k-fold splits file"),
        ("[1, 2]", "not a k-fold splits file"),
    ],
)
def test_corrupt_file_error_names_it(tmp_path, content, problem):
    path = tmp_path / "splits.json"
    path.write_text(content)

    with pytest.raises(DataError, match=f"^{path}: {problem}"):
        KFoldSplits.load(path)


def test_file_with_wrong_fields_or_folds_is_rejected(tmp_path):
    path = create_kfold_splits(_dataset(count=10), k=2).save(tmp_path / "splits.json")
    good = json.loads(path.read_text())

    def load_with(**changes):
        path.write_text(json.dumps({**good, **changes}))
        return KFoldSplits.load(path)

    with pytest.raises(DataError, match=r"splits format version 2 is not supported; expected 1$"):
        load_with(version=2)
    with pytest.raises(DataError, match=r": k: expected a valid integer, got '2' \(quoted, it is text: .*\)$"):
        load_with(k="2")
    with pytest.raises(DataError, match=r": folds\.1\.train: required key is missing; .*: folds\.1\.validation: "):
        load_with(folds=[good["folds"][0], {"index": 1}])
    with pytest.raises(DataError, match=r"the validation folds do not cover documents 0 to 9 once each$"):
        load_with(folds=[good["folds"][0], good["folds"][0] | {"index": 1}])
    with pytest.raises(DataError, match=r"k is 3 but the file has 2 folds$"):
        load_with(k=3)
    with pytest.raises(DataError, match=f"^{tmp_path / 'missing.json'}: no such k-fold splits file$"):
        KFoldSplits.load(tmp_path / "missing.json")


def test_an_edited_splits_file_is_refused_before_its_indices_are_used(tmp_path):
    """A file whose split, k or group_by was edited passed the fingerprint check, then failed with an IndexError."""
    dataset = _dataset(count=10)
    path = create_kfold_splits(dataset, k=2).save(tmp_path / "splits.json")
    good = json.loads(path.read_text())
    single = {"index": 0, "train": [], "validation": list(range(10))}
    for changes, problem in [
        ({"split": "test"}, f"{path} was made for 10 'test' documents; this dataset has 1"),
        ({"split": "dev"}, f"{path} was made for 10 'dev' documents; this dataset has none"),
        ({"k": 1, "folds": [single]}, f"{path}: k is 1; k-fold splits need at least 2 folds"),
        ({"group_by": "author"}, f"{path}: group_by: expected 'group', got 'author'"),
    ]:
        path.write_text(json.dumps({**good, **changes}))
        with pytest.raises(DataError) as raised:
            KFoldSplits.load(path, dataset)
        assert str(raised.value) == problem


def test_a_splits_file_of_the_saved_shape_reads_as_it_was_written(tmp_path):
    path = tmp_path / "splits.json"
    folds = [{"index": 0, "train": [2, 3], "validation": [0, 1]}, {"index": 1, "train": [0, 1], "validation": [2, 3]}]
    fields = {"k": 2, "seed": 7, "stratify": False, "group_by": None, "split": "train", "dataset_fingerprint": "ab"}
    content = {"format": "training.kfold-splits", "version": 1, **fields, "notes": ["a note"], "folds": folds}
    path.write_text(json.dumps(content))

    splits = KFoldSplits.load(path)

    assert splits == KFoldSplits(folds=(Fold(0, (2, 3), (0, 1)), Fold(1, (0, 1), (2, 3))), **fields, notes=("a note",))
    assert json.loads(splits.save(tmp_path / "again.json").read_text()) == content


def test_a_splits_file_with_misnumbered_folds_or_boolean_indices_is_rejected(tmp_path):
    path = create_kfold_splits(_dataset(count=10), k=2).save(tmp_path / "splits.json")
    good = json.loads(path.read_text())
    first, second = good["folds"]

    path.write_text(json.dumps({**good, "folds": [second, first]}))
    with pytest.raises(DataError, match=r"folds\[0\] has index 1; expected 0$"):
        KFoldSplits.load(path)
    path.write_text(json.dumps({**good, "folds": [first | {"train": [True, *first["train"][1:]]}, second]}))
    boolean = r"got True \(unquoted yes, no, on, off, true, false are booleans: write a number\)$"
    with pytest.raises(DataError, match=rf": folds\.0\.train\.0: expected a valid integer, {boolean}"):
        KFoldSplits.load(path)


def test_fold_dataset_holds_exactly_the_fold_and_the_parent_labels():
    dataset = _dataset(count=20)
    splits = create_kfold_splits(dataset, k=4)
    documents = dataset["train"]

    for fold in splits.folds:
        fold_data = splits.fold_dataset(dataset, fold.index)

        assert list(fold_data) == ["train", "validation"]
        assert fold_data["train"] == tuple(documents[i] for i in fold.train_indices)
        assert fold_data["validation"] == tuple(documents[i] for i in fold.validation_indices)
        assert not {doc.id for doc in fold_data["train"]} & {doc.id for doc in fold_data["validation"]}
        assert fold_data.labels == dataset.labels == ("DATE", "LOC", "ORG", "PER")  # ORG occurs nowhere
        assert fold_data.tag_names == dataset.tag_names


def test_fold_dataset_keeps_the_parent_s_load_report(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(f'{{"text": "Xavier{i} left", "annotations": [[0, 6, "PER"]]}}\n' for i in range(4)))
    dataset = load_dataset(path)

    fold_data = create_kfold_splits(dataset, k=2).fold_dataset(dataset, 1)

    assert fold_data.report.misaligned == dataset.report.misaligned and fold_data.report.misaligned["train"].count == 4
    assert fold_data.report.documents == {"train": 2, "validation": 2}
    assert fold_data.report.source == f"{path} (fold 1 of 2)"


def test_fold_dataset_checks_the_dataset_and_the_index():
    dataset = _dataset(count=20)
    splits = create_kfold_splits(dataset, k=4)
    other = _dataset(count=21)

    with pytest.raises(DataError, match=r"^these splits were made for dataset \w{12}, this dataset is \w{12}$"):
        splits.fold_dataset(other, 0)
    with pytest.raises(DataError, match=r"^fold 4 does not exist; these splits have k=4 folds \(0 to 3\)$"):
        splits.fold_dataset(dataset, 4)


def test_folds_are_frozen_records():
    fold = Fold(0, (1, 2), (0,))

    with pytest.raises(AttributeError):
        fold.index = 1  # type: ignore[misc]


def test_splits_refuse_an_unknown_field() -> None:
    from pydantic import ValidationError

    fields = {"k": 2, "seed": 0, "stratify": False, "group_by": None, "split": "train", "dataset_fingerprint": "x"}
    with pytest.raises(ValidationError, match="stratifyy"):
        KFoldSplits(**fields, folds=(), stratifyy=True)
