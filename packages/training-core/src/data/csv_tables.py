"""CSV token tables: a header row naming the words and tags columns, then a row per word, as Kaggle's GMB corpus
(`ner_dataset.csv`: `Sentence #,Word,POS,Tag`, Latin-1) and spreadsheet exports ship NER data. Each sentence becomes a
token record, read downstream as a CoNLL sentence is, in the same document groups: a `-DOCSTART-` row starts one (and is
no word), as CoNLL's line does, and a document column's id names the group of its sentences."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

from data.columns import TAG_HEADERS, WORD_HEADERS, Columns, column
from data.formats import CONLL_SUFFIXES, CSV_SUFFIXES, DOCSTART, JSON_SUFFIXES, Record, conll_text, sentence_record
from data.text_files import HEAD_BYTES
from training.common.errors import DataError

# A new value starts a sentence: Kaggle's `Sentence #` is filled on a sentence's first row only, other exports repeat
# the id on every row. Without such a column, blank rows part sentences.
SENTENCE_HEADERS = ("sentence #", "sentence_id", "sentence_idx", "sent_id", "sentence")
# Sentence ids that restart in each document are told apart by a document column.
DOCUMENT_HEADERS = ("document #", "document_id", "doc_id", "document", "doc")
OPTIONAL = (SENTENCE_HEADERS, DOCUMENT_HEADERS)
# Cells part by commas, or by semicolons where the header row has more of them: Excel's CSV where the decimal mark is a
# comma.
_DELIMITER_NAMES = {",": "comma", ";": "semicolon"}


def csv_records(path: Path, text: str, columns: Columns = Columns()) -> Iterator[Record]:
    """A record per sentence of the CSV table `text` (the contents of `path`), its columns found by their header names
    (any case) or the names `columns` gives."""
    columns.refuse_positions(str(path), "a CSV file names its columns in its header")
    delimiter = _delimiter(text)
    rows = _rows(path, text, delimiter)
    header_line, header = next(((number, row) for number, row in rows if row), (1, []))
    if not header:
        raise DataError(f"{path}:1: the file is empty; expected a header row such as 'word,tag', then a row per word")
    words_at, tags_at, sentence_at, document_at = _header_columns(path, header_line, header, columns)
    tokens: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []
    read = False
    last = None  # the key (-DOCSTART- rows before, document and sentence ids) of the last sentence cell not empty
    started: dict[tuple[int, str, str], int] = {}  # each sentence's key: the line it starts on
    sentence_name = header[sentence_at] if sentence_at is not None else ""
    within = f" within its {header[document_at]!r} column" if document_at is not None else ""
    within = within or ", or give it a document column (doc_id) where sentence ids restart in each document"
    document, boundaries = "", 0  # the document column's id, and the `-DOCSTART-` rows so far
    group: str | None = None
    for number, row in rows:
        if row and len(row) != len(header):
            raise DataError(
                f"{path}:{number}: {len(row)} cells where the header (line {header_line}) has {len(header)}; a cell "
                f"holding a {_DELIMITER_NAMES[delimiter]} needs quotes, got {row!r}"
            )
        boundary = bool(row) and row[words_at].strip() == DOCSTART  # CoNLL's document line, as a row of its own
        boundaries += boundary
        cell = row[document_at].strip() if row and document_at is not None else ""
        new_document, document = bool(cell) and cell != document, cell or document  # a new document starts a sentence
        sentence = row[sentence_at].strip() if row and sentence_at is not None and not boundary else ""
        key = (boundaries, document, sentence)  # sentence ids may restart after a -DOCSTART- row too
        if sentence and key != last:
            if key in started:
                raise DataError(
                    f"{path}:{number}: sentence {sentence!r} again after another (it starts on line "
                    f"{started[key]}): a sentence's rows must be next to each other; "
                    f"sort the table by its {sentence_name!r} column{within}"
                )
            started[key] = number
        if tokens and (not row or boundary or new_document or (sentence and key != last)):
            yield sentence_record(tokens, tags, numbers, group)
            read, tokens, tags, numbers = True, [], [], []
        if not row or boundary:
            continue
        last = key if sentence else last
        # As in CoNLL, a sentence before any -DOCSTART- row (and without a document id) is a document of its own.
        # After -DOCSTART- rows, ids may restart (tables joined): a group is the id within its boundary's document.
        group = f"doc{boundaries}" + (f":{document}" if document else "") if boundaries else document or None
        word, tag = row[words_at].strip(), row[tags_at].strip()
        if not (word and tag):
            name, at = ("tokens", words_at) if not word else ("tags", tags_at)
            raise DataError(f"{path}:{number}: the {header[at]!r} cell (data.columns.{name}) is empty, got {row!r}")
        tokens.append(word)
        tags.append(tag)
        numbers.append(number)
    if tokens:
        yield sentence_record(tokens, tags, numbers, group)
    elif not read:
        raise DataError(f"{path}:{header_line}: a header row and no words; expected a row per word after it")


def is_csv_table(path: Path, text: str, columns: Columns = Columns()) -> bool:
    """Whether the data file at `path` (its contents `text`) is a CSV table: a `.csv` file, or one of no suffix
    of JSON's or CoNLL's (or `.txt`, where its first line is no token line) whose header names a words and a tags
    column."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return True
    other = suffix not in JSON_SUFFIXES | CONLL_SUFFIXES or (suffix == ".txt" and not conll_text(text))
    return other and csv_header(path, text[:HEAD_BYTES], columns)


def csv_header(path: Path, text: str, columns: Columns = Columns()) -> bool:
    """Whether the first row of `text` (the start of `path`) that is not blank, read as CSV, names a words column and
    a tags column."""
    try:
        header = next((row for _, row in _rows(path, text, _delimiter(text)) if row), [])
    except DataError:  # not CSV, or a start cut inside a quoted cell
        return False
    names = [cell.strip().lower() for cell in header]
    return all(
        _header_name(names, chosen, usual, columns.inherited) in names
        for chosen, usual in ((columns.tokens, WORD_HEADERS), (columns.tags, TAG_HEADERS))
    )


def _header_columns(
    path: Path, line: int, header: list[str], columns: Columns
) -> tuple[int, int, int | None, int | None]:
    """The positions of the words, tags, sentence and document (None: no such) columns of `header`, on `line` of
    `path`."""
    names = [cell.strip().lower() for cell in header]
    found = []
    for setting, kind, chosen, usual in (
        ("tokens", "words", columns.tokens, WORD_HEADERS),
        ("tags", "tags", columns.tags, TAG_HEADERS),
    ):
        name = _header_name(names, chosen, usual, columns.inherited)
        if name not in names:
            one_cell = " is one cell (cells part by commas or semicolons), and" if len(header) == 1 else ""
            where = f"{path}:{line}: the header {header!r}{one_cell}"
            if isinstance(chosen, str) and not columns.inherited:
                raise DataError(f"{where} has no column {chosen!r} (data.columns.{setting})")
            raise DataError(
                f"{where} has no {kind} column (named {', '.join(usual)}, any case); name it in data.columns.{setting}"
            )
        found.append(names.index(name))
    sentence, document = (next((names.index(name) for name in usual if name in names), None) for usual in OPTIONAL)
    return found[0], found[1], sentence, document


def _header_name(names: list[str], chosen: str | int | None, usual: tuple[str, ...], inherited: bool) -> str | None:
    """The lower-case header name of a column: `chosen` (a run's only where present), else the first usual one."""
    return column(names, chosen.lower() if isinstance(chosen, str) else None, usual, inherited)


def _delimiter(text: str) -> str:
    """The character that parts the cells of the CSV table `text`, told by its first line that is not blank."""
    first = re.search(r"\S[^\r\n]*", text)  # the line ends at "\r" alone too (old Mac files), where `.` does not stop
    header = first.group() if first else ""
    cells = {delimiter: len(next(csv.reader([header], delimiter=delimiter), [])) for delimiter in _DELIMITER_NAMES}
    return ";" if cells[";"] > cells[","] else ","  # a quoted "Satz, Nr." in a table of semicolons


def _rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each row of `text` with the line it starts on; a blank row, or one of empty cells (a spreadsheet's), is []."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for row in reader:
            yield start, row if any(cell.strip() for cell in row) else []
            start = reader.line_num + 1
    except csv.Error as error:  # a quote left open, or text after a closing quote
        raise DataError(f"{path}:{start}: not a CSV row: {error}") from error
