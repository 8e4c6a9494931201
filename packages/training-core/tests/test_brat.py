"""brat standoff folders: `NAME.txt` and `NAME.ann` pairs read as span documents, by folder or split subfolders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data.documents import Span
from data.loaders import load_dataset
from training.common.errors import DataError
from training.config import DataConfig

# brat cuts the span of General Motors at the line break: two fragments, one entity.
TEXT = "Paul lives in Paris, and General\nMotors pays him.\n"
ANN = (
    "T1\tPerson 0 4\tPaul\n"
    "T2\tLocation 14 19\tParis\n"
    "T3\tOrganization 25 32;33 39\tGeneral Motors\n"
    "R1\tLives Arg1:T1 Arg2:T2\n"
    "#1\tAnnotatorNotes T1\ta note\n"
    "A1\tNegated T1\n"
    "N1\tReference T1 Wikipedia:534366\tPaul\n"
)


def pair(folder: Path, name: str, text: str, ann: str, encoding: str = "utf-8") -> Path:
    """`folder` with the document `name`: its text and its annotations."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(text, encoding=encoding, newline="")
    (folder / f"{name}.ann").write_text(ann, encoding=encoding, newline="")
    return folder


def load_error(path: Path, **options: Any) -> str:
    with pytest.raises(DataError) as caught:
        load_dataset(path, **options)
    return str(caught.value)


def test_a_folder_of_pairs_is_the_train_split_of_its_documents_by_name(tmp_path: Path) -> None:
    corpus = pair(tmp_path / "corpus", "b", TEXT, ANN)
    pair(corpus, "a", "Anna left.", "")  # an empty .ann: a document without entities
    (corpus / "annotation.conf").write_text("[entities]\nPerson\n", encoding="utf-8")  # brat's own: not read
    dataset = load_dataset(corpus)
    assert list(dataset) == ["train"]
    empty, document = dataset["train"]
    assert (empty.id, empty.text, empty.spans) == ("a", "Anna left.", ())
    assert (document.id, document.text) == ("b", TEXT)
    assert document.spans == (Span(0, 4, "Person"), Span(14, 19, "Location"), Span(25, 39, "Organization"))
    assert dataset.labels == ("Location", "Organization", "Person")
    assert load_dataset(corpus, format="brat").fingerprint == dataset.fingerprint


def test_split_subfolders_are_the_splits(tmp_path: Path) -> None:
    for split in ("train", "dev", "test"):
        pair(tmp_path / split, f"{split}-doc", TEXT, ANN)
    (tmp_path / "README.md").write_text("A corpus.\n", encoding="utf-8")
    dataset = load_dataset(tmp_path)
    assert {split: [doc.id for doc in docs] for split, docs in dataset.items()} == {
        "train": ["train-doc"],
        "validation": ["dev-doc"],
        "test": ["test-doc"],
    }


def test_a_discontinuous_span_with_a_gap_is_refused(tmp_path: Path) -> None:
    corpus = pair(tmp_path, "doc", "General and Motors", "T1\tOrganization 0 7;12 18\tGeneral Motors\n")
    assert load_error(corpus) == (
        f"{corpus / 'doc.ann'}:1: Organization span '0 7;12 18' ('General Motors') leaves out ' and ' between its "
        "fragments; NER tags cannot express a gap: annotate the fragments as entities of their own, or one span over "
        "the gap"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("T2\tPerson 0 4", "expected an entity line 'ID<TAB>TYPE START END<TAB>TEXT'"),
        ("T2\tPerson zero 4\tPaul", "expected an entity line 'ID<TAB>TYPE START END<TAB>TEXT'"),
        ("T2\tPerson -1 4\tPaul", "expected an entity line 'ID<TAB>TYPE START END<TAB>TEXT'"),
        ("T2\tPerson 4 4\t", "fragment '4 4' is empty or inverted: its start must be below its end"),
        ("T2\tPerson 0 99\tPaul", "fragment '0 99' is out of range: doc.txt has 11 characters"),
        ("T2\tPerson 5 9;0 4\tAnna Paul", "fragments '5 9;0 4' overlap or are out of order; expected them in text"),
        ("T2\tPerson 0 4\tPaula", "offsets '0 4' cut 'Paul' out of doc.txt, not 'Paula' as the line says"),
    ],
)
def test_a_bad_entity_line_is_named_by_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    corpus = pair(tmp_path, "doc", "Paul, Anna.", f"#1\tAnnotatorNotes T1\tok\n{line}\n")
    assert load_error(corpus).startswith(f"{corpus / 'doc.ann'}:2: {expected}")


def test_a_text_resaved_with_other_line_endings_is_refused_naming_both_texts(tmp_path: Path) -> None:
    corpus = pair(tmp_path, "doc", "Anna\r\nParis", "T1\tLocation 5 10\tParis\n")
    assert load_error(corpus) == (
        f"{corpus / 'doc.ann'}:1: offsets '5 10' cut '\\nPari' out of doc.txt, not 'Paris' as the line says (a text "
        "re-saved with other line endings or in another encoding shifts them)"
    )


@pytest.mark.parametrize("alone", ["doc.txt", "doc.ann"])
def test_a_file_without_its_pair_is_refused(tmp_path: Path, alone: str) -> None:
    corpus = pair(tmp_path, "other", "Anna", "")
    (corpus / alone).write_text("", encoding="utf-8")
    missing = "doc.ann" if alone == "doc.txt" else "doc.txt"
    assert load_error(corpus, format="brat").startswith(f"{corpus / alone}: no {missing} beside it; each document is")


def test_layouts_that_are_not_one_are_refused(tmp_path: Path) -> None:
    pair(tmp_path / "both", "doc", "Anna", "")
    pair(tmp_path / "both" / "train", "doc", "Anna", "")
    assert "both: holds .ann files beside split subfolders (train/); keep one layout" in load_error(tmp_path / "both")
    pair(tmp_path / "twice" / "dev", "doc", "Anna", "")
    pair(tmp_path / "twice" / "train", "doc", "Anna", "")
    pair(tmp_path / "twice" / "validation", "doc", "Anna", "")
    assert "twice: both dev/ and validation/ hold the 'validation' split; keep one" in load_error(tmp_path / "twice")
    pair(tmp_path / "untrained" / "test", "doc", "Anna", "")
    assert "untrained: no train subfolder beside test/" in load_error(tmp_path / "untrained")
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"text": "Anna", "annotations": []}\n', encoding="utf-8")
    assert load_error(jsonl, format="brat").startswith(f"{jsonl}: no .ann files; the brat format reads a folder")


def test_spans_take_the_span_policies_naming_the_ann_file(tmp_path: Path) -> None:
    corpus = pair(tmp_path, "doc", "Paul Smith left.", "T1\tPerson 0 10\tPaul Smith\nT2\tName 5 10\tSmith\n")
    ann = corpus / "doc.ann"
    assert load_error(corpus) == (
        f"{ann}:1: annotations [0, 10, 'Person'] and [5, 10, 'Name'] overlap; fix the data or set "
        "data.overlap_policy: keep_longest"
    )
    dataset = load_dataset(corpus, overlap_policy="keep_longest")
    assert (dataset["train"][0].spans, dataset.report.overlaps_dropped) == ((Span(0, 10, "Person"),), 1)
    assert load_error(corpus, labels=["Person"]).startswith(f"{ann}:1: label 'Name' is not in the schema")


def test_both_files_are_read_in_the_data_encoding(tmp_path: Path) -> None:
    corpus = pair(tmp_path, "doc", "José vit à Paris.", "T1\tPerson 0 4\tJosé\n", encoding="latin-1")
    assert "doc.txt:1: not valid UTF-8" in load_error(corpus)
    assert load_dataset(corpus, encoding="latin-1")["train"][0].spans == (Span(0, 4, "Person"),)


def test_a_run_reads_a_brat_folder_in_its_format(tmp_path: Path) -> None:
    corpus = pair(tmp_path, "doc", TEXT, ANN)
    for sweep in ("brat", "spans"):  # the sweep's own format, or other data's shown by the folder
        data = DataConfig(name="sweep", format=sweep).for_data(str(corpus))
        assert data.format == "brat"
        assert data.load(inherited=True).fingerprint == load_dataset(corpus).fingerprint
