"""Documents: text, words with character offsets, IOB2 tags and entity spans, kept consistent."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any

from data.segmentation import Word, split_words
from training.common.errors import DataError
from training.common.plural import counted


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """An entity: characters `[start, end)` of the text, with its type (ordered by start, end, label)."""

    start: int
    end: int
    label: str


@dataclass(frozen=True, slots=True)
class Document:
    """One labelled text; `tags` are IOB2, one per word, and agree with `spans`."""

    id: str
    text: str
    words: tuple[Word, ...]
    tags: tuple[str, ...]
    spans: tuple[Span, ...]
    group: str | None = None

    @property
    def entity_types(self) -> frozenset[str]:
        """The entity types present in this document."""
        return frozenset(span.label for span in self.spans)

    @classmethod
    def from_spans(cls, id: str, text: str, spans: tuple[Span, ...], group: str | None = None) -> Document:
        """Split `text` into words and tag them; spans must be disjoint and on word edges."""
        if not isinstance(text, str):  # tokens given here failed deep inside the segmentation
            raise DataError(f"text: expected a string, got {type(text).__name__} {text!r:.60}")
        spans = tuple(spans)
        for index, span in enumerate(spans):
            if not isinstance(span, Span) or not isinstance(span.label, str) or not span.label:
                raise DataError(f"spans[{index}]: expected a Span(start, end, label) with a label, got {span!r:.60}")
            if problem := tag_as_type(span.label):
                raise DataError(f"spans[{index}] {_shown(span)}: {problem}")
        for before, after in pairwise(sorted(spans)):
            if after.start < before.end:  # tagged as one entity cut short by the other
                raise DataError(f"spans {_shown(before)} and {_shown(after)} overlap; expected disjoint spans")
        words = split_words(text)
        for span, widened in align_spans(words, spans):
            if widened != span:
                touched = [word.text for word in words if word.start < span.end and span.start < word.end]
                raise DataError(
                    f"span {_shown(span)} ({text[span.start : span.end]!r}) does not start "
                    f"and end on word edges (words: {touched})"
                )
        return cls(id, text, words, spans_to_tags(words, spans), tuple(sorted(spans)), group)

    @classmethod
    def from_words(cls, id: str, tokens: list[str], tags: list[str], group: str | None = None) -> Document:
        """Join pre-split tokens with single spaces; `tags` must already be valid IOB2. The words are those `predict`
        finds in the text (a token `U.S.` is four), so that a model learns, and is scored on, the words it is given."""
        for name, items in (("tokens", tokens), ("tags", tags)):
            if isinstance(items, str) or not isinstance(items, Iterable):  # a string was read letter by letter
                raise DataError(f"{name}: expected a list of strings, got {type(items).__name__} {items!r:.60}")
        tokens, tags = list(tokens), list(tags)  # read more than once: a generator's were gone (no words)
        for position, token in enumerate(tokens):
            if not isinstance(token, str):
                raise DataError(f"tokens[{position}]: expected a string, got {type(token).__name__} {token!r:.60}")
        for position, tag in enumerate(tags):
            if not is_iob2_tag(tag):  # `PER` was read as a B- tag of type `R`, BIOES' `E-PER` as a new entity
                raise DataError(f"tags[{position}]: {tag!r} is not IOB2; expected 'O', 'B-<type>' or 'I-<type>'")
        text, given = token_spans(tokens, tags)
        words = split_words(text)  # each within one token: no word crosses the spaces between tokens
        # An entity keeps the words inside its tokens; one of invisible tokens only (a lone U+200B) has none.
        spans = tuple(inside for _, inside in align_spans(words, given) if inside)
        return cls(id, text, words, spans_to_tags(words, spans), spans, group)


def document_items(documents: Iterable[Document]) -> Iterator[Any]:
    """What a fingerprint of documents covers: each text and its spans (not ids, words or file format)."""
    for doc in documents:
        yield [doc.text, [[span.start, span.end, span.label] for span in doc.spans]]


def is_iob2_tag(tag: object) -> bool:
    """Whether `tag` is `O`, `B-<type>` or `I-<type>`."""
    return isinstance(tag, str) and (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2))


def tag_as_type(label: str) -> str | None:
    """Why a span's `label` is refused when it is a tag (`O`, `B-PER`): its words were tagged `B-O`, `B-B-PER`."""
    return f"{label!r} is a tag, not an entity type; write types as 'PER', not 'B-PER'" if is_iob2_tag(label) else None


def _shown(span: Span) -> str:
    return f"[{span.start}, {span.end}, {span.label!r}]"


def iob2_tag_names(labels: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """IOB2 tag names for entity types: `O`, then `B-X`, `I-X` for each type in order."""
    return ("O", *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I")))


def align_spans(words: Sequence[Word], spans: Iterable[Span]) -> Iterator[tuple[Span, Span | None]]:
    """Each span with the span of the whole words it touches (itself when aligned; None when it covers no word)."""
    starts, ends = [word.start for word in words], [word.end for word in words]
    for span in spans:
        first, last = bisect_right(ends, span.start), bisect_left(starts, span.end) - 1
        yield span, Span(starts[first], ends[last], span.label) if first <= last else None


def spans_to_tags(words: tuple[Word, ...], spans: tuple[Span, ...]) -> tuple[str, ...]:
    """IOB2 tags of `words` for disjoint `spans` whose edges fall on word edges."""
    tags = ["O"] * len(words)
    starts = [word.start for word in words]
    for span in spans:
        first, end = bisect_left(starts, span.start), bisect_left(starts, span.end)
        tags[first:end] = [("B-" if index == first else "I-") + span.label for index in range(first, end)]
    return tuple(tags)


def stray_starts(tags: Sequence[str]) -> Iterator[int]:
    """Positions where a run of `I-X` starts without `B-X` or `I-X` before it."""
    previous = "O"
    for position, tag in enumerate(tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            yield position
        previous = tag


def tag_runs(tags: Sequence[str]) -> Iterator[tuple[str, int, int]]:
    """Each entity of IOB2 `tags` as (type, first word, last word + 1): a `B-X` or a stray `I-X` starts one, the `I-X`
    after it continue it; on valid IOB2, seqeval's strict entities (but of types with an outer `-`, which it strips)."""
    label: str | None = None
    first = 0
    for position, tag in enumerate(tags):
        if tag.startswith("I-") and tag[2:] == label:
            continue
        if label is not None:
            yield label, first, position
        label, first = (tag[2:], position) if tag != "O" else (None, 0)
    if label is not None:
        yield label, first, len(tags)


def token_spans(tokens: Sequence[str], tags: Sequence[str]) -> tuple[str, tuple[Span, ...]]:
    """The tokens joined with single spaces, and the entities of their valid IOB2 `tags` on token edges."""
    starts = accumulate((len(token) + 1 for token in tokens), initial=0)  # one more than tokens: the end
    given = tuple(Word(token, start, start + len(token)) for token, start in zip(tokens, starts, strict=False))
    return " ".join(tokens), tags_to_spans(given, tags)


def tags_to_spans(words: tuple[Word, ...], tags: Sequence[str]) -> tuple[Span, ...]:
    """Entity spans of IOB2 `tags` over `words` (a stray `I-` starts a new entity)."""
    if len(words) != len(tags):
        raise DataError(f"{counted(len(tags), 'tag')} for {counted(len(words), 'word')}; expected one tag per word")
    return tuple(Span(words[first].start, words[last - 1].end, label) for label, first, last in tag_runs(tags))
