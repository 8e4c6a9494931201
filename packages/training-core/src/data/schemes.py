"""Tagging schemes (IOB1, IOB2, BIOES, BILOU, BMES, IO): detection from the tags themselves, exact conversion to IOB2.

IOB1, IOB2 and IO convert by rewriting an `I-` that starts an entity as `B-`; BIOES, BILOU and BMES (`M-` inside, as
Chinese corpora write it) are checked strictly (`B-` ... `E-`/`L-`, one-word entities `S-`/`U-`). Detection never
guesses: two schemes at once are an error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from data.documents import stray_starts
from training.common.errors import DataError

SCHEMES = ("IOB1", "IOB2", "BIOES", "BILOU", "BMES", "IO")
# Prefixes each scheme allows besides `O`; `(single, last, inside)` of those that mark entity ends; the prefixes that
# tell each apart (BMES first: it shares S and E with BIOES).
_PREFIXES = {"IOB1": "BI", "IOB2": "BI", "IO": "I", "BIOES": "BIES", "BILOU": "BILU", "BMES": "BMES"}
_END_MARKS = {"BMES": ("S", "E", "M"), "BIOES": ("S", "E", "I"), "BILOU": ("U", "L", "I")}
_TELLS = {"BMES": "M", "BIOES": "SE", "BILOU": "UL"}
_LETTERS = "BIESLUM"  # every scheme's prefixes
# A scheme's tag name (`b-per` too) or a prefix without a type (`B`, `B-`): not a bare type.
_PREFIXED = re.compile(f"[{_LETTERS}](-|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a sequence of tags is, for messages: its file (or dataset split), line and each tag's own line (CoNLL)."""

    source: str
    line: int
    lines: Sequence[int] = ()

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"

    def of(self, position: int) -> str:
        """Where the token and the tag at `position` are."""
        return f"{self.source}:{self.lines[position]}" if self.lines else str(self)


_Listed = list[tuple[str | Place, Sequence[str]]]  # tag sequences, each with where it is


@dataclass(frozen=True, slots=True)
class Conversion:
    """One tag sequence in IOB2, and how many of its tags differ from the original."""

    tags: tuple[str, ...]
    changed: int


def _refuse_malformed(tag: str, where: str) -> None:
    """An error saying what is wrong with `tag`, unless it reads as a tag of some scheme."""
    if is_tag(tag):
        return
    if _joined(tag):
        raise DataError(
            f"{where}: tag {tag!r} joins several tags with '|' (a token in nested entities, as some exports write "
            "it); expected one tag per token"
        )
    typed = tag.replace("|", "_")  # `B-PER|`, or an IO file's bare type `PER|LOC`, as written
    if "|" in tag and (is_tag(typed) or is_tag(f"I-{typed}")):
        raise DataError(
            f"{where}: tag {tag!r} has '|' in its entity type; '|' joins tags (a token in nested entities, as some "
            "exports write it), and no type holds it: expected one tag per token"
        )
    if _prefix_alone(tag):
        raise DataError(
            f"{where}: tag {tag!r} has no entity type; where all tags are O or a prefix alone (B, I: one type, as "
            "keyphrase and BioBERT corpora write them), name that one type alone in data.labels (such as [KEYPHRASE]), "
            "else write B-TYPE, I-TYPE"
        )
    # A Cyrillic O or B, or a typographic dash (U+2010), reads as a tag but is none: the message names it.
    start = tag[:2] if len(tag) < 2 or tag[1] == "-" or unicodedata.category(tag[1]) == "Pd" else ""
    odd = next((f" ({char!r} is U+{ord(char):04X}, not ASCII)" for char in start if not char.isascii()), "")
    raise DataError(
        f"{where}: tag {tag!r} is malformed{odd}; expected 'O' or '<prefix>-<type>' "
        "with a prefix of B, I, E, S, L, U or M"
    )


def is_tag(name: str) -> bool:
    """Whether `name` reads as a tag of some scheme (`O`, `B-PER`, `i-per`), as a tag column holds them."""
    return _parts(name) is not None


@lru_cache(maxsize=4096)
def _parts(tag: str) -> tuple[str, str] | None:
    """Parsed once per distinct tag (few names, millions of tags); a prefix may be lower-case (`b-per`, `o`)."""
    if tag in ("O", "o"):
        return "O", ""
    prefix, dash, label = tag.partition("-")
    if not dash or len(prefix) != 1 or prefix not in _LETTERS + _LETTERS.lower() or not label or label != label.strip():
        return None  # `B-ORG\r` (a CRLF line's last column) is no tag of type ORG nor one of a new type
    if "|" in label:  # `B-PER|B-LOC` joins two tags; no type holds the `|` that joins them (`B-PER|`, `B-geo|O`)
        return None
    return prefix.upper(), label  # the type as written: `per` and `PER` are two types, as in any other tag


def _joined(tag: str) -> bool:
    """Whether `tag` is tags joined with `|` (`B-PER|B-LOC`), as nested-NER exports write a token's entities."""
    parts = tag.split("|")
    return len(parts) > 1 and all(map(is_tag, parts))


@lru_cache(maxsize=4096)
def _written(tag: str) -> str:
    """`tag` with an upper-case prefix (`B-per` for `b-per`, `O` for `o`); a malformed tag as it is."""
    parts = _parts(tag)
    return tag if parts is None else "O" if parts[0] == "O" else f"{parts[0]}-{parts[1]}"


def declared_types(names: Iterable[str]) -> tuple[str, ...]:
    """The entity types tag names declare, in order; a name no scheme reads (`[PAD]`) is an error only where used."""
    return tuple(dict.fromkeys(parts[1] for parts in map(_parts, names) if parts is not None and parts[1]))


def io_names(names: Sequence[str]) -> tuple[str, ...]:
    """`names`, where they are `O` and bare entity types (Few-NERD's `person`, `art`) as the IO tags they are."""
    outside = {"O", "o"}  # `o` is `O`, as everywhere tags are read
    if outside.isdisjoint(names) or any(_PREFIXED.match(name) for name in names):
        return tuple(names)
    # A name holding '|' stays as written, for the error that refuses it to name it so.
    return tuple(name if name in outside or "|" in name else f"I-{name}" for name in names)


def typed_prefixes(names: Sequence[str], label: str) -> tuple[str, ...]:
    """`names`, where they are `O` and prefixes alone (`B`, `I`: a corpus of one entity type), as tags of `label`."""
    if any(parts is not None and parts[1] for parts in map(_parts, names)):  # `B` beside `B-PER` is a typo
        return tuple(names)
    return tuple(f"{name.upper()}-{label}" if _prefix_alone(name) else name for name in names)


def _prefix_alone(tag: str) -> bool:
    """Whether `tag` is a scheme's prefix without a type (`B`, `i`)."""
    return len(tag) == 1 and tag.upper() in _LETTERS


def detect_scheme(sequences: Iterable[tuple[str | Place, Sequence[str]]]) -> str:
    """The scheme of `(where, tags)` sequences: the end-marking scheme whose prefixes occur, else IOB1, IOB2 or IO."""
    shown = listed = list(sequences)  # `shown` as the data writes them (`i-per`), for errors to quote
    distinct = {tag for _, tags in listed for tag in tags}
    if any(_written(tag) != tag for tag in distinct):
        listed = [(where, [_written(tag) for tag in tags]) for where, tags in listed]
        distinct = {_written(tag) for tag in distinct}
    if any(_parts(tag) is None for tag in distinct):
        number, position = _first(listed, lambda tag: _parts(tag) is None)
        _refuse_malformed(shown[number][1][position], _at(shown[number][0], position))
    prefixes = {parts[0] for parts in map(_parts, distinct) if parts is not None}
    marked = {scheme: set(marks) & prefixes for scheme, marks in _TELLS.items()}
    if marked["BIOES"] and marked["BILOU"] and not marked["BMES"]:  # BMES names a stray U-/L- itself
        bioes, bilou = (_evidence(listed, shown, marked[scheme]) for scheme in ("BIOES", "BILOU"))
        raise DataError(
            f"cannot tell the tagging scheme: {bioes} is BIOES but {bilou} is BILOU; fix the data or set data.scheme"
        )
    for scheme, marks in marked.items():
        if marks:
            for (where, tags), (_, written) in zip(shown, listed, strict=True):
                problem = _end_marked_problem(written, scheme, tags)
                if problem:
                    raise DataError(
                        f"cannot tell the tagging scheme: {_evidence(listed, shown, marks)} is {scheme} but "
                        f"{_at(where, problem[0])}: {problem[1]}, which it does not allow; fix the data or set "
                        "data.scheme"
                    )
            return scheme
    if "B" not in prefixes:
        return "IO" if "I" in prefixes else "IOB2"
    return "IOB1" if any(next(stray_starts(tags), None) is not None for _, tags in listed) else "IOB2"


def to_iob2(tags: Sequence[str], scheme: str, where: str | Place) -> Conversion:
    """`tags` of `scheme` as IOB2; a tag the scheme does not allow is a `DataError` naming it and where it is."""
    allowed = _PREFIXES[scheme]
    shown, distinct = tags, set(tags)
    if any(_written(tag) != tag for tag in distinct):  # a lower-case prefix is no conversion: counted as none
        tags = [_written(tag) for tag in tags]
        distinct = set(tags)
    wrong = {tag for tag in distinct if (parts := _parts(tag)) is None or parts[0] not in allowed + "O"}
    for position, tag in enumerate(tags if wrong else ()):
        if tag in wrong:
            _refuse_malformed(tag, _at(where, position))
            raise DataError(
                f"{_at(where, position)}: word {position} tag {shown[position]!r} is not {scheme}; its prefixes are "
                f"{', '.join(allowed)} (set data.scheme to the data's scheme, or 'auto' to detect it)"
            )
    if scheme in _END_MARKS:
        problem = _end_marked_problem(tags, scheme, shown)
        if problem:
            raise DataError(f"{_at(where, problem[0])}: not valid {scheme}: {problem[1]}")
        single = _END_MARKS[scheme][0]
        converted = tuple(tag if tag[0] in "BO" else ("B" if tag[0] == single else "I") + tag[1:] for tag in tags)
    else:
        strays = set(stray_starts(tags))
        converted = tuple("B" + tag[1:] if position in strays else tag for position, tag in enumerate(tags))
    return Conversion(converted, sum(a != b for a, b in zip(tags, converted, strict=True)))


def from_iob2(tags: Sequence[str], scheme: str, where: str = "tags") -> tuple[str, ...]:
    """Valid IOB2 `tags` written in `scheme`; IO cannot separate adjacent entities of one type (an error)."""
    result = []
    for position, tag in enumerate(tags):
        following = tags[position + 1] if position + 1 < len(tags) else "O"
        ends = following != "I" + tag[1:]
        if tag == "O" or scheme == "IOB2":
            result.append(tag)
        elif scheme in _END_MARKS:
            single, last, inside = _END_MARKS[scheme]
            result.append(((single if tag[0] == "B" else last) if ends else tag[0].replace("I", inside)) + tag[1:])
        elif tag[0] == "I" or (scheme == "IO" and (position == 0 or tags[position - 1][2:] != tag[2:])):
            result.append("I" + tag[1:])
        elif scheme == "IO":
            raise DataError(f"{where}: word {position}: IO cannot separate two adjacent {tag[2:]!r} entities")
        else:  # IOB1 keeps `B-` only right after an entity of the same type
            result.append(tag if position and tags[position - 1][2:] == tag[2:] else "I" + tag[1:])
    return tuple(result)


def scheme_tag_names(labels: Sequence[str], scheme: str) -> tuple[str, ...]:
    """Every tag of `scheme` for entity types `labels`: `O`, then each prefix of each type (IOB2: B, I)."""
    return ("O", *(f"{prefix}-{label}" for label in labels for prefix in _PREFIXES[scheme]))


def _first(listed: _Listed, wanted: Callable[[str], bool]) -> tuple[int, int]:
    """The sequence number and position of the first tag that is `wanted` (the caller knows one exists)."""
    return next(
        (number, position)
        for number, (_, tags) in enumerate(listed)
        for position, tag in enumerate(tags)
        if wanted(tag)
    )


def _at(where: str | Place, position: int) -> str:
    """Where the tag at `position` of a sequence `where` is."""
    return where if isinstance(where, str) else where.of(position)


def _evidence(listed: _Listed, shown: _Listed, prefixes: set[str]) -> str:
    """Where the first tag of `prefixes` in `listed` is, quoted as `shown` writes it."""
    number, position = _first(listed, lambda tag: tag[0] in prefixes and tag != "O")
    where, tags = shown[number]
    return f"{_at(where, position)}: word {position} {tags[position]!r}"


def _end_marked_problem(tags: Sequence[str], scheme: str, shown: Sequence[str]) -> tuple[int, str] | None:
    """Where `tags` break BIOES/BILOU/BMES (the tag's position) and how; a tag is quoted as `shown` writes it."""
    _, last, inside = _END_MARKS[scheme]
    open_label: str | None = None
    for position, (tag, as_is) in enumerate(zip(tags, shown, strict=True)):
        prefix, label = tag[0], tag[2:]
        if prefix not in _PREFIXES[scheme] + "O":
            return position, f"word {position} {as_is!r} is not a {scheme} tag"
        if open_label is None:
            if prefix in (inside, last):
                return position, f"word {position} {as_is!r} continues no entity opened by B-"
            open_label = label if prefix == "B" else None
        elif prefix not in (inside, last) or label != open_label:
            unclosed = f"B-/{inside}-{open_label} (closed by {last}-)"
            return position, f"word {position} {as_is!r} follows an unclosed {unclosed}"
        elif prefix == last:
            open_label = None
    if open_label is not None:
        return len(tags) - 1, f"the sequence ends inside an unclosed {open_label!r} entity (closed by {last}-)"
    return None
