"""Which file of a data folder holds which split: names that are a split, and corpora that name it inside a name."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from data.columns import Columns
from data.loaders import load_dataset
from data.split_names import split_files
from training.common.errors import DataError

GERMEVAL = "#\thttp://de.wikipedia.org/wiki/Manfred_Korfmann [2009-10-17]\n1\tAufgrund\tO\tO\n2\tBerlin\tB-LOC\tO\n\n"
TWEET = "@paulwalk\tO\nIt\tO\nLondon\tB-location\n\n"


def folder(path: Path, *names: str, content: str = TWEET) -> Path:
    path.mkdir(exist_ok=True)
    for name in names:
        (path / name).write_text(content, encoding="utf-8")
    return path


def names(files: dict[str, Path]) -> dict[str, str]:
    return {split: file.name for split, file in files.items()}


@pytest.mark.parametrize(
    "corpus",
    [
        ("NER-de-train.tsv", "NER-de-dev.tsv", "NER-de-test.tsv"),  # GermEval 2014
        ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"),  # WNUT-17
        ("en-train.txt", "en-validation.txt", "en-test.txt"),
        ("ner_train.iob2", "ner_development.iob2", "ner_test.iob2"),
    ],
)
def test_a_split_word_inside_each_name_names_the_split(tmp_path: Path, corpus: tuple[str, ...]) -> None:
    """GermEval's and WNUT-17's files matched no split: the folder was refused as having no train file."""
    expected = dict(zip(("train", "validation", "test"), corpus, strict=True))
    assert names(split_files(folder(tmp_path, *corpus))) == expected


def test_germeval_and_wnut_17_folders_load_as_distributed(tmp_path: Path) -> None:
    """WNUT-17's test file `emerging.test.annotated` is CoNLL text of a suffix of its own."""
    germeval = folder(tmp_path / "germeval", "NER-de-train.tsv", "NER-de-dev.tsv", "NER-de-test.tsv", content=GERMEVAL)
    read = load_dataset(germeval, columns=Columns(1, 2))
    assert [len(read[split]) for split in read] == [1, 1, 1]
    assert read.labels == ("LOC",)
    wnut = folder(tmp_path / "wnut", "wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated")
    assert load_dataset(wnut)["test"][0].text == "@paulwalk It London"


def test_wikiann_files_without_a_suffix_load_as_conll(tmp_path: Path) -> None:
    """WikiANN's own files, `train`, `dev` and `test`, were refused as of an "unknown file type ''"."""
    wikiann = folder(tmp_path, "train", "dev", "test", content="en:Paris\tB-LOC\nen:is\tO\nen:nice\tO\n\n")
    read = load_dataset(wikiann)
    assert list(read) == ["train", "validation", "test"]
    assert read["validation"][0].text == "Paris is nice"


def test_names_that_are_a_split_decide_as_before(tmp_path: Path) -> None:
    """Beside files named by a split alone, a file of predictions or BioBERT's train_dev.tsv is not read, as always."""
    files = split_files(folder(tmp_path, "train.tsv", "test.tsv", "train_dev.tsv", "dev_predictions.tsv", "eng.list"))
    assert names(files) == {"train": "train.tsv", "test": "test.tsv"}
    conll_2003 = folder(tmp_path / "conll", "eng.train", "eng.testa", "eng.testb", "eng.list")
    assert names(split_files(conll_2003)) == {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"}


def test_split_words_are_whole_words(tmp_path: Path) -> None:
    """`latest` and `contest` hold `test`, and `devices` holds `dev`, but name no split; a hidden file is none."""
    path = folder(tmp_path, "wnut17train.conll", "latest.conll", "contest.txt", "devices.txt", ".test.swp")
    assert names(split_files(path)) == {"train": "wnut17train.conll"}


def test_two_files_for_one_split_are_named(tmp_path: Path) -> None:
    path = folder(tmp_path, "wnut17train.conll", "emerging.test.conll", "emerging.test.annotated")
    with pytest.raises(DataError) as caught:
        split_files(path)
    assert str(caught.value) == (
        f"{path}: both emerging.test.annotated and emerging.test.conll hold the 'test' split; keep one (move the "
        "other out)"
    )


def test_a_name_with_two_split_words_is_refused_where_names_are_read_inside(tmp_path: Path) -> None:
    path = folder(tmp_path, "NER-de-train.tsv", "NER-de-train_dev.tsv")
    with pytest.raises(DataError) as caught:
        split_files(path)
    message = f"{path}: NER-de-train_dev.tsv names two splits (train, dev); rename it after one split, or move it out"
    assert str(caught.value) == message


def test_a_folder_of_no_split_names_is_refused_naming_what_is_read(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        split_files(folder(tmp_path, "README.md", "emerging.dev.conll"))
    assert str(caught.value).endswith("or names holding one of those words (NER-de-train.tsv, wnut17train.conll)")


def test_a_train_word_beside_files_named_by_a_split_alone_is_named_in_the_error(tmp_path: Path) -> None:
    """NER-de-train.tsv beside dev.tsv and test.tsv: the error named NER-de-train.tsv as an example of a name it reads,
    the file it had just skipped; it says why and which name to give it."""
    with pytest.raises(DataError) as raised:
        split_files(folder(tmp_path, "NER-de-train.tsv", "dev.tsv", "test.tsv"))
    assert str(raised.value) == (
        f"{tmp_path}: no train file; a split word inside a name is read only where no file is named by a split alone "
        "(dev.tsv, test.tsv): rename NER-de-train.tsv to train.tsv"
    )


def test_the_rename_hint_names_every_split_word_file_and_no_hidden_one(tmp_path: Path) -> None:
    """The hint named an editor's swap file (`rename .NER-de-train.tsv.swp to train.swp`), and only a train file:
    renamed, NER-de-dev.tsv beside it was still left unread."""
    germeval = folder(tmp_path / "germeval", ".NER-de-train.tsv.swp", "NER-de-train.tsv", "NER-de-dev.tsv", "test.tsv")
    expected = r"\(test\.tsv\): rename NER-de-train\.tsv to train\.tsv, NER-de-dev\.tsv to dev\.tsv$"
    with pytest.raises(DataError, match=expected):
        split_files(germeval)
    two = folder(tmp_path / "two", "train-fixed.tsv", "train-orig.tsv", "eng.testa", "test.tsv")
    expected = r"\(eng\.testa, test\.tsv\): rename train-fixed\.tsv or train-orig\.tsv to train\.tsv$"
    with pytest.raises(DataError, match=expected):
        split_files(two)
    hidden = folder(tmp_path / "hidden", ".train.tsv.swp", "dev.tsv", "test.tsv")
    with pytest.raises(DataError, match=r"no train file; expected files named train"):
        split_files(hidden)


def test_a_split_word_file_left_unread_beside_a_train_file_is_reported(tmp_path: Path) -> None:
    """train.tsv beside NER-de-dev.tsv loaded with no validation split and said nothing: training held out part of
    train instead of the dev file the folder holds."""
    read = load_dataset(folder(tmp_path / "mixed", "train.tsv", "NER-de-dev.tsv", ".NER-de-test.tsv.swp"))
    assert list(read) == ["train"]
    assert read.report.files_unread == {"NER-de-dev.tsv": "dev.tsv"}
    assert read.report.lines()[1] == (
        "NER-de-dev.tsv not read: beside files named by a split alone, a split word inside a name is not read; rename "
        "it dev.tsv to read it"
    )
    assert load_dataset(folder(tmp_path / "whole", "train.tsv", "dev.tsv", "NER-de-dev.tsv")).report.files_unread == {}


def test_a_run_or_config_folder_is_not_read_as_data(tmp_path: Path) -> None:
    """A run folder given as data had its `train.log` read as the train split (an error about its 38 columns), a
    config folder its `train.yaml`; files of such suffixes are never a split, and a file of one named is refused."""
    run = folder(tmp_path / "run", "train.log", "config.yaml", "metrics.json")
    with pytest.raises(DataError, match=r"run: no train file; .* not read as data, by their suffix: train\.log$"):
        load_dataset(run)
    beside = folder(tmp_path / "data", "train.conll", "dev.conll", "test_run.log", "train.yaml")
    assert names(split_files(beside)) == {"train": "train.conll", "validation": "dev.conll"}
    assert load_dataset(beside).report.files_unread == {}  # test_run.log is no test file to rename
    with pytest.raises(DataError, match=r"train\.log: a \.log file is not data; expected a data folder or a data file"):
        load_dataset(run / "train.log")


def test_a_compressed_corpus_is_named_as_one_to_unpack(tmp_path: Path) -> None:
    """A `train.conll.gz` given or found was called 'not data' (before that, unreadable UTF-8): it is data, packed."""
    packed = tmp_path / "corpus"
    packed.mkdir()
    (packed / "train.conll.gz").write_bytes(gzip.compress(TWEET.encode()))
    with pytest.raises(DataError, match=r"corpus: no train file; .* by their suffix: train\.conll\.gz \(compressed: "):
        load_dataset(packed)
    expected = r"train\.conll\.gz: a compressed file \(\.gz\): unpack it \(gunzip, unzip or tar -x\); expected a data"
    with pytest.raises(DataError, match=expected):
        load_dataset(packed / "train.conll.gz")
