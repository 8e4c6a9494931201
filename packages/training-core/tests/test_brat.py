"""brat standoff folders: `NAME.txt` and `NAME.ann` pairs read as span documents, by folder or split subfolders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data.documents import Span
from data.loaders import load_dataset
from training.common.errors import DataError, InputError
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
        ("T2\tPerson 0", "expected an entity line 'ID<TAB>TYPE START END<TAB>TEXT'"),
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


def test_offsets_count_as_brat_reads_a_text_or_as_the_file_holds_it(tmp_path: Path) -> None:
    """brat reads texts with universal newlines (CRLF is one character) and keeps a BOM (one): a Windows-made corpus
    was refused; offsets counted on the file's own characters (CRLF two) by other tools read too."""
    brat = load_dataset(pair(tmp_path / "brat", "doc", "Anna\r\nParis", "T1\tLocation 5 10\tParis\n"))["train"][0]
    assert (brat.text, brat.spans) == ("Anna\nParis", (Span(5, 10, "Location"),))
    raw = load_dataset(pair(tmp_path / "raw", "doc", "Anna\r\nParis", "T1\tLocation 6 11\tParis"))["train"][0]
    assert (raw.text, raw.spans) == ("Anna\r\nParis", (Span(6, 11, "Location"),))
    bom = load_dataset(pair(tmp_path / "bom", "doc", "\ufeffAnna left", "T1\tPerson 1 5\tAnna"))["train"][0]
    assert bom.spans == (Span(1, 5, "Person"),)
    # Notepad's UTF-8 starts with a BOM before CRLF lines: a tool keeps it or drops it, and counts CRLF as one or two.
    for name, start, text in (("kept", 7, "\ufeffAnna\r\nParis"), ("dropped", 5, "Anna\nParis")):
        folder = pair(tmp_path / name, "doc", "\ufeffAnna\r\nParis", f"T1\tLocation {start} {start + 5}\tParis\n")
        windows = load_dataset(folder)["train"][0]
        assert (windows.text, windows.spans) == (text, (Span(start, start + 5, "Location"),))
    untold = pair(tmp_path / "untold", "doc", "Anna\r\nParis", "T1\tLocation 4 9\tParis\n")  # neither reading
    assert load_error(untold) == (
        f"{untold / 'doc.ann'}:1: offsets '4 9' cut '\\nPari' out of doc.txt, not 'Paris' as the line says (a text "
        "re-saved with other line endings or in another encoding shifts them)"
    )
    lean = load_dataset(pair(tmp_path / "lean", "doc", "Anna left", "T1\tPerson 0 4 \n"))["train"][0]  # as brat reads
    assert lean.spans == (Span(0, 4, "Person"),)


def test_event_triggers_are_skipped_and_counted(tmp_path: Path) -> None:
    """A `T` line an `E` line names first is an event's trigger word (BioNLP, GENIA), not an entity."""
    ann = "T1\tProtein 0 4\tIL-2\nT2\tGene_expression 5 15\texpression\nE1\tGene_expression:T2 Theme:T1\n"
    dataset = load_dataset(pair(tmp_path, "doc", "IL-2 expression rose", ann))
    assert (dataset["train"][0].spans, dataset.labels) == ((Span(0, 4, "Protein"),), ("Protein",))
    assert "1 event trigger skipped (brat T lines an E line names first)" in dataset.report.lines()


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
        f"{ann}: annotations [0, 10, 'Person'] and [5, 10, 'Name'] overlap; fix the data or set "
        "data.overlap_policy: keep_longest"
    )
    dataset = load_dataset(corpus, overlap_policy="keep_longest")
    assert (dataset["train"][0].spans, dataset.report.overlaps_dropped) == ((Span(0, 10, "Person"),), 1)
    assert load_error(corpus, labels=["Person"]).startswith(f"{ann}: label 'Name' is not in the schema")


def test_both_files_are_read_in_the_data_encoding(tmp_path: Path) -> None:
    corpus = pair(tmp_path, "doc", "José vit à Paris.", "T1\tPerson 0 4\tJosé\n", encoding="latin-1")
    assert "doc.ann:1: not valid UTF-8" in load_error(corpus)
    assert load_dataset(corpus, encoding="latin-1")["train"][0].spans == (Span(0, 4, "Person"),)


def test_a_run_reads_a_brat_folder_in_its_format(tmp_path: Path) -> None:
    corpus = pair(tmp_path, "doc", TEXT, ANN)
    for sweep in ("brat", "spans"):  # the sweep's own format, or other data's shown by the folder
        data = DataConfig(name="sweep", format=sweep).for_data(str(corpus))
        assert data.format == "brat"
        assert data.load(inherited=True).fingerprint == load_dataset(corpus).fingerprint


def test_a_folder_of_documents_is_evaluated_whole_as_a_file_is(tmp_path: Path) -> None:
    from data.split_names import chosen_split

    corpus = pair(tmp_path / "test", "doc", "Anna left.", "T1\tPerson 0 4\tAnna\n")
    assert chosen_split(load_dataset(corpus), corpus, None, "test") == "train"  # its one split, as a file's
    with pytest.raises(InputError, match="has no such split; it has train"):
        chosen_split(load_dataset(corpus), corpus, "validation", "test")
