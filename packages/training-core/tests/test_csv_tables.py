"""CSV token tables: Kaggle's GMB corpus, sentence ids on every row, blank rows between sentences, named columns, a
folder of split files, the format a run carries to other CSV data, and every bad table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data.columns import Columns
from data.documents import Span
from data.loaders import load_dataset
from data.sniffing import content_format
from data.splits import group_units
from training.common.errors import DataError
from training.config import DataConfig
from training.core.cv_utils import create_kfold_splits

# Kaggle's "Annotated Corpus for Named Entity Recognition" (GMB) `ner_dataset.csv`, Latin-1 as distributed.
KAGGLE = (
    "Sentence #,Word,POS,Tag\n"
    "Sentence: 1,Thousands,NNS,O\n"
    ",of,IN,O\n"
    ",demonstrators,NNS,O\n"
    ",in,IN,O\n"
    ",Zürich,NNP,B-geo\n"
    ',",",",",O\n'
    "Sentence: 2,Families,NNS,O\n"
    ",of,IN,O\n"
    ",New,NNP,B-gpe\n"
    ",York,NNP,I-gpe\n"
)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def documents(path: Path, **options: Any) -> list[tuple[str, tuple[Span, ...]]]:
    return [(doc.text, doc.spans) for doc in load_dataset(path, **options)["train"]]


def load_error(path: Path, **options: Any) -> str:
    with pytest.raises(DataError) as caught:
        load_dataset(path, **options)
    return str(caught.value).replace(f"{path.parent}/", "")


def test_kaggle_gmb_corpus_in_latin_1(tmp_path: Path) -> None:
    """A sentence starts where `Sentence #` is filled, a quoted comma is a word, and Latin-1 bytes read as such."""
    path = write(tmp_path / "ner_dataset.csv", KAGGLE.encode("latin-1"))
    assert documents(path, encoding="latin-1") == [
        ("Thousands of demonstrators in Zürich ,", (Span(30, 36, "geo"),)),
        ("Families of New York", (Span(12, 20, "gpe"),)),
    ]


def test_a_sentence_id_on_every_row(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "sentence_id,word,tag\n0,Anna,B-PER\n0,sings,O\n1,Paris,B-LOC\n1,sleeps,O\n")
    assert documents(path) == [("Anna sings", (Span(0, 4, "PER"),)), ("Paris sleeps", (Span(0, 5, "LOC"),))]


def test_blank_rows_part_sentences_without_a_sentence_column(tmp_path: Path) -> None:
    """A spreadsheet saves a blank row as empty cells (`,`); both part sentences. Tags of another scheme (IOB1) are
    read as CoNLL's are."""
    table = "Tokens,NER_Tags\r\nAnna,I-PER\r\nKarenina,I-PER\r\n,\r\n\r\nTo,O\r\nLeo,I-PER\r\nTolstoy,B-PER\r\n"
    path = write(tmp_path / "train.csv", table)
    assert documents(path) == [
        ("Anna Karenina", (Span(0, 13, "PER"),)),
        ("To Leo Tolstoy", (Span(3, 6, "PER"), Span(7, 14, "PER"))),
    ]
    assert load_dataset(path).report.scheme == "IOB1"


def test_columns_named_in_data_columns(tmp_path: Path) -> None:
    """Names of any case; `format="csv"` reads a file of any name as a table."""
    path = write(tmp_path / "gmb.txt", "Wort,Etikett,tag\nAnna,B-PER,O\n")
    assert documents(path, format="csv", columns=Columns("wort", "ETIKETT")) == [("Anna", (Span(0, 4, "PER"),))]


def test_a_folder_of_csv_splits(tmp_path: Path) -> None:
    write(tmp_path / "corpus" / "train.csv", "word,tag\nAnna,B-PER\n")
    write(tmp_path / "corpus" / "dev.csv", "word,tag\nParis,B-LOC\n")
    dataset = load_dataset(tmp_path / "corpus")
    assert list(dataset) == ["train", "validation"]
    assert dataset["validation"][0].spans == (Span(0, 5, "LOC"),)


def test_a_run_s_format_carries_to_other_csv_data(tmp_path: Path) -> None:
    """A CSV file's start shows a table; a CoNLL run evaluating one reads it as such, its positions dropped, and a
    CSV run keeps its column names for another table."""
    other = write(tmp_path / "other.csv", "Word,Tag\nAnna,B-PER\n")
    assert content_format(other) == "csv"
    assert content_format(write(tmp_path / "a.conll", "Anna,B-PER O\n")) == "conll"
    conll_run = DataConfig(name="sweep", format="conll", columns={"tokens": 1, "tags": 2}).for_data(str(other))
    assert (conll_run.format, conll_run.columns.tokens) == ("csv", None)
    assert conll_run.load(inherited=True)["train"][0].spans == (Span(0, 4, "PER"),)
    other = write(tmp_path / "other.csv", "Wort,Tag\nAnna,B-PER\n")
    csv_run = DataConfig(name="sweep", format="csv", columns={"tokens": "Wort"}).for_data(str(other))
    assert (csv_run.format, csv_run.columns.tokens) == ("csv", "Wort")
    assert csv_run.load(inherited=True)["train"][0].spans == (Span(0, 4, "PER"),)


def test_a_table_of_semicolons(tmp_path: Path) -> None:
    """Excel's CSV where the decimal mark is a comma parts cells by semicolons; a word may then hold a comma, and a
    quoted header cell too."""
    path = write(tmp_path / "train.csv", "Sentence #;Word;Tag\nSentence: 1;Anna;B-PER\n;,;O\n")
    assert documents(path) == [("Anna ,", (Span(0, 4, "PER"),))]
    path = write(tmp_path / "quoted" / "train.csv", '"Satz, Nr.";Word;Tag\n1;Anna;B-PER\n')
    assert documents(path) == [("Anna", (Span(0, 4, "PER"),))]


def test_old_mac_line_breaks(tmp_path: Path) -> None:
    """Lines ending at "\\r" alone were one header line to the csv module, an internal error; a CoNLL file without a
    suffix, told from a table by its first line, failed the same way."""
    table = "word,tag\nAnna,B-PER\nsings,O\n\nParis,B-LOC\n"
    lf = documents(write(tmp_path / "lf" / "train.csv", table))
    assert documents(write(tmp_path / "cr" / "train.csv", table.replace("\n", "\r"))) == lf
    assert documents(write(tmp_path / "bare" / "train", table.replace("\n", "\r"))) == lf
    conll = write(tmp_path / "conll" / "train", "Anna B-PER\rsings O\r\rParis B-LOC\r")
    assert documents(conll) == [("Anna sings", (Span(0, 4, "PER"),)), ("Paris", (Span(0, 5, "LOC"),))]


def test_sentence_ids_that_restart_in_each_document(tmp_path: Path) -> None:
    """A document column tells sentence 1 of one document from sentence 1 of the next, even right after it."""
    table = "doc_id,sent_id,word,tag\nd1,1,Anna,B-PER\nd1,2,sings,O\nd2,1,Paris,B-LOC\nd3,1,Bob,B-PER\n"
    path = write(tmp_path / "train.csv", table)
    assert [text for text, _ in documents(path)] == ["Anna", "sings", "Paris", "Bob"]
    # A new document starts a sentence without a sentence column, or where its sentence cell is empty; a document
    # cell filled on its first row only holds for the rows after it.
    path = write(tmp_path / "a" / "train.csv", "doc_id,word,tag\nd1,Anna,B-PER\n,sings,O\nd2,Paris,B-LOC\n")
    assert [text for text, _ in documents(path)] == ["Anna sings", "Paris"]
    path = write(tmp_path / "b" / "train.csv", "doc_id,sent_id,word,tag\nd1,1,Anna,B-PER\nd2,,Paris,B-LOC\n")
    assert [text for text, _ in documents(path)] == ["Anna", "Paris"]


def _corpus(documents: int = 6) -> list[list[list[tuple[str, str]]]]:
    """Documents of 2 to 4 sentences of (word, tag) pairs, each naming its document and sentence."""
    return [
        [[(f"Anna{d}{s}", "B-PER"), ("visited", "O"), ("Paris", "B-LOC")] for s in range(2 + d % 3)]
        for d in range(documents)
    ]


def test_documents_group_their_sentences_as_conll_does_and_k_folds_keep_them_whole(tmp_path: Path) -> None:
    """-DOCSTART- rows were read as documents of their own and a doc_id column grouped nothing: k-fold
    cross-validation dealt sentences of one document to train and validation. Now a table gives the documents, groups
    and folds of the same corpus written as CoNLL."""
    corpus = _corpus()
    sentences = [(d, s, sentence) for d, document in enumerate(corpus) for s, sentence in enumerate(document)]
    conll = "".join(
        ("-DOCSTART- O\n\n" if s == 0 else "") + "".join(f"{w} {t}\n" for w, t in sentence) + "\n"
        for d, s, sentence in sentences
    )
    tables = {  # sentence ids restart in each document
        "doc_id": "doc_id,sentence_id,word,tag\n"
        + "".join(f"d{d},{s},{w},{t}\n" for d, s, sentence in sentences for w, t in sentence),
        "docstart": "sentence_id,word,tag\n"
        + "".join(
            ("0,-DOCSTART-,O\n" if s == 0 else "") + "".join(f"{s + 1},{w},{t}\n" for w, t in sentence)
            for d, s, sentence in sentences
        ),
    }
    expected = load_dataset(write(tmp_path / "conll" / "train.conll", conll))
    expected_folds = create_kfold_splits(expected, 3, seed=7).folds
    for name, table in tables.items():
        dataset = load_dataset(write(tmp_path / name / "train.csv", table))
        found, wanted = dataset["train"], expected["train"]
        assert [doc.text for doc in found] == [doc.text for doc in wanted], name
        assert group_units(found, "group") == group_units(wanted, "group"), name
        folds = create_kfold_splits(dataset, 3, seed=7).folds
        assert folds == expected_folds, name
        for fold in folds:
            train = {found[i].group for i in fold.train_indices}
            assert train.isdisjoint(found[i].group for i in fold.validation_indices), name


def test_sentences_before_any_document_are_documents_of_their_own(tmp_path: Path) -> None:
    """As in CoNLL: no group before the first -DOCSTART- row (or document id); the row itself is no word."""
    path = write(tmp_path / "train.csv", "word,tag\nAnna,B-PER\n\n-DOCSTART-,\nEU,B-ORG\n\nBob,B-PER\n")
    assert [(doc.text, doc.group) for doc in load_dataset(path)["train"]] == [
        ("Anna", None),
        ("EU", "doc1"),
        ("Bob", "doc1"),
    ]


def test_document_ids_restarting_after_docstart_rows_are_other_documents(tmp_path: Path) -> None:
    """Tables joined, each with its -DOCSTART- row and ids from A: the second A is another document than the first
    (one group merged them, and a k-fold its documents)."""
    rows = "doc_id,word,tag\n,-DOCSTART-,O\nA,Anna,B-PER\nB,Bob,B-PER\n,-DOCSTART-,O\nA,Carl,B-PER\n"
    path = write(tmp_path / "train.csv", rows)
    assert [(doc.text, doc.group) for doc in load_dataset(path)["train"]] == [
        ("Anna", "doc1:A"),
        ("Bob", "doc1:B"),
        ("Carl", "doc2:A"),
    ]


def test_a_table_without_a_suffix_is_read_by_its_header(tmp_path: Path) -> None:
    """A file of no known suffix whose header names the columns is a table (its names taken from data.columns), and
    so is a `.txt` file whose first line is no CoNLL token line (it was read as CoNLL, refusing the header as a
    token line, while `evaluate` and `report` of a run in another format read it as the table it is)."""
    path = write(tmp_path / "train", "Wort,Etikett\nAnna,B-PER\n")
    assert documents(path, columns=Columns("Wort", "Etikett")) == [("Anna", (Span(0, 4, "PER"),))]
    assert DataConfig(name="d", path=str(path), columns={"tokens": "Wort", "tags": "Etikett"}).columns.tokens == "Wort"
    assert documents(write(tmp_path / "a" / "train", "word,tag\nParis,B-LOC\n")) == [("Paris", (Span(0, 5, "LOC"),))]
    table = write(tmp_path / "b" / "train.txt", "word,tag\nParis,B-LOC\n")
    assert documents(table) == [("Paris", (Span(0, 5, "LOC"),))]
    conll = write(tmp_path / "c" / "train.txt", "word,x B-MISC\nParis B-LOC\n")  # a token line first: CoNLL
    assert documents(conll) == [("word,x Paris", (Span(0, 6, "MISC"), Span(7, 12, "LOC")))]


def test_excel_utf_8_table_in_a_latin_1_run(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a byte-order mark: a Latin-1 run still tells a table and reads its accents."""
    path = write(tmp_path / "train.csv", "\ufeffWord,Tag\nZürich,B-LOC\n".encode())
    assert content_format(path, encoding="latin-1") == "csv"
    assert documents(path, encoding="latin-1") == [("Zürich", (Span(0, 6, "LOC"),))]


@pytest.mark.parametrize(
    ("content", "options", "expected"),
    [
        (
            "Sentence #,Text,POS,Tag\n1,Anna,NNP,B-PER\n",
            {},
            "train.csv:1: the header ['Sentence #', 'Text', 'POS', 'Tag'] has no words column (named tokens, token, "
            "words, word, any case); name it in data.columns.tokens",
        ),
        (
            "word,pos\nAnna,NNP\n",
            {},
            "train.csv:1: the header ['word', 'pos'] has no tags column (named ner_tags, tags, tag, labels, label, "
            "ner, any case); name it in data.columns.tags",
        ),
        (
            "word,tag\nAnna,B-PER\n",
            {"columns": Columns(tags="bio")},
            "train.csv:1: the header ['word', 'tag'] has no column 'bio' (data.columns.tags)",
        ),
        (
            "word,tag\nAnna,B-PER\n",
            {"columns": Columns(1, 2)},
            "train.csv: data.columns.tokens: 1 is a column position; positions apply to CoNLL/TSV files only, and a "
            "CSV file names its columns in its header",
        ),
        (
            "word,tag\nAnna,B-PER\nNew,York,B-LOC\n",
            {},
            "train.csv:3: 3 cells where the header (line 1) has 2; a cell holding a comma needs quotes, got "
            "['New', 'York', 'B-LOC']",
        ),
        (
            "word;tag\nAnna;B-PER\nNew;York;B-LOC\n",
            {},
            "train.csv:3: 3 cells where the header (line 1) has 2; a cell holding a semicolon needs quotes",
        ),
        (
            "sentence_id,word,tag\n1,Anna,B-PER\n2,Paris,B-LOC\n1,sings,O\n",
            {},
            "train.csv:4: sentence '1' again after another (it starts on line 2): a sentence's rows must be next to "
            "each other; sort the table by its 'sentence_id' column, or give it a document column (doc_id) where "
            "sentence ids restart in each document",
        ),
        (
            "doc,sentence_id,word,tag\nd1,1,Anna,B-PER\nd1,2,Paris,B-LOC\nd1,1,sings,O\n",
            {},
            "train.csv:4: sentence '1' again after another (it starts on line 2): a sentence's rows must be next to "
            "each other; sort the table by its 'sentence_id' column within its 'doc' column",
        ),
        (
            "word\ttag\nAnna\tB-PER\n",
            {},
            "train.csv:1: the header ['word\\ttag'] is one cell (cells part by commas or semicolons), and has no "
            "words column",
        ),
        ("word,tag\nAnna,B-PER\n ,O\n", {}, "train.csv:3: the 'word' cell (data.columns.tokens) is empty, got [' ', "),
        ("word,tag\nAnna,\n", {}, "train.csv:2: the 'tag' cell (data.columns.tags) is empty, got ['Anna', '']"),
        ("", {}, "train.csv:1: the file is empty; expected a header row such as 'word,tag', then a row per word"),
        ("\nword,tag\n\n", {}, "train.csv:2: a header row and no words; expected a row per word after it"),
        ('word,tag\nAnna,B-PER\n"Paris,B-LOC\n', {}, "train.csv:3: not a CSV row: unexpected end of data"),
        ("word,tag\nAnna,B-PER\nParis,X-LOC\n", {}, "train.csv:3: tag 'X-LOC' is malformed; expected 'O' or "),
    ],
)
def test_bad_tables(tmp_path: Path, content: str, options: dict[str, Any], expected: str) -> None:
    assert load_error(write(tmp_path / "train.csv", content), **options).startswith(expected)
