"""Readers for the supported file formats, yielding raw records with their line numbers.

- `spans`: JSON array or JSON lines of `{"text": ..., "annotations": [[start, end, label], ...]}`, or the span lists
  annotation tools export: doccano's (`entities` of `{start_offset, end_offset, label}`, or its older `label` list)
  Prodigy's (`spans`, beside its token objects; records answered `reject` or `ignore` are skipped and counted) and
  spaCy's `Doc.to_json()` (`ents`)
- `tokens`: JSON array or JSON lines of `{"tokens": [...], "tags" | "ner_tags": [...]}`, or the keys `data.columns`
  names (as it names the columns of `datasets` input, whose usual names are found too: `words`, `labels`)
- `conll`: columns separated by tabs (where a line has one) or spaces, token first and tag last (or at the positions
  `data.columns` gives), blank lines between sentences. A `#` line before a sentence is a comment (CoNLL-U,
  MultiCoNER, GermEval) unless it has the columns, separator and a tag of the file's first token line: a `#` token
  (`#<TAB>O`), as tweet corpora write them; with space-separated pairs, `# I-95` is the token `#` tagged `I-95`.
  WikiANN's language code before every token (`en:Paris`) is dropped.
- `brat`: a folder of brat standoff `NAME.txt` and `NAME.ann` pairs (or `train`, `dev`, `test` subfolders of them),
  read by `data.brat`
- `csv`: a token table with a header row naming its words and tags columns, a row per word, as Kaggle's GMB corpus
  (`ner_dataset.csv`, Latin-1: `data.encoding: latin-1`) ships it; read by `data.csv_tables`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from data.columns import (
    NAMED_SPAN_KEYS,
    TAG_COLUMNS,
    TOKEN_COLUMNS,
    Columns,
    column,
    header_line,
    span_keys,
)
from data.schemes import is_tag
from training.common.errors import TOO_DEEP, DataError

FORMATS = ("spans", "tokens", "conll", "brat", "csv")
DOCSTART = "-DOCSTART-"  # CoNLL's line before each document (CoNLL-2003: `-DOCSTART- -X- -X- O`)
# CoNLL-2002/2003 files are distributed as eng.train, eng.testa, eng.testb (see `data.split_names`).
CONLL_SUFFIXES = frozenset({".conll", ".conllu", ".iob", ".iob2", ".bio", ".txt", ".tsv", ".train", ".testa", ".testb"})
JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv"})  # read by `data.csv_tables`
_JSON_SPACE = re.compile(r"[ \t\r\n]*")
# JSON may escape half a surrogate pair (a string cut inside an emoji), and a locale that cannot decode an argument's
# bytes leaves them as U+DC80-U+DCFF: no text, and nothing UTF-8 (or a tokenizer) can encode.
HALF_SURROGATE = re.compile("[\ud800-\udfff]")
_CONLL_COLUMN_BREAK = re.compile(" +")  # as the format parts columns: a token's own form feed or U+00A0 is kept
_BLANKS = " \t\f\v"
# Lines of text end at "\n", "\r\n" or "\r" (old Mac files), not at U+2028, U+0085 as `str.splitlines` would.
LINE_BREAK = re.compile(r"\r\n?|\n")
_TEXT_LINE = re.compile(r"[^\r\n]+")  # a line not blank, found lazily: a file's start tells its format
_STARRED = re.compile(r"[(\w$-]*\*\)*")  # OntoNotes' parse and entity columns: `(TOP(S(NP*`, `(PERSON*`, `*`, `*))`
_INDEX = re.compile(r"\d+(?:[-.]\d+)?")  # CoNLL-U numbers words 1, 2, ..., multiword tokens 1-2, empty nodes 8.1
_LANGUAGE = re.compile(r"[a-z]+(?:-[a-z]+)*:")  # WikiANN's `en:`, `simple:`, `zh-min-nan:`
_NO_WORD = re.compile(r"\d+[-.]\d+")  # a CoNLL-U multiword token (its words follow) or empty node: no word to tag


@dataclass(frozen=True, slots=True)
class Record:
    """One document as written in a file, before validation; `lines` are its tokens' own (a CoNLL sentence's), `file`
    its own where a split's documents are files of their own (brat's, whose errors name the file, not a line)."""

    line: int
    fields: dict[str, Any]
    group: str | None = None
    lines: Sequence[int] = ()
    file: str | None = None


def sentence_record(tokens: list[str], tags: list[str], numbers: list[int], group: str | None = None) -> Record:
    """A sentence's token record; `numbers` are its tokens' lines, kept as a range where none between was skipped
    (all but CoNLL-U's multiword tokens and CSV cells over lines): no int each in a large corpus."""
    run = range(numbers[0], numbers[-1] + 1)
    lines = run if len(run) == len(numbers) else tuple(numbers)
    return Record(numbers[0], {"tokens": tokens, "tags": tags}, group, lines)


def detect_format(path: Path, text: str, columns: Columns = Columns()) -> str:
    """The format by the suffix, else CoNLL where the first line is a token line (WikiANN's `train`); JSON where a
    CoNLL suffix's file starts as JSON and not with a token line (JSON lines saved as `.txt`). A CSV table is told
    before (`data.csv_tables.is_csv_table`)."""
    suffix = path.suffix.lower()
    if suffix in CONLL_SUFFIXES:
        if text.lstrip(" \t\r\n\ufeff")[:1] in ("{", "[") and not conll_text(text):
            return json_format(path, text, columns)
        return "conll"
    if suffix not in JSON_SUFFIXES:
        if conll_text(text):
            return "conll"
        first = _first_line(text)
        kind = f"unknown file type {path.suffix!r}" if path.suffix else "a file without a suffix"
        found = f"its first line {first!r} is" if first is not None else "it has"
        suffixes = ", ".join(sorted(JSON_SUFFIXES | CONLL_SUFFIXES | CSV_SUFFIXES))
        raise DataError(
            f"{path}: {kind}, and {found} no CoNLL token line (a token and a tag, such as 'Paris B-LOC'); expected one "
            f"of {suffixes}, or name the format ({', '.join(FORMATS)}) in "
            "data.format (--set data.format=NAME), --format (evaluate, report) or format="
        )
    return json_format(path, text, columns)


def json_format(path: Path, text: str, columns: Columns = Columns(), kept: str = "auto") -> str:
    """`spans` or `tokens`, as the first JSON record has the keys of one: `kept` (a run's) wherever it has its keys."""
    for record in _json_records(path, text):
        fields = record.fields
        words = column(fields, columns.tokens, TOKEN_COLUMNS, columns.inherited)
        tagged = words in fields and columns.tag_key(fields) in fields
        spans = bool(span_keys(fields))
        if (kept == "tokens" and tagged) or (kept == "spans" and "text" in fields and spans):
            return kept
        # Dataset exports often keep a token record's sentence as `text` beside its tokens and tags; other records
        # with a `text` (Prodigy's keep token objects beside their spans) are read as spans, unless keys are named.
        if "text" in fields and (spans or not tagged) and not (columns.named and words in fields):
            return "spans"
        if words in fields or columns.named:  # a record lacking a key named is refused naming it
            return "tokens"
        raise DataError(
            f"{path}:{record.line}: cannot tell the format: a record needs 'text' (with {NAMED_SPAN_KEYS}) or "
            f"{' or '.join(map(repr, TOKEN_COLUMNS))} (with {' or '.join(map(repr, TAG_COLUMNS))}), or the keys "
            f"data.columns names; found keys {sorted(fields)}"
        )
    return "spans"


def _first_line(text: str) -> str | None:
    """The first line of `text` that holds more than a comment or a document boundary (`-DOCSTART-`), or None."""
    for line in (found[0] for found in _TEXT_LINE.finditer(text)):
        columns = _row(line.removeprefix("\ufeff"), leading=False)
        if columns and not _hash(columns) and not _boundary(columns):
            return line
    return None


def conll_text(text: str) -> bool:
    """Whether `text` is CoNLL: its first line past comments and `-DOCSTART-` has two columns or more, one a tag."""
    first = _first_line(text)
    columns = [] if first is None else _row(first.removeprefix("\ufeff"), leading=False)
    return len(columns) >= 2 and any(map(is_tag, columns))


def read_records(
    path: Path, text: str, format: str, columns: tuple[int | None, int | None] = (None, None)
) -> Iterator[Record]:
    """Records of `text` (the contents of `path`) in `format`; `columns` are a CoNLL token's and tag's positions."""
    if format == "conll":
        return _conll_records(path, text, columns)
    if format in ("spans", "tokens"):
        return _json_records(path, text)
    raise DataError(f"{path}: unknown format {format!r}; expected one of auto, {', '.join(FORMATS)}")


def _json_records(path: Path, text: str) -> Iterator[Record]:
    if "\r" in text:  # lines end as in CoNLL, at "\r" alone (old Mac files) too: no JSON string holds a raw "\r"
        text = LINE_BREAK.sub("\n", text)
    if text.lstrip().startswith("["):
        yield from _json_array(path, text)
        return
    lines = text.split("\n")  # not at U+2028, U+0085 or other breaks `str.splitlines` cuts at: JSON strings hold them
    for number, line in enumerate(lines, start=1):
        line = line.removeprefix("\ufeff")  # files joined keep their byte-order marks, as in CoNLL
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            _refuse_object_over_lines(path, text, sum(map(len, lines[: number - 1])) + number - 1, number)
            hint = "; it reads as CoNLL (a token and a tag a line): data.format conll" if conll_text(text) else ""
            raise DataError(f"{path}:{number}: invalid JSON: {error.msg} (column {error.colno}){hint}") from error
        except RecursionError:
            raise DataError(f"{path}:{number}: invalid JSON: {TOO_DEEP}") from None
        yield _as_record(path, number, value)


def _refuse_object_over_lines(path: Path, text: str, start: int, number: int) -> None:
    """An error for a JSON object at `start` (line `number`) over several lines (`jq` without `-c`), which JSON lines
    would otherwise call invalid JSON."""
    try:
        value, end = json.JSONDecoder().raw_decode(text, _skip_space(text, start))
    except (json.JSONDecodeError, RecursionError):  # the line's own error stands
        return
    if isinstance(value, dict) and "\n" in text[start:end]:
        raise DataError(
            f"{path}:{number}: a JSON object over lines {number}-{_line_at(text, end)}, with keys {sorted(value)}; "
            "expected one document per line (JSON lines) or a JSON array of documents"
        )


def _json_array(path: Path, text: str) -> Iterator[Record]:
    decoder = json.JSONDecoder()
    index = _skip_space(text, text.index("[") + 1)
    line, counted = 1, 0  # line number at offset `counted`
    while not text.startswith("]", index):
        line, counted = line + text.count("\n", counted, index), index
        try:
            value, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: invalid JSON: {error.msg} (column {error.colno})") from error
        except RecursionError:
            raise DataError(f"{path}:{line}: invalid JSON: {TOO_DEEP}") from None
        yield _as_record(path, line, value)
        index = _skip_space(text, index)
        if text.startswith(",", index):
            index = _skip_space(text, index + 1)
            if text.startswith("]", index):
                raise DataError(f"{path}:{_line_at(text, index)}: invalid JSON: trailing comma before ']'")
        elif not text.startswith("]", index):
            raise DataError(f"{path}:{_line_at(text, index)}: invalid JSON: expected ',' or ']' after an array element")
    rest = _skip_space(text, index + 1)
    if rest != len(text):
        raise DataError(f"{path}:{_line_at(text, rest)}: invalid JSON: unexpected content after the closing ']'")


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _skip_space(text: str, index: int) -> int:
    return _JSON_SPACE.match(text, index).end()  # type: ignore[union-attr]  # `*` always matches


def _as_record(path: Path, line: int, value: Any) -> Record:
    if not isinstance(value, dict):
        raise DataError(f"{path}:{line}: expected a JSON object per document, got {type(value).__name__}")
    return Record(line, value)


def _conll_records(path: Path, text: str, positions: tuple[int | None, int | None]) -> Iterator[Record]:
    token_at, tag_at = 0 if positions[0] is None else positions[0], -1 if positions[1] is None else positions[1]
    read: list[Record] = []
    tokens: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []  # the line of each token
    group = 0
    width: tuple[int, int] | None = None
    opened = (0, 0, 0)  # the columns, filled cells and line number of the sentence's first token line
    from_end = min(token_at, tag_at) < 0  # a position counted from a line's end
    # Files joined (`cat a.conll b.conll`) keep the byte-order mark of each; blanks at a line's end are no column.
    lines = [line.removeprefix("\ufeff").rstrip(_BLANKS) for line in [*LINE_BREAK.split(text), ""]]
    given = positions != (None, None)
    token_lines = (
        line
        for line, cells in zip(lines, map(partial(_row, leading=given), lines), strict=True)
        if cells and not _boundary(cells) and not _hash(cells)
    )
    first = next(token_lines, "")
    # Leading empty cells keep their place (positions count them; Kaggle's blank `Sentence #` on later rows), except
    # in a file that starts every token line with a tab, whose first cell would be every token.
    row = partial(_row, leading=given or not (_indented(first) and all(map(_indented, token_lines))))
    # A `#` line of another column count than the first token line's, or without its tab, is a comment.
    token_width, tabbed = len(row(first)), "\t" in first
    for number, line in enumerate(lines, start=1):
        columns = row(line)
        if not tokens and columns and _hash(columns):  # a comment, or a `#` token and its tag
            token_like = len(columns) == token_width and not (tabbed and "\t" not in line)
            picked = token_like and _picked(path, number, line, columns, token_at, tag_at)
            if not (picked and is_tag(picked[1])):
                continue
        boundary = bool(columns) and _boundary(columns)
        if boundary or not columns:  # a document boundary also ends the sentence before it
            if tokens:
                # Before any -DOCSTART- (WNUT-17, WikiNER exports), each sentence is a document of its own.
                read.append(sentence_record(tokens, tags, numbers, f"doc{group}" if group else None))
                tokens, tags, numbers = [], [], []
            group += boundary
            continue
        if len(columns) < 2:
            raise DataError(f"{path}:{number}: expected a token and a tag separated by whitespace, got {line!r}")
        if token_at > 0 and _NO_WORD.fullmatch(columns[0]):  # tokens after an index column, as in CoNLL-U
            continue
        width = width or (len(columns), number)  # the first token line's columns, and its number
        if "\t" not in line and len(columns) != width[0]:  # "New York B-LOC" among two columns: York would be lost
            raise DataError(
                f"{path}:{number}: {len(columns)} columns where line {width[1]} has {width[0]}; a token holding a "
                f"space needs tab-separated columns, got {line!r}"
            )
        # A tab line is held to its sentence's first where positions count from the end: "lives<TAB>VBZ<TAB>B-VP", its
        # tag missing, was an entity of type VP. Cells may be empty (a word without its part of speech) and tabs may
        # align columns (`Paris<TAB><TAB>B-LOC`): a line is refused where both its columns and filled cells differ.
        shape = (len(columns), len(columns) - columns.count(""))  # its columns, and those filled
        opened = opened if tokens else (*shape, number)
        if from_end and "\t" in line and shape[0] != opened[0] and shape[1] != opened[1]:
            raise DataError(
                f"{path}:{number}: {len(columns)} columns where line {opened[2]} has {opened[0]}; each line of a "
                f"sentence needs every cell, the tag last, got {line!r}"
            )
        token, tag = _picked(path, number, line, columns, token_at, tag_at)
        if number == width[1] and header_line(columns, tag, text[len(line) :]):
            raise DataError(
                f"{path}:{number}: {line.strip()!r} is a header line (column names, as spreadsheets and pandas "
                "write them); a CoNLL/TSV file has none: remove it"
            )
        if not (token and tag):
            name, at = ("tokens", token_at) if not token else ("tags", tag_at)
            raise DataError(
                f"{path}:{number}: data.columns.{name} (column {at}) is empty; the line has empty cells "
                f"(each tab starts a column: columns aligned with several tabs have empty ones between), got {line!r}"
            )
        if number == width[1] and not is_tag(tag) and (starred := next(filter(_STARRED.fullmatch, columns), None)):
            raise DataError(
                f"{path}:{number}: a column in brackets and stars ({starred!r}), as OntoNotes' CoNLL-2012 *_conll "
                "files write parses and entities ('(PERSON*' ... '*)'), is not read; convert the entities to one tag "
                "per line (B-PERSON, I-PERSON, O), or read hf://ontonotes/conll2012_ontonotesv5:english_v4 (datasets)"
            )
        tokens.append(token)
        tags.append(tag)
        numbers.append(number)
    if prefix := _language_prefix(read):
        cut = len(prefix)
        read = [replace(r, fields={**r.fields, "tokens": [t[cut:] for t in r.fields["tokens"]]}) for r in read]
    if width and positions == (None, None):
        _refuse_swapped_columns(path, read, width[1])
    if width and positions[0] is None:
        _refuse_index_column(path, read, width)
    yield from read


def _language_prefix(records: list[Record]) -> str:
    """The language code WikiANN's files write before every token (`en:`), or '' where the tokens share none."""
    found = _LANGUAGE.match(records[0].fields["tokens"][0]) if records else None
    if found is None:
        return ""
    tokens = [token for record in records for token in record.fields["tokens"]]
    # A word after the code, never a URL's `//` (a file of links, `http://a.com`, keeps its scheme).
    shared = all(token.startswith(found[0]) and token[found.end() :][:2] not in ("", "//") for token in tokens)
    return found[0] if shared and len(set(tokens)) > 1 else ""


def _picked(path: Path, number: int, line: str, row: list[str], token_at: int, tag_at: int) -> tuple[str, str]:
    """The token and the tag of a line's columns `row`."""
    try:
        return row[token_at], row[tag_at]
    except IndexError:
        raise DataError(
            f"{path}:{number}: {len(row)} columns, too few for data.columns (tokens at {token_at}, tags at {tag_at}), "
            f"got {line!r}"
        ) from None


def _refuse_swapped_columns(path: Path, records: list[Record], line: int) -> None:
    """An error for tags first and tokens last (the MIT Movie and Restaurant corpora)."""
    tokens = (token for record in records for token in record.fields["tokens"])
    tags = (tag for record in records for tag in record.fields["tags"])
    if all(map(is_tag, tokens)) and not all(map(is_tag, tags)):
        first = records[0].fields
        raise DataError(
            f"{path}:{line}: the columns look swapped: the first column of every line is a tag and the last is not "
            f"(line {line}: {first['tokens'][0]!r} then {first['tags'][0]!r}), as the MIT Movie and Restaurant corpora "
            "write them; set data.columns.tokens to -1 and data.columns.tags to 0"
        )


def _refuse_index_column(path: Path, records: list[Record], width: tuple[int, int]) -> None:
    """An error for a first column that numbers the tokens of each sentence (CoNLL-U, GermEval 2014)."""
    if width[0] >= 3 and all(
        record.fields["tokens"][0].partition("-")[0] == "1" and all(map(_INDEX.fullmatch, record.fields["tokens"]))
        for record in records
    ):
        raise DataError(
            f"{path}:{width[1]}: the first column numbers the tokens (1, 2, 3, ... as in CoNLL-U and GermEval files); "
            "set data.columns.tokens and data.columns.tags to the token's and the tag's column positions (0 first, -1 "
            "last), such as 1 and 2"
        )


def _boundary(columns: list[str]) -> bool:
    """Whether a line starts a document: CoNLL's `-DOCSTART-`, or JNLPBA's `###MEDLINE:<id>` before each abstract."""
    return columns[0] == DOCSTART or columns[0].startswith("###MEDLINE:")


def _hash(columns: list[str]) -> bool:
    """Whether a line's first word is `#` alone (a comment or a `#` token) or CoNLL-2012's `#begin`/`#end`."""
    return columns[0].split(maxsplit=1)[:1] in (["#"], ["#begin"], ["#end"])  # none for a no-break space token


def _row(line: str, leading: bool) -> list[str]:
    """A line's columns but empty ones at its end; an empty cell before the first tab keeps its place where `leading`
    (Kaggle's blank `Sentence #`), as `data.columns` positions count it."""
    line = line.rstrip(_BLANKS)  # `Paris B-LOC<TAB>` is space-separated: its tab parts no columns
    if not line.strip():
        return []
    # Between tabs where the line has one, else spaces: a token's own space or form feed is kept (then refused).
    columns = [cell.strip(" \f\v") for cell in (line.split("\t") if "\t" in line else _CONLL_COLUMN_BREAK.split(line))]
    while not columns[-1]:  # some column holds the line's text
        columns.pop()
    while not columns[0] and not (leading and "\t" in line):  # spaces or tabs before a line's first word
        del columns[0]
    return columns


def _indented(line: str) -> bool:
    """Whether a line starts with an empty cell before its first tab (blanks aside)."""
    before, tab, _ = line.partition("\t")
    return bool(tab) and not before.strip(" \f\v")
