"""`data.columns`: which columns hold a document's words and tags, by name (JSON token records, `datasets` input) or
by position (CoNLL files)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from training.common.errors import DataError

TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels")  # `ner_tags` first: a part-of-speech `tags` beside it holds no entities
# Header names of the words and tags columns of a table (a CSV file's, any case); `ner_tags` before a part-of-speech
# `tags`.
WORD_HEADERS = ("tokens", "token", "words", "word")
TAG_HEADERS = ("ner_tags", "tags", "tag", "labels", "label", "ner")
# A CoNLL header line's names, as a table names its columns and more (CoNLL-U's FORM; NE, entity_type)
_HEADER_WORDS = {*WORD_HEADERS, "text", "form"}
_HEADER_TAGS = {*TAG_HEADERS, "ne", "ner_tag", "ner-tag", "entity", "entities", "entity_type", "iob", "bio"}
SPAN_COLUMNS = ("entities", "annotations")  # beside `text` in `datasets` input: entities {start, end, label}
# Beside `text` in a JSON span record, the first present is read: ours, doccano's (`entities`; `label` in its older
# export), Prodigy's (`spans`) and spaCy's `Doc.to_json()` (`ents`). A `label` that is no list is a class of the whole
# text, no spans.
SPAN_KEYS = ("annotations", "entities", "spans", "ents", "label")
NAMED_SPAN_KEYS = " or ".join(map(repr, SPAN_KEYS))  # for messages


@dataclass(frozen=True, slots=True)
class Columns:
    """Which columns hold the words and the tags; None finds the usual ones (CoNLL: the first and the last). What
    `inherited` columns (a run's, reading other data) do not apply to is ignored, not refused."""

    tokens: str | int | None = None
    tags: str | int | None = None
    inherited: bool = False

    @property
    def named(self) -> bool:
        """Whether a user (not a run, reading other data) gave a name for a column."""
        return not self.inherited and (isinstance(self.tokens, str) or isinstance(self.tags, str))

    def positions(self, where: str, format: str) -> tuple[int | None, int | None]:
        """The column positions of a file `where` in `format` (None: the usual); names are an error for a CoNLL file,
        which names no columns (ignored where inherited), as a number in quotes is."""
        if format != "conll":
            return None, None
        for name, value in (("tokens", self.tokens), ("tags", self.tags)):
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
                raise DataError(  # `tokens: "1"` in YAML is a string, the name of a column in `datasets` input
                    f"{where}: data.columns.{name}: {value!r} is a name, as datasets input takes; a CoNLL file's "
                    "columns are positions (0 first, -1 last), written as numbers"
                )
            if isinstance(value, str) and not self.inherited:
                raise DataError(
                    f"{where}: data.columns.{name}: {value!r} is a column name, as datasets input takes; a CoNLL file "
                    "names no columns (a header line would be read as a token), so give its position (0 first, -1 last)"
                )
        tokens, tags = self.tokens, self.tags
        return tokens if isinstance(tokens, int) else None, tags if isinstance(tags, int) else None

    def names(self, where: str) -> Columns:
        """The column names of `datasets` input `where`; positions are an error, or ignored where inherited."""
        self.refuse_positions(where, "datasets input is read by its column names")
        names = (value if isinstance(value, str) else None for value in (self.tokens, self.tags))
        return Columns(*names, self.inherited)

    def refuse_positions(self, where: str, read_by: str) -> None:
        """An error for positions (unless inherited) given for input `where` that has no CoNLL file to apply them."""
        for name, value in (("tokens", self.tokens), ("tags", self.tags)):
            if isinstance(value, int) and not self.inherited:
                raise DataError(
                    f"{where}: data.columns.{name}: {value} is a column position; positions apply to CoNLL/TSV files "
                    f"only, and {read_by}"
                )

    def refuse_names(self, where: str) -> None:
        """An error for names (unless inherited) given for span records `where`, whose keys are their own."""
        for name, value in (("tokens", self.tokens), ("tags", self.tags)):
            if isinstance(value, str) and not self.inherited:
                raise DataError(
                    f"{where}: data.columns.{name}: {value!r} names a key of token records; span records are read by "
                    f"their 'text' and spans ({NAMED_SPAN_KEYS})"
                )

    def keys(self, where: str, fields: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The keys of JSON token record `fields` (at `where`) holding its words and its tags (None: no usual one)."""
        tokens, tags = column(fields, self.tokens, TOKEN_COLUMNS, self.inherited), self.tag_key(fields)
        for setting, key in (("tokens", tokens), ("tags", tags)):
            if key is not None and key not in fields:
                raise DataError(
                    f"{where}: data.columns.{setting}: no key {key!r}; the record has keys {sorted(fields)}"
                )
        return tokens, tags

    def tag_key(self, fields: Collection[str]) -> str | None:
        """The key of a token record's tags, as `keys` picks it, without checking that the record has it."""
        return column(fields, self.tags, TAG_COLUMNS, self.inherited)


def span_keys(fields: Mapping[str, Any]) -> list[str]:
    """The keys of JSON record `fields` holding spans, in the order they are read: `annotations`, else only as lists
    (spaCy's `spans` of named span groups is a dict; a record with tokens and tags keeps its `entities` strings)."""
    tagged = any(key in fields for key in TOKEN_COLUMNS) and any(key in fields for key in TAG_COLUMNS)
    keys = ("annotations",) if tagged else SPAN_KEYS  # as before tool exports were read: their tokens are objects
    return [key for key in keys if key in fields and (key == "annotations" or isinstance(fields[key], list))]


def column(present: Collection[str], chosen: str | int | None, usual: Sequence[str], inherited: bool) -> str | None:
    """The column of those `present` holding words or tags: the name `chosen` (where inherited, only if present),
    else the first of the `usual` names present, or None."""
    if isinstance(chosen, str) and (chosen in present or not inherited):
        return chosen
    return next((name for name in usual if name in present), None)


def header_line(cells: list[str], tag: str, rest: str) -> bool:
    """Whether a CoNLL file's first line's `cells` name the columns (pandas' index column, if any, blank): a words name
    and a tags name `tag` that never tags a line of the `rest` (IO's `Text<TAB>ENTITY` may be a word of type ENTITY)."""
    if tag.lower() not in _HEADER_TAGS or not _HEADER_WORDS & {cell.lower() for cell in cells}:
        return False
    return not re.search(rf"\s{re.escape(tag)}[ \t]*\r?$", rest, re.MULTILINE)
