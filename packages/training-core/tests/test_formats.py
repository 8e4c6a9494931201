"""File readers: UTF-8 text, format detection, JSON arrays and lines, CoNLL columns, with line numbers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from data.columns import Columns
from data.documents import Span
from data.formats import Record, detect_format, json_format, read_records
from data.loaders import load_dataset
from data.text_files import EncodingError, decode_text, read_data, read_head, read_text
from training.common.errors import DataError


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def records(path: Path, format: str) -> list[Record]:
    return list(read_records(path, read_text(path), format))


def test_read_text_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", "\ufeff{}".encode())
    assert read_text(path) == "{}"


def test_read_text_names_the_line_of_a_non_utf8_byte(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"a\.jsonl:2: not valid UTF-8 \(byte 0xe9 at offset 28\); re-encode"):
        read_text(path)


def test_a_data_file_is_read_in_its_data_encoding(tmp_path: Path) -> None:
    """CoNLL-2002's Spanish and Dutch files are Latin-1: refused as not UTF-8 with no way to read them as they are."""
    path = write(tmp_path / "esp.train", "Guardia B-ORG\nEspaña B-LOC\n".encode("latin-1"))
    with pytest.raises(EncodingError) as caught:
        read_data(path)
    assert str(caught.value) == (
        f"{path}:2: not valid UTF-8 (byte 0xf1 at offset 18); re-encode the text as UTF-8, or give its encoding in "
        "data.encoding (--encoding of evaluate and report): latin-1 for CoNLL-2002's files"
    )
    assert read_data(path, "latin-1") == read_data(path, "ISO-8859-1") == "Guardia B-ORG\nEspaña B-LOC\n"
    assert read_data(write(tmp_path / "a.conll", "\ufeffEspaña B-LOC\n".encode()), "UTF8") == "España B-LOC\n"
    with pytest.raises(DataError) as caught:  # the encoding asked for, not UTF-8, is named with the file and line
        read_data(path, "ascii")
    assert str(caught.value) == (
        f"{path}:2: not valid ascii (byte 0xf1 at offset 18), the encoding data.encoding (or --encoding) names; give "
        "the file's"
    )


def test_windows_text_read_as_latin1_is_refused_naming_cp1252(tmp_path: Path) -> None:
    """cp1252's curly quotes, dashes and euro sign read as Latin-1 are control characters, which split a word (don't
    with a curly apostrophe: don, t) or vanish from the text, silently: such a file is refused, naming cp1252."""
    text = "Eve O\ndon\u2019t O\ncosts O\n\u20ac5 O\n"
    path = write(tmp_path / "train.conll", text.encode("cp1252"))
    for latin in ("latin-1", "iso-8859-15"):
        with pytest.raises(EncodingError) as caught:
            read_data(path, latin)
        assert str(caught.value) == (
            f"{path}:2: byte 0x92 at offset 9 is a control character in {latin}, and '\u2019' in cp1252, as Windows "
            "writes such text; set data.encoding (or --encoding) to cp1252"
        )
    assert read_data(path, "cp1252") == text
    stray = write(tmp_path / "stray.conll", b"Eve O\n\x81 O\n\x92 O\n")  # 0x81: no cp1252 text, so not Windows'
    assert read_data(stray, "latin-1") == "Eve O\n\x81 O\n\x92 O\n"


def test_a_utf8_file_is_read_as_utf8_in_a_run_of_another_encoding(tmp_path: Path) -> None:
    """A Latin-1 run evaluating a UTF-8 file read 'España' as 'EspaÃ±a', without an error: UTF-8 beyond ASCII is
    never accented Latin-1 text, and is read as UTF-8; other bytes are still read in the encoding named."""
    utf8 = write(tmp_path / "mine.conll", "España B-LOC\n".encode())
    assert read_data(utf8, "latin-1") == read_data(utf8, "cp1252") == "España B-LOC\n"
    latin = write(tmp_path / "esp.testa", "España B-LOC\n".encode("latin-1"))
    assert read_data(latin, "latin-1") == "España B-LOC\n"
    utf16 = write(tmp_path / "wide.conll", "España B-LOC\n".encode("utf-16"))
    assert read_data(utf16, "utf-16") == "España B-LOC\n"
    for wide in (utf16, write(tmp_path / "bare.conll", "Paris B-LOC\n".encode("utf-16-le"))):  # no 8-bit text
        with pytest.raises(EncodingError, match=r"UTF-16 or UTF-32|UTF-16 text"):
            read_data(wide, "latin-1")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_file_without_nuls_is_read_as_utf8_in_a_utf16_run(tmp_path: Path, encoding: str) -> None:
    """A UTF-16 run evaluating an ASCII file read its pairs of letters as CJK characters ('\u5545...', refused as a
    line without a tag), or named a byte at its end: UTF-16 or UTF-32 text of lines holds a NUL in each line break."""
    ascii = write(tmp_path / "other.conll", b"EU B-ORG\nsays O\n")
    assert read_data(ascii, encoding) == read_head(ascii, encoding=encoding) == "EU B-ORG\nsays O\n"
    assert [doc.tags for doc in load_dataset(ascii, encoding=encoding)["train"]] == [("B-ORG", "O")]
    wide = write(tmp_path / "wide.conll", "EU B-ORG\n".encode(encoding))
    assert read_data(wide, encoding) == read_head(wide, encoding=encoding) == "EU B-ORG\n"


def test_a_decoding_error_carries_its_line_and_reason_and_pickles_whole() -> None:
    # A config file words its own message from the parts; a trial process sends the error back pickled.
    with pytest.raises(EncodingError) as caught:
        decode_text(b"ok\ncaf\xe9\n", "notes.txt")
    error = pickle.loads(pickle.dumps(caught.value))
    assert (error.line, error.reason) == (2, "not valid UTF-8 (byte 0xe9 at offset 6); re-encode the text as UTF-8")
    assert str(error) == f"notes.txt:2: {error.reason}"
    with pytest.raises(EncodingError) as caught:  # a byte-order mark counts: offsets are the file's
        decode_text(b"\xef\xbb\xbfok\nok\ncaf\xe9\n", "notes.txt")
    assert (caught.value.line, caught.value.reason[:37]) == (3, "not valid UTF-8 (byte 0xe9 at offset ")
    assert "offset 12)" in caught.value.reason
    with pytest.raises(EncodingError) as caught:
        decode_text("x".encode("utf-16"), "notes.txt")
    assert caught.value.line is None
    assert str(caught.value) == f"notes.txt: {caught.value.reason}"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_read_text_names_a_utf16_file_as_such(tmp_path: Path, encoding: str) -> None:
    # Notepad's "Unicode" and Windows PowerShell's `>` write UTF-16 with a BOM: the error named byte 0xff (or 0xfe).
    text = "\ufeffJohn Smith\r\n" if encoding.endswith("be") else "John Smith\r\n"
    path = write(tmp_path / "texts.txt", text.encode(encoding))
    utf = encoding[:6].upper()
    with pytest.raises(DataError, match=rf"^\S+texts\.txt: {utf} text \(it starts with a {utf} byte-order mark\)"):
        read_text(path)


@pytest.mark.parametrize("text", ["Paris\tB-LOC\nis\tO\n", "Zürich\tB-LOC\nis\tO\n"])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_read_text_names_utf16_without_a_byte_order_mark(tmp_path: Path, encoding: str, text: str) -> None:
    """UTF-16 of ASCII text without a BOM decodes as UTF-8 with a NUL after each letter: a CoNLL file failed on "got
    '\\x00'" at its line 3, a JSON lines file as invalid JSON. Text beyond ASCII was 'not valid UTF-8' at the 'ü',
    and told to name its encoding in data.encoding even where latin-1 was named."""
    path = write(tmp_path / "train.conll", text.encode(encoding))
    for read in (read_text, lambda path: read_data(path, "latin-1")):
        with pytest.raises(DataError) as caught:
            read(path)
        assert str(caught.value) == (
            f"{path}:1: starts with NUL characters, as UTF-16 or UTF-32 text without a byte-order mark does; save it "
            "as UTF-8"
        )


@pytest.mark.parametrize("text", ["G\x00oogle Dublin\n", "a\x00b\n", "\x00Google\n"])
def test_a_nul_inside_utf8_text_is_no_utf16(tmp_path: Path, text: str) -> None:
    # One NUL among a text's first two characters was taken for UTF-16 without a byte-order mark, and refused.
    assert read_text(write(tmp_path / "texts.txt", text.encode())) == text
    accented = write(tmp_path / "data.txt", f"{text}café\n".encode())  # UTF-8 beyond ASCII: read so in any encoding
    assert read_data(accented, "latin-1") == f"{text}café\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.jsonl", '{"text": "x", "annotations": []}\n', "spans"),
        ("a.json", '[{"tokens": ["x"], "tags": ["O"]}]', "tokens"),
        ("a.ndjson", '\n{"tokens": ["x"], "ner_tags": ["O"]}\n', "tokens"),
        ("a.jsonl", '{"text": "x y", "tokens": ["x", "y"], "ner_tags": ["B-PER", "O"]}\n', "tokens"),
        ("a.jsonl", '{"text": "x", "annotations": [], "tokens": ["x"], "tags": ["O"]}\n', "spans"),
        # Prodigy: token objects beside character spans (a spans record, whose reader names what it lacks)
        ("a.jsonl", '{"text": "x", "tokens": [{"text": "x", "start": 0}], "spans": []}\n', "spans"),
        ("a.conll", "x O\n", "conll"),
        ("a.iob", "x O\n", "conll"),
        ("a.txt", "x O\n", "conll"),
        ("a.jsonl", "", "spans"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = write(tmp_path / name, content)
    assert detect_format(path, content) == expected


@pytest.mark.parametrize("key", ["entities", "spans", "ents", "label"])
def test_the_span_keys_of_tool_exports_tell_span_records_but_not_tagged_ones(tmp_path: Path, key: str) -> None:
    """doccano's `entities` (or `label` list), Prodigy's `spans` and spaCy's `ents` beside a text and token objects
    tell span records; beside tokens and tags (a `text` sentence kept too) the tags are read, as before such keys
    were read: an empty list there is no sign that the sentence has no entity."""
    prodigy = json.dumps({"text": "x", key: [], "tokens": [{"text": "x", "start": 0, "end": 1, "id": 0}]})
    path = write(tmp_path / "a.jsonl", prodigy)
    assert detect_format(path, prodigy) == json_format(path, prodigy, kept="tokens") == "spans"
    tagged = json.dumps({"text": "Paris", key: [], "tokens": ["Paris"], "ner_tags": ["B-LOC"]})
    assert detect_format(path, tagged) == json_format(path, tagged, kept="spans") == "tokens"
    write(path, tagged)
    assert [doc.spans for doc in load_dataset(path)["train"]] == [(Span(0, 5, "LOC"),)]


def test_detect_format_rejects_an_unknown_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "a.dat", "x,O\n")
    with pytest.raises(
        DataError,
        match=r"a\.dat: unknown file type '\.dat', and its first line 'x,O' is no CoNLL token line \(a token and a "
        r"tag, such as 'Paris B-LOC'\); expected one of .*\.csv.*, or name the format \(spans, tokens, conll, brat, "
        r"csv\) in data\.format \(--set data\.format=NAME\), --format \(evaluate, report\) or format=",
    ):
        detect_format(path, "x,O\n")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("train", "en:Paris\tB-LOC\nen:is\tO\n"),  # WikiANN's own files
        ("emerging.test.annotated", "@paulwalk\tO\n"),  # WNUT-17's test file
        ("eng.train.gold", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n"),
        ("NER-de-train.gold", "#\thttp://de.wikipedia.org/wiki/Manfred_Korfmann\n1\tAufgrund\tO\tO\n"),
    ],
)
def test_token_lines_of_another_suffix_are_conll(tmp_path: Path, name: str, content: str) -> None:
    """A corpus's own names (`train`, `.annotated`) were refused as of an unknown file type ('' for none)."""
    assert detect_format(write(tmp_path / name, content), content) == "conll"


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ('{"text": "Paris", "annotations": []}\n', 'its first line \'{"text": "Paris", "annotations": []}\' is'),
        ("Paris\n", "its first line 'Paris' is"),
        ("Paris is nice\n", "its first line 'Paris is nice' is"),
        ("\n# a comment\n", "it has"),
    ],
)
def test_a_file_without_a_suffix_or_token_lines_is_refused_naming_what_it_holds(
    tmp_path: Path, content: str, found: str
) -> None:
    path = write(tmp_path / "train", content)
    with pytest.raises(DataError) as caught:
        detect_format(path, content)
    assert str(caught.value).startswith(f"{path}: a file without a suffix, and {found} no CoNLL token line (a token ")


def test_detect_format_names_a_record_of_neither_kind(tmp_path: Path) -> None:
    content = '\n{"sentence": ["x"]}\n'
    path = write(tmp_path / "a.jsonl", content)
    with pytest.raises(DataError, match=r"a\.jsonl:2: cannot tell the format: .*found keys \['sentence'\]"):
        detect_format(path, content)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"toks": ["x"], "bio": ["O"]}, "tokens"),
        ({"text": "x", "toks": ["x"], "bio": ["O"]}, "tokens"),
        ({"text": "x", "annotations": [], "toks": ["x"], "bio": ["O"]}, "tokens"),  # named: token records
        ({"text": "x", "annotations": []}, "spans"),  # whose names are then refused
        ({"words": ["x"]}, "tokens"),  # whose missing key is then named
    ],
)
def test_detect_format_by_the_keys_data_columns_names(tmp_path: Path, record: dict[str, Any], expected: str) -> None:
    """Records of the keys `data.columns` names were told neither spans nor tokens ('cannot tell the format')."""
    content = json.dumps(record) + "\n"
    path = write(tmp_path / "a.jsonl", content)
    assert detect_format(path, content, Columns("toks", "bio")) == expected


def test_json_lines_keep_their_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"id": 1}\n\n{"id": 2}\n')
    assert [(r.line, r.fields) for r in records(path, "spans")] == [(1, {"id": 1}), (3, {"id": 2})]


def test_json_array_elements_keep_their_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", '[\n  {"id": 1},\n\n  {"id": 2,\n   "x": 0}\n]\n')
    assert [(r.line, r.fields["id"]) for r in records(path, "spans")] == [(2, 1), (4, 2)]


def test_empty_json_array_has_no_records(tmp_path: Path) -> None:
    assert records(write(tmp_path / "a.json", " [ ]\n"), "spans") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1}\n{"id": 2,}\n', r"a\.json:2: invalid JSON: Expecting property name"),
        ('[\n {"id": 1},\n {"id" 2}\n]', r"a\.json:3: invalid JSON: Expecting ':' delimiter \(column 8\)"),
        ('[\n {"id": 1}\n {"id": 2}\n]', r"a\.json:3: invalid JSON: expected ',' or ']' after an array element"),
        ('[\n {"id": 1},\n]\n', r"a\.json:3: invalid JSON: trailing comma before '\]'"),
        ('[\n {"id": 1}\n]\n{"id": 2}\n', r"a\.json:4: invalid JSON: unexpected content after the closing '\]'"),
        ('[\n {"id": 1}', r"a\.json:2: invalid JSON: expected ',' or ']' after an array element"),
        ('[\n {"id": 1},\n "text"\n]', r"a\.json:3: expected a JSON object per document, got str"),
        ('{"id": 1}\n[1, 2]\n', r"a\.json:2: expected a JSON object per document, got list"),
    ],
)
def test_malformed_json_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "a.json", content)
    with pytest.raises(DataError, match=message):
        records(path, "spans")


DEEP = "[" * 100_000 + "]" * 100_000  # deeper than json's recursion can read


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f'{{"id": 1}}\n{{"id": {DEEP}}}\n', r"a\.json:2: invalid JSON: nested too deeply to read, hundreds of lists"),
        (f'[\n {{"id": 1}},\n {{"id": {DEEP}}}\n]', r"a\.json:3: invalid JSON: nested too deeply to read, hundreds of"),
        (f'{{"id":\n{DEEP}}}\n', r"a\.json:1: invalid JSON: Expecting value \(column 7\)"),  # an object over lines?
    ],
)
def test_json_nested_too_deeply_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    """JSON nested deeper than Python's recursion limit was a RecursionError (an internal error of the CLI)."""
    with pytest.raises(DataError, match=message):
        records(write(tmp_path / "a.json", content), "spans")


def test_conll_sentences_documents_and_columns(tmp_path: Path) -> None:
    content = (
        "-DOCSTART- -X- -X- O\n\n"
        "John NNP B-NP B-PER\nSmith NNP I-NP I-PER\n\n"
        "Paris NNP B-NP B-LOC\n"
        "-DOCSTART- -X- -X- O\n"
        "Acme\tB-ORG\n"
    )
    found = records(write(tmp_path / "a.conll", content), "conll")
    assert [(r.line, r.fields, r.group) for r in found] == [
        (3, {"tokens": ["John", "Smith"], "tags": ["B-PER", "I-PER"]}, "doc1"),
        (6, {"tokens": ["Paris"], "tags": ["B-LOC"]}, "doc1"),
        (8, {"tokens": ["Acme"], "tags": ["B-ORG"]}, "doc2"),
    ]


def test_conll_line_without_a_tag(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "John B-PER\nSmith\n")
    with pytest.raises(DataError, match=r"a\.conll:2: expected a token and a tag separated by whitespace, got 'Smith'"):
        records(path, "conll")


def test_conll_lines_with_a_column_more_or_less_are_refused(tmp_path: Path) -> None:
    """Space-separated "New York B-LOC" among two-column lines read York as a middle column and lost it unsaid."""
    for text in ("John B-PER\n\nNew York B-LOC\nis O\n", "John\tB-PER\n\nNew York B-LOC\nis\tO\n"):
        with pytest.raises(DataError, match=r"a\.conll:3: 3 columns where line 1 has 2; .* 'New York B-LOC'"):
            records(write(tmp_path / "a.conll", text), "conll")
    with pytest.raises(DataError, match=r"a\.conll:2: 2 columns where line 1 has 3; .* got 'is O'"):  # either is odd
        records(write(tmp_path / "a.conll", "New York B-LOC\nis O\n"), "conll")


def test_a_tab_separated_line_without_its_tag_is_refused(tmp_path: Path) -> None:
    """CoNLL-2003 in tabs, a line's tag missing (or its cell empty): the last column left, the chunk tag B-VP, was read
    as the tag of an entity of type VP. An empty cell, columns aligned by tabs, a sentence of other columns (files
    joined) and columns at positions from the start are read as before."""
    for line in ("lives\tVBZ\tB-VP", "lives\tVBZ\tB-VP\t"):
        path = write(tmp_path / "a.conll", f"John\tNNP\tB-NP\tB-PER\n{line}\nin\tIN\tB-PP\tO\n")
        with pytest.raises(DataError) as caught:
            records(path, "conll")
        expected = "3 columns where line 1 has 4; each line of a sentence needs every cell, the tag last, got "
        assert str(caught.value) == f"{path}:2: {expected}'lives\\tVBZ\\tB-VP'"
    path = write(tmp_path / "b.conll", "John\tNNP\tB-PER\nlives\t\tO\n\nParis\t\tB-LOC\nis\tO\n")
    assert [r.fields["tags"] for r in records(path, "conll")] == [["B-PER", "O"], ["B-LOC", "O"]]
    path = write(tmp_path / "c.conll", "1\tJohn\tB-PER\tO\n2\tlives\tO\n")
    fields = [r.fields for r in read_records(path, read_text(path), "conll", (1, 2))]
    assert fields == [{"tokens": ["John", "lives"], "tags": ["B-PER", "O"]}]


def test_blanks_at_a_conll_line_s_end_are_ignored_tabs_too(tmp_path: Path) -> None:
    """'Paris B-LOC<TAB>' was split at its tab, as a tab-separated line, into one column and refused ("expected a
    token and a tag"), while trailing spaces were ignored; any blanks at a line's end are now, in a file of tabs too."""
    expected = [{"tokens": ["Paris", "is", "New"], "tags": ["B-LOC", "O", "B-LOC"]}]
    for text in ("Paris B-LOC\t\nis O \t \nNew B-LOC\f\v\t\n", "Paris\tB-LOC\t\nis\tO \t\nNew\tB-LOC\n"):
        assert [r.fields for r in records(write(tmp_path / "a.conll", text), "conll")] == expected
    path = write(tmp_path / "train", "Paris B-LOC\t\nis O\n")  # no suffix: told CoNLL by its first line
    assert detect_format(path, read_text(path)) == "conll"
    with pytest.raises(DataError, match=r"a\.conll:2: 3 columns where line 1 has 2; .* got 'New York B-LOC'"):
        records(write(tmp_path / "a.conll", "Paris B-LOC\nNew York B-LOC\t\n"), "conll")


def test_conll_columns_break_at_spaces_and_tabs_only(tmp_path: Path) -> None:
    """A no-break or em space inside a token keeps the token whole; `str.split` cut it and dropped the rest."""
    path = write(tmp_path / "a.conll", "New\u00a0York B-LOC\r\nis\tO\n\u00a0\nSome\u2003thing O\n")
    assert [r.fields for r in records(path, "conll")] == [
        {"tokens": ["New\u00a0York", "is"], "tags": ["B-LOC", "O"]},
        {"tokens": ["Some\u2003thing"], "tags": ["O"]},
    ]


def test_a_form_feed_inside_a_conll_token_is_refused_on_its_own_line(tmp_path: Path) -> None:
    """A form feed or vertical tab parted columns as a space does: 'New<FF>York B-LOC' was three columns, and the error
    named the next line ('2 columns where line 1 has 3'). Columns part at spaces and tabs, as the format has them: the
    token stays whole and its own line refuses it; one beside a column (a page break) is blank, as before."""
    for blank in ("\f", "\v"):
        for line in (f"New{blank}York B-LOC", f"New{blank}York\tB-LOC"):
            path = write(tmp_path / "a.conll", f"{line}\nis O\n\nHe O\n")
            with pytest.raises(DataError) as caught:
                load_dataset(path)
            assert str(caught.value) == f"{path}:1: token 0 ({f'New{blank}York'!r}) is empty or contains whitespace"
        path = write(tmp_path / "a.conll", f"{blank}Paris B-LOC\nis {blank}O\n{blank}\nHe\t{blank}O{blank}\n")
        assert [r.fields["tokens"] for r in records(path, "conll")] == [["Paris", "is"], ["He"]]


def test_conll_lines_end_at_a_carriage_return_too(tmp_path: Path) -> None:
    """Old Mac files end lines at "\\r" alone: the whole file was one line, read as one word with the last tag."""
    path = write(tmp_path / "a.conll", "Apple B-ORG\rInc O\r\rin O\rNew B-LOC\rYork I-LOC")
    assert [(r.line, r.fields) for r in records(path, "conll")] == [
        (1, {"tokens": ["Apple", "Inc"], "tags": ["B-ORG", "O"]}),
        (4, {"tokens": ["in", "New", "York"], "tags": ["O", "B-LOC", "I-LOC"]}),
    ]


def test_json_objects_over_several_lines_are_named_as_such(tmp_path: Path) -> None:
    """Valid JSON indented over lines (`jq` without `-c`) or documents wrapped in an object read as "invalid JSON"."""
    document = '{\n  "text": "x",\n  "annotations": []\n}'
    for content, expected in [
        ('{"data": [\n  {"text": "x", "annotations": []}\n]}', r"a\.json:1: .* over lines 1-3, .* \['data'\];"),
        ('{"text": "x", "annotations": []}\n' + document * 2, r"a\.json:2: .*2-5, .* \['annotations', 'text'\];"),
    ]:
        with pytest.raises(DataError, match=expected):
            records(write(tmp_path / "a.json", content), "spans")


def test_conll_files_joined_with_their_byte_order_marks(tmp_path: Path) -> None:
    """The second file's BOM hid its `-DOCSTART-`: a sentence of the word `-DOCSTART-`, and one document for both."""
    part = "\ufeff-DOCSTART- -X- -X- O\n\n{} NNP B-NP B-{}\n\n"
    path = write(tmp_path / "a.conll", part.format("John", "PER") + part.format("Paris", "LOC"))
    assert [(r.group, r.fields) for r in records(path, "conll")] == [
        ("doc1", {"tokens": ["John"], "tags": ["B-PER"]}),
        ("doc2", {"tokens": ["Paris"], "tags": ["B-LOC"]}),
    ]


def test_json_lines_joined_with_their_byte_order_marks(tmp_path: Path) -> None:
    """A BOM on a line of its own (a file joined that starts with a blank line) is a blank line: it was invalid JSON."""
    part = '\ufeff{"tokens": ["%s"], "tags": ["B-PER"]}\n'
    path = write(tmp_path / "a.jsonl", part % "John" + part % "Mary" + "\ufeff\n" + part % "Anna" + "\ufeff")
    lines = [(r.line, r.fields["tokens"]) for r in records(path, "tokens")]
    assert lines == [(1, ["John"]), (2, ["Mary"]), (4, ["Anna"])]


def test_unknown_format_name(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", "")
    with pytest.raises(DataError, match=r"a\.jsonl: unknown format 'xml'; expected one of auto, spans, tokens, conll"):
        records(path, "xml")


def test_json_lines_end_at_newline_only(tmp_path: Path) -> None:
    """U+2028 and U+0085 may stand raw inside a JSON string (`str.splitlines` cuts there); only `\\n` ends a line."""
    text = "first\u2028second\x85third"
    lines = '{"text": "' + text + '", "annotations": []}\r\n{"text": "b", "annotations": []}\n'
    path = write(tmp_path / "a.jsonl", lines)
    found = records(path, "spans")
    assert [(r.line, r.fields["text"]) for r in found] == [(1, text), (2, "b")]


def test_json_lines_end_at_a_carriage_return_too_as_conll_lines_do(tmp_path: Path) -> None:
    """JSON lines ending at "\\r" alone (old Mac files) were one line, refused as 'invalid JSON: Extra data', while a
    CoNLL file of such lines reads; lines end as CoNLL's do, and messages count them so, in JSON arrays too."""
    tokens = '{"tokens": ["%s"], "tags": ["B-LOC"]}'
    path = write(tmp_path / "train.jsonl", "\r".join([tokens % "Paris", "", tokens % "Rome", "", ""]))
    assert [doc.text for doc in load_dataset(path)["train"]] == ["Paris", "Rome"]
    assert [r.line for r in records(path, "tokens")] == [1, 3]
    with pytest.raises(DataError, match=r"a\.jsonl:3: invalid JSON: Expecting value \(column 1\)$"):
        records(write(tmp_path / "a.jsonl", "\r".join([tokens % "Paris", "", "]"])), "tokens")
    array = ["[", tokens % "Paris" + ",", "", tokens % "Rome", "]"]
    assert [r.line for r in records(write(tmp_path / "a.json", "\r".join(array)), "tokens")] == [2, 4]
    array[1] = tokens % "Paris"  # no comma after it
    with pytest.raises(DataError, match=r"a\.json:4: invalid JSON: expected ',' or '\]' after an array element$"):
        records(write(tmp_path / "a.json", "\r\n".join(array)), "tokens")


def test_json_lines_saved_under_a_conll_suffix_are_read_as_json_and_conll_in_json_says_so(tmp_path: Path) -> None:
    """Under `format: auto` the suffix decided alone: JSON lines in a `.txt` file failed as CoNLL ('42 columns where
    line 1 has 104'), and CoNLL in a `.json` file as 'invalid JSON' with no word of what it is."""
    record = '{"text": "Anna lives in Paris", "annotations": [[14, 19, "LOC"]]}\n'
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "train.txt").write_text(record * 2, encoding="utf-8")
    assert [doc.spans for doc in load_dataset(tmp_path / "a" / "train.txt")["train"]] == [(Span(14, 19, "LOC"),)] * 2
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "train.json").write_text("Paris B-LOC\nis O\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.json:1: invalid JSON: .*; it reads as CoNLL \(a token and a tag"):
        load_dataset(tmp_path / "b" / "train.json")
