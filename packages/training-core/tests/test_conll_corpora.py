"""CoNLL files as real corpora write them: comment lines, index columns, tags first, OntoNotes brackets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data.columns import Columns
from data.documents import Span
from data.loaders import load_dataset
from training.common.errors import DataError
from training.config import DataConfig


def read(tmp_path: Path, content: str, **options: Any) -> list[tuple[str, tuple[Span, ...]]]:
    path = tmp_path / "train.conll"
    path.write_text(content, encoding="utf-8")
    return [(doc.text, doc.spans) for doc in load_dataset(path, **options)["train"]]


def load_error(tmp_path: Path, content: str, **options: Any) -> str:
    with pytest.raises(DataError) as caught:
        read(tmp_path, content, **options)
    return str(caught.value).replace(str(tmp_path / "train.conll"), "train.conll")


def test_comment_lines_before_a_sentence_are_skipped(tmp_path: Path) -> None:
    """`# id ...` (MultiCoNER) and `# text = ...` (CoNLL-U) were read as tokens, or refused as a column more."""
    multiconer = "# id 5f4c1d\tdomain=en\nsteve _ _ B-PER\njobs _ _ I-PER\n\n# id 77\tdomain=en\nparis _ _ B-LOC\n"
    assert read(tmp_path, multiconer) == [("steve jobs", (Span(0, 10, "PER"),)), ("paris", (Span(0, 5, "LOC"),))]
    sentences = "# sent_id = 1\n# text = Anna left\nAnna B-PER\nleft O\n\n# sent_id = 2\nBob B-PER\n"
    assert read(tmp_path, sentences) == [("Anna left", (Span(0, 4, "PER"),)), ("Bob", (Span(0, 3, "PER"),))]


def test_hashtag_tokens_stay_tokens(tmp_path: Path) -> None:
    """Tweets tag `#` and `#word` tokens, at a sentence's start or inside it: a line with the file's columns and a
    tag last is a token, not a comment."""
    tweets = "#\tO\nlove\tO\n#\tB-ORG\nApple\tI-ORG\n\n#TBT\tO\nParis\tB-LOC\n"
    assert read(tmp_path, tweets) == [("# love # Apple", (Span(7, 14, "ORG"),)), ("#TBT Paris", (Span(5, 10, "LOC"),))]


def test_a_hashtag_word_before_a_sentence_is_read_as_a_token_not_skipped(tmp_path: Path) -> None:
    """`#word` lines before a sentence that did not look like a token line of the file vanished as comments: a typo in
    the tag (`0` for `O`), or fewer columns than the first token line."""
    assert "train.conll:1: tag '0' is malformed" in load_error(tmp_path, "#MeToo\t0\nParis\tB-LOC\n")
    assert read(tmp_path, "Paris\tx\tB-LOC\n\n#TBT\tO\n") == [("Paris", (Span(0, 5, "LOC"),)), ("#TBT", ())]


def test_a_comment_of_a_hash_and_a_tag_like_word_is_told_by_its_separator(tmp_path: Path) -> None:
    """`# I-95` before a tab-separated sentence was read as the token `#` tagged I-95 (an entity of type 95): a line
    with another separator than the file's token lines is a comment; with the same one it stays a token."""
    assert read(tmp_path, "# I-95\nroad\tO\nclosed\tO\n\n#\tB-ORG\nlove\tO\n") == [
        ("road closed", ()),
        ("# love", (Span(0, 1, "ORG"),)),
    ]
    assert read(tmp_path, "# I-95\nroad O\n") == [("# road", (Span(0, 1, "95"),))]  # the same separator: a token


def test_a_tabbed_hash_token_in_a_file_of_spaced_lines_stays_a_token(tmp_path: Path) -> None:
    """A file mixing space and tab lines was judged by its first token line alone: a sentence's first token `#`
    tagged B-ORG on a tab line after space lines vanished as a comment, its entity with it."""
    assert read(tmp_path, "road O\n\n#\tB-ORG\nlove\tO\n") == [("road", ()), ("# love", (Span(0, 1, "ORG"),))]


# CoNLL-2002's Spanish files as distributed (esp.train, esp.testa, esp.testb): Latin-1, a token and its tag a line.
ESP = "Guardia B-ORG\nCivil I-ORG\nde O\nEspaña B-LOC\n\nMelbourne B-LOC\n( O\nAustralia B-LOC\n) O\n"


def test_conll_2002_latin_1_files_are_read_in_data_encoding(tmp_path: Path) -> None:
    """CoNLL-2002's Spanish and Dutch files were refused as not UTF-8, with no way to read them as distributed."""
    path = tmp_path / "esp.train"
    path.write_bytes(ESP.encode("latin-1"))
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    assert str(caught.value) == (
        f"{path}:4: not valid UTF-8 (byte 0xf1 at offset 35); re-encode the text as UTF-8, or give its encoding in "
        "data.encoding (--encoding of evaluate and report): latin-1 for CoNLL-2002's files"
    )
    assert [(doc.text, doc.spans) for doc in load_dataset(path, encoding="latin-1")["train"]] == [
        ("Guardia Civil de España", (Span(0, 13, "ORG"), Span(17, 23, "LOC"))),
        ("Melbourne ( Australia )", (Span(0, 9, "LOC"), Span(12, 21, "LOC"))),
    ]


def test_a_conll_2002_folder_loads_with_its_data_section(tmp_path: Path) -> None:
    """The data section's `encoding: latin-1` reads the corpus folder as distributed, and other data a run reads."""
    for name in ("esp.train", "esp.testa", "esp.testb"):
        (tmp_path / name).write_bytes(ESP.encode("latin-1"))
    data = DataConfig(name="conll2002", path=str(tmp_path), format="conll", encoding="latin-1")
    dataset = data.load()
    assert (list(dataset), dataset.labels) == (["train", "validation", "test"], ("LOC", "ORG"))
    assert dataset["test"][0].text == "Guardia Civil de España"
    assert data.for_data(str(tmp_path / "esp.testb")).load(inherited=True)["train"][0].text.endswith("España")


GERMEVAL = "#\thttp://de.wikipedia.org/wiki/Schartau\t[2009-10-17]\n1\tSchartau\tB-PER\tO\n2\tsagte\tO\tO\n3\tBerlin\tB-LOC\tO\n"
CONLLU = (
    "# sent_id = 1\n# text = Anna left\n"
    "1\tAnna\tanna\tPROPN\t_\t_\t2\tnsubj\t_\tB-PER\n2\tleft\tleave\tVERB\t_\t_\t0\troot\t_\tO\n"
)


def test_an_index_column_first_is_refused_naming_the_setting(tmp_path: Path) -> None:
    """GermEval 2014 (index, token, outer tag, nested tag) was read as the words '1 2 3' with the nested tags, and
    CoNLL-U as its word numbers: the first column of every sentence counting 1, 2, 3 is no token column."""
    expected = (
        "train.conll:2: the first column numbers the tokens (1, 2, 3, ... as in CoNLL-U and GermEval files); set "
        "data.columns.tokens and data.columns.tags to the token's and the tag's column positions (0 first, -1 last), "
        "such as 1 and 2"
    )
    assert load_error(tmp_path, GERMEVAL) == expected
    assert load_error(tmp_path, CONLLU).startswith("train.conll:3: the first column numbers the tokens")
    assert load_error(tmp_path, GERMEVAL, columns=Columns(tags=2)) == expected


def test_data_columns_pick_a_conll_file_s_token_and_tag_columns(tmp_path: Path) -> None:
    germeval = [("Schartau sagte Berlin", (Span(0, 8, "PER"), Span(15, 21, "LOC")))]
    assert read(tmp_path, GERMEVAL, columns=Columns(tokens=1, tags=2)) == germeval
    data = DataConfig(name="germeval", columns={"tokens": 1, "tags": 2})  # as data/germeval.yaml or --set sets it
    assert [(doc.text, doc.spans) for doc in data.load(tmp_path / "train.conll")["train"]] == germeval
    assert read(tmp_path, CONLLU, columns=Columns(tokens=1, tags=-1)) == [("Anna left", (Span(0, 4, "PER"),))]
    assert load_error(tmp_path, GERMEVAL, columns=Columns(tokens=1, tags=4)) == (
        "train.conll:2: 4 columns, too few for data.columns (tokens at 1, tags at 4), got '1\\tSchartau\\tB-PER\\tO'"
    )


@pytest.mark.parametrize("tokens", ["1", "-2"])
def test_a_quoted_column_position_for_a_conll_file_is_refused_not_ignored(tmp_path: Path, tokens: str) -> None:
    """`tokens: "1"` (quoted in YAML: a name) was ignored for a CoNLL file, whose first column (GermEval's index)
    then was read as the words; CoNLL columns have positions, written as numbers."""
    data = DataConfig(name="germeval", columns={"tokens": tokens, "tags": 2})
    (tmp_path / "train.conll").write_text(GERMEVAL, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        data.load(tmp_path / "train.conll")
    assert str(caught.value) == (
        f"{tmp_path / 'train.conll'}: data.columns.tokens: {tokens!r} is a name, as datasets input takes; a CoNLL "
        "file's columns are positions (0 first, -1 last), written as numbers"
    )


@pytest.mark.parametrize(("field", "columns"), [("tokens", {"tokens": "word"}), ("tags", {"tokens": 1, "tags": "ner"})])
def test_a_column_name_for_a_conll_file_is_refused_not_ignored(tmp_path: Path, field: str, columns: dict) -> None:
    """Names, which `datasets` input takes, were ignored for a CoNLL file, read then with its first and last columns;
    a run's own names, reading other data, still are."""
    (tmp_path / "train.conll").write_text(GERMEVAL, encoding="utf-8")
    data = DataConfig(name="germeval", columns=columns)
    with pytest.raises(DataError) as caught:
        data.load(tmp_path / "train.conll")
    assert str(caught.value) == (
        f"{tmp_path / 'train.conll'}: data.columns.{field}: {columns[field]!r} is a column name, as datasets input "
        "takes; a CoNLL file names no columns (a header line would be read as a token), so give its position (0 "
        "first, -1 last)"
    )
    inherited = DataConfig(name="germeval", columns={"tokens": 1, "tags": "ner"})
    assert inherited.load(tmp_path / "train.conll", inherited=True)["train"][0].text == "Schartau sagte Berlin"


def test_an_empty_cell_keeps_its_column_position(tmp_path: Path) -> None:
    """A tab-separated file with an empty cell (a word without its part of speech) dropped it, so the columns after
    it moved left and data.columns.tags read the nested tag of that line; a trailing tab is still no column."""
    tsv = "Paris\tNNP\tB-LOC\tO\nis\t\tO\tB-X\t\n"
    assert read(tmp_path, tsv, columns=Columns(tokens=0, tags=2)) == [("Paris is", (Span(0, 5, "LOC"),))]
    assert read(tmp_path, "Paris\t\tB-LOC\t\nis\tO\n") == [("Paris is", (Span(0, 5, "LOC"),))]


def test_an_empty_token_or_tag_cell_is_named_and_a_leading_one_keeps_its_position(tmp_path: Path) -> None:
    """An empty tag cell (`EU<TAB><TAB>B-ORG`, columns aligned with two tabs) failed as "tag 'I-' is malformed", an
    empty token cell as "token 0 ('') is empty"; and a leading empty cell (Kaggle's blank `Sentence #` on a sentence's
    later rows) was dropped, so data.columns.tokens: 1 read the part of speech as the word."""
    aligned = "EU\t\tB-ORG\nrejects\tO\n"
    cells = "(each tab starts a column: columns aligned with several tabs have empty ones between)"
    assert load_error(tmp_path, aligned, columns=Columns(tokens=0, tags=1)) == (
        f"train.conll:1: data.columns.tags (column 1) is empty; the line has empty cells {cells}, got 'EU\\t\\tB-ORG'"
    )
    assert load_error(tmp_path, aligned, columns=Columns(tokens=1, tags=-1)).startswith(
        "train.conll:1: data.columns.tokens (column 1) is empty; the line has empty cells"
    )
    kaggle = "Sentence: 1\tThousands\tNNS\tO\n\tof\tIN\tO\n\tLondon\tNNP\tB-geo\n"
    expected = [("Thousands of London", (Span(13, 19, "geo"),))]
    assert read(tmp_path, kaggle, columns=Columns(tokens=1, tags=3)) == expected
    assert read(tmp_path, "  Paris B-LOC\n") == [("Paris", (Span(0, 5, "LOC"),))]  # spaces before: as before


def test_tab_indented_lines_read_with_the_default_columns(tmp_path: Path) -> None:
    """Lines that start with a tab (`<TAB>Paris<TAB>B-LOC`) failed as "data.columns.tokens (column 0) is empty"
    without any data.columns: a leading empty cell keeps its place for the positions data.columns gives, and in a
    file where only some token lines start with one, whose columns would shift left (and be read silently) without
    it; a file that starts every token line with a tab is read without them."""
    indented = "# id 1\n\tParis\tB-LOC\n\tis\tO\n\n\t\tBerlin\tB-LOC\n"
    assert read(tmp_path, indented) == [("Paris is", (Span(0, 5, "LOC"),)), ("Berlin", (Span(0, 6, "LOC"),))]
    assert read(tmp_path, indented, columns=Columns(tokens=-2, tags=-1)) == read(tmp_path, indented)
    assert load_error(tmp_path, indented, columns=Columns(tokens=0, tags=-1)).startswith(
        "train.conll:2: data.columns.tokens (column 0) is empty; the line has empty cells"
    )
    kaggle = "1\tThousands\tNNS\tO\n\tof\tIN\tO\n\tLondon\tNNP\tB-geo\n\n2\tFamilies\tNNS\tO\n"  # 'Sentence #' blank
    no_token = "Paris\tNNP\tB-LOC\n\tNN\tO\n"  # a token left out: its part of speech is no word
    for shifted, line in ((kaggle, "'\\tof\\tIN\\tO'"), (no_token, "'\\tNN\\tO'")):
        assert load_error(tmp_path, shifted) == (
            "train.conll:2: data.columns.tokens (column 0) is empty; the line has empty cells (each tab starts a "
            f"column: columns aligned with several tabs have empty ones between), got {line}"
        )
    assert read(tmp_path, kaggle, columns=Columns(tokens=1)) == [
        ("Thousands of London", (Span(13, 19, "geo"),)),
        ("Families", ()),
    ]


def test_tags_first_are_named_as_swapped_columns(tmp_path: Path) -> None:
    """MIT Movie and Restaurant files (`B-Actor<TAB>steve`) failed on "tag 'steve' is malformed", which did not say
    that the columns were the other way round, nor which setting reads them."""
    mit = "B-Actor\tsteve\nI-Actor\tmcqueen\nO\tprovided\n\nB-Title\to\nI-Title\tbrother\n"
    expected = (
        "train.conll:1: the columns look swapped: the first column of every line is a tag and the last is not (line 1: "
        "'B-Actor' then 'steve'), as the MIT Movie and Restaurant corpora write them; set data.columns.tokens to -1 "
        "and data.columns.tags to 0"
    )
    assert load_error(tmp_path, mit) == expected
    assert load_error(tmp_path, mit.replace("\t", " ")) == expected
    assert read(tmp_path, mit, columns=Columns(tokens=-1, tags=0)) == [
        ("steve mcqueen provided", (Span(0, 13, "Actor"),)),
        ("o brother", (Span(0, 9, "Title"),)),
    ]


def test_ontonotes_bracketed_columns_are_named_not_read_as_tags(tmp_path: Path) -> None:
    """CoNLL-2012 `*_conll` files failed on "tag '-' is malformed" (the coreference column), or on '(GPE)' with the
    entity column chosen, without saying that their bracket format is not read."""
    onto = (
        "#begin document (bc/cctv/00/cctv_0001); part 000\n"
        "bc/cctv/00/cctv_0001  0  0  Paris  NNP  (TOP(S(NP*)  -  -  -  Speaker#1  (GPE)  -\n"
        "bc/cctv/00/cctv_0001  0  1  lies   VBZ  (VP*)))      -  -  -  Speaker#1  *      -\n\n#end document\n"
    )
    message = load_error(tmp_path, onto)
    assert message.startswith("train.conll:2: a column in brackets and stars ('(TOP(S(NP*)'), as OntoNotes' CoNLL-2012")
    assert message.endswith(
        "is not read; convert the entities to one tag per line (B-PERSON, I-PERSON, O), or read "
        "hf://ontonotes/conll2012_ontonotesv5:english_v4 (datasets)"
    )
    assert load_error(tmp_path, onto, columns=Columns(tokens=3, tags=10)) == message


def test_conll_u_multiword_tokens_and_empty_nodes_are_no_words(tmp_path: Path) -> None:
    """`1-2 vámonos` stands before its words `1 vamos`, `2 nos`, and `2.1` is an empty node: read as words, they
    doubled the text."""
    conllu = (
        "# text = Vámonos a Madrid\n1-2\tVámonos\t_\t_\t_\t_\t_\t_\t_\tO\n1\tVamos\tir\t_\t_\t_\t0\troot\t_\tO\n"
        "2\tnos\tnosotros\t_\t_\t_\t1\tobj\t_\tO\n2.1\tir\t_\t_\t_\t_\t_\t_\t_\tO\n3\ta\ta\t_\t_\t_\t4\tcase\t_\tO\n"
        "4\tMadrid\tMadrid\t_\t_\t_\t1\tobl\t_\tB-LOC\n"
    )
    expected = [("Vamos nos a Madrid", (Span(12, 18, "LOC"),))]
    assert read(tmp_path, conllu, columns=Columns(tokens=1, tags=-1)) == expected


@pytest.mark.parametrize("tag", ["B-", "i-"])
def test_a_prefix_with_an_empty_type_is_malformed_not_an_io_type(tmp_path: Path, tag: str) -> None:
    """`#MeToo<TAB>B-` beside `O` tags only was read as an IO entity of the type 'B-'."""
    expected = f"train.conll:1: tag {tag!r} is malformed; expected 'O' or '<prefix>-<type>' with a prefix of B,"
    assert load_error(tmp_path, f"#MeToo\t{tag}\nis\tO\n\nfun\tO\n").startswith(expected)


def test_wikiann_language_codes_before_every_token_are_dropped(tmp_path: Path) -> None:
    """WikiANN's files (`en:Paris<TAB>B-LOC`, named train, dev, test) were read with `en:` in every word and entity:
    'en:Paris' was a location of the words en, :, Paris."""
    folder = tmp_path / "zh-min-nan"
    folder.mkdir()
    (folder / "train").write_text("zh-min-nan:Paris\tB-LOC\nzh-min-nan::\tO\n\nzh-min-nan:Bob\tB-PER\n", "utf-8")
    (folder / "dev").write_text("zh-min-nan:Anna\tB-PER\nzh-min-nan:left\tO\n", "utf-8")
    dataset = load_dataset(folder, format="conll")
    assert [(doc.text, doc.spans) for doc in (*dataset["train"], *dataset["validation"])] == [
        ("Paris :", (Span(0, 5, "LOC"),)),
        ("Bob", (Span(0, 3, "PER"),)),
        ("Anna left", (Span(0, 4, "PER"),)),
    ]
    assert read(tmp_path, "en:Paris\tB-LOC\nis\tO\n") == [("en:Paris is", (Span(0, 8, "LOC"),))]  # not every token
    # A file of links (every token `http:` then `//`) lost its schemes, read as '//a.com'.
    assert read(tmp_path, "http://a.com\tO\n\nhttp://b.com\tB-URL\n") == [
        ("http://a.com", ()),
        ("http://b.com", (Span(0, 12, "URL"),)),
    ]
    assert read(tmp_path, "en:Paris\tB-LOC\nen:/\tO\n") == [("Paris /", (Span(0, 5, "LOC"),))]  # a word '/' is one


def test_jnlpba_files_as_distributed_group_sentences_by_abstract(tmp_path: Path) -> None:
    """JNLPBA's Genia4ERtask1.iob2 was refused for its suffix, then at its `###MEDLINE:<id>` line before each abstract
    ("expected a token and a tag"); the line starts a document, as -DOCSTART- does, and the suffix is CoNLL's."""
    path = tmp_path / "Genia4ERtask1.iob2"
    medline = "###MEDLINE:96055242\n\nIL-2\tB-protein\ngene\tO\n\nIt\tO\n\n###MEDLINE:96055243\n\nT\tB-cell_type\n"
    path.write_text(medline, encoding="utf-8")
    documents = load_dataset(path)["train"]
    assert [(doc.text, doc.group) for doc in documents] == [("IL-2 gene", "doc1"), ("It", "doc1"), ("T", "doc2")]
    assert documents[0].spans == (Span(0, 4, "protein"),)


@pytest.mark.parametrize("space", ["\u00a0", "\u3000"])
def test_a_sentence_starting_with_a_no_break_space_token_reads_it_as_no_word(tmp_path: Path, space: str) -> None:
    """A tweet's token that is a no-break (or ideographic) space, first in its sentence, raised IndexError, then was
    refused; it is kept in the text, where it is no word, as a zero-width space token is."""
    assert read(tmp_path, f"{space}\tO\nParis\tB-LOC\n") == [(f"{space} Paris", (Span(2, 7, "LOC"),))]


def test_a_header_line_is_refused_as_one(tmp_path: Path) -> None:
    """`Word<TAB>Tag` atop a TSV file (pandas' `to_csv(sep="\t")`) failed as a malformed tag, which did not say why,
    and above IO tags (Few-NERD's `person-actor`) was read as a word of the entity type `label`."""
    headers = [("token\tlabel", "B-LOC"), ("Word\tPOS\tTag", "NNP\tB-LOC"), ("word\tlabel", "person")]
    headers += [("Token\tNE", "B-LOC"), ("word\tentity_type", "B-LOC"), ("\tWord\tTag", "0\tB-LOC")]  # pandas' index
    for header, tags in headers:
        message = load_error(tmp_path, f"{header}\nParis\t{tags}\n")
        assert (
            message == f"train.conll:1: {header.strip()!r} is a header line (column names, as spreadsheets and "
            "pandas write them); a CoNLL/TSV file has none: remove it"
        )
    io = "Text\tENTITY\nmining\tO\n\nsearch\tENTITY\n"  # a type that tags later lines: a word, not a header
    assert read(tmp_path, io) == [("Text mining", (Span(0, 4, "ENTITY"),)), ("search", (Span(0, 6, "ENTITY"),))]
    assert read(tmp_path, "Paris\tLOC\nis\tO\n\nword\tlabel\n") == [  # in a later sentence, words
        ("Paris is", (Span(0, 5, "LOC"),)),
        ("word", (Span(0, 4, "label"),)),
    ]
