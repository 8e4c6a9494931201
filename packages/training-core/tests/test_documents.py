"""Documents: words with offsets, IOB2 tags and character spans kept consistent."""

from __future__ import annotations

import pytest

from data.documents import (
    Document,
    Span,
    Word,
    align_spans,
    iob2_tag_names,
    spans_to_tags,
    stray_starts,
    tag_runs,
    tags_to_spans,
)
from data.segmentation import split_words
from training.common.errors import DataError


def test_from_spans_segments_as_without_labels() -> None:
    """Gold edges do not cut words: `Google's` with `Google` labelled has the words `predict` sees."""
    text = "Google's office"
    doc = Document.from_spans("d1", text, (Span(0, 6, "ORG"),))
    assert doc.words == split_words(text)
    assert [w.text for w in doc.words] == ["Google", "'", "s", "office"]
    assert doc.tags == ("B-ORG", "O", "O", "O")


def test_from_spans_refuses_a_span_edge_inside_a_word() -> None:
    with pytest.raises(DataError, match=r"span \[4, 9, 'PER'\] \('Smith'\) does not start and end on word edges"):
        Document.from_spans("d1", "JohnSmith called", (Span(4, 9, "PER"),))


@pytest.mark.parametrize(
    ("text", "span", "tags"),
    [
        ("Mail jane.doe@acme.com now", Span(5, 22, "EMAIL"), ("O", *["B-EMAIL"] + ["I-EMAIL"] * 6, "O")),
        ("Ahmed Al-Mansouri spoke", Span(0, 17, "PER"), ("B-PER", "I-PER", "I-PER", "I-PER", "O")),
        ("Sarah O'Brien-Smith", Span(0, 19, "PER"), ("B-PER", *["I-PER"] * 5)),
    ],
)
def test_emails_and_hyphenated_names_are_several_words_of_one_entity(
    text: str, span: Span, tags: tuple[str, ...]
) -> None:
    doc = Document.from_spans("d1", text, (span,))
    assert doc.tags == tags
    assert tags_to_spans(doc.words, doc.tags) == (span,)


@pytest.mark.parametrize(
    ("text", "entity", "label"),
    [("我住在東京都。", "東京", "LOC"), ("ฉันไปกรุงเทพเมื่อวาน", "กรุงเทพ", "LOC"), ("山田さんは来た", "山田", "PER")],
)
def test_an_entity_inside_text_without_spaces_can_be_tagged(text: str, entity: str, label: str) -> None:
    start = text.index(entity)
    doc = Document.from_spans("d1", text, (Span(start, start + len(entity), label),))
    assert tags_to_spans(doc.words, doc.tags) == (Span(start, start + len(entity), label),)
    inside = [w.text for w in doc.words if w.start >= start and w.end <= start + len(entity)]
    assert len(inside) > 1 and "".join(inside) == entity


def test_align_spans_widens_to_whole_words() -> None:
    words = split_words("Googleplex is big")
    assert list(align_spans(words, [Span(0, 6, "ORG"), Span(11, 17, "X"), Span(13, 13 + 1, "Y")])) == [
        (Span(0, 6, "ORG"), Span(0, 10, "ORG")),
        (Span(11, 17, "X"), Span(11, 17, "X")),
        (Span(13, 14, "Y"), None),
    ]


def test_from_spans_tags_multi_word_entities_and_sorts_spans() -> None:
    text = "John Smith works at Acme Corp in Paris"
    doc = Document.from_spans("d1", text, (Span(33, 38, "LOC"), Span(0, 10, "PER"), Span(20, 29, "ORG")))
    assert doc.tags == ("B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "B-LOC")
    assert doc.spans == (Span(0, 10, "PER"), Span(20, 29, "ORG"), Span(33, 38, "LOC"))
    assert doc.entity_types == frozenset({"PER", "ORG", "LOC"})
    assert [text[s.start : s.end] for s in doc.spans] == ["John Smith", "Acme Corp", "Paris"]


def test_adjacent_entities_of_one_type_stay_apart() -> None:
    doc = Document.from_spans("d1", "Paris London", (Span(0, 5, "LOC"), Span(6, 12, "LOC")))
    assert doc.tags == ("B-LOC", "B-LOC")
    assert tags_to_spans(doc.words, doc.tags) == doc.spans


def test_from_words_joins_tokens_with_single_spaces() -> None:
    doc = Document.from_words("d1", ["Mary", "lives", "in", "New", "York"], ["B-PER", "O", "O", "B-LOC", "I-LOC"])
    assert doc.text == "Mary lives in New York"
    assert doc.words[3] == Word("New", 14, 17)
    assert doc.spans == (Span(0, 4, "PER"), Span(14, 22, "LOC"))


def test_from_words_finds_the_words_of_its_text_and_drops_an_entity_of_invisible_tokens() -> None:
    """A token holding punctuation is several words (as `predict` reads the text); a lone U+200B is none."""
    doc = Document.from_words("d1", ["Jean-Luc", "Picard", "\u200b", "O'Neil"], ["B-PER", "I-PER", "B-LOC", "B-PER"])
    assert [word.text for word in doc.words] == ["Jean", "-", "Luc", "Picard", "O", "'", "Neil"]
    assert doc.tags == ("B-PER", "I-PER", "I-PER", "I-PER", "B-PER", "I-PER", "I-PER")
    assert doc.spans == (Span(0, 15, "PER"), Span(18, 24, "PER"))


def test_tags_to_spans_reads_a_stray_inside_tag_as_a_new_entity() -> None:
    words = split_words("a b c")
    assert tags_to_spans(words, ["I-PER", "I-LOC", "I-LOC"]) == (Span(0, 1, "PER"), Span(2, 5, "LOC"))


def test_spans_and_tags_round_trip() -> None:
    words = split_words("one two three four five")
    spans = (Span(0, 7, "A"), Span(14, 18, "B"), Span(19, 23, "B"))
    tags = spans_to_tags(words, spans)
    assert tags == ("B-A", "I-A", "O", "B-B", "B-B")
    assert tags_to_spans(words, tags) == spans


def test_each_stray_inside_tag_starts_an_entity_as_a_beginning_would() -> None:
    tags = ["O", "I-X", "I-X", "I-Y", "B-X", "I-X", "O", "I-X", "B-X"]

    assert list(stray_starts(tags)) == [1, 3, 7]
    assert list(tag_runs(tags)) == [("X", 1, 3), ("Y", 3, 4), ("X", 4, 6), ("X", 7, 8), ("X", 8, 9)]
    assert list(tag_runs([])) == [] and list(tag_runs(["O", "O"])) == []


def test_tags_must_pair_with_words() -> None:
    with pytest.raises(DataError, match="1 tag for 2 words; expected one tag per word"):
        tags_to_spans(split_words("a b"), ["O"])


@pytest.mark.parametrize(
    ("tokens", "tags", "refused"),
    [
        (["Anna", "Smith"], ["PER", "PER"], r"^tags\[0\]: 'PER' is not IOB2; expected 'O', 'B-<type>' or 'I-<type>'$"),
        (["Anna", "Smith"], ["B-PER", "E-PER"], r"^tags\[1\]: 'E-PER' is not IOB2"),
        (["Anna", "Smith"], [1, 2], r"^tags\[0\]: 1 is not IOB2"),
        (["Anna", "Smith"], "B-PER I-PER", r"^tags: expected a list of strings, got str 'B-PER I-PER'$"),
        (["Anna", "Smith"], None, r"^tags: expected a list of strings, got NoneType None$"),
        ("Anna Smith", ["B-PER", "I-PER"], r"^tokens: expected a list of strings, got str 'Anna Smith'$"),
        ([2024, "Anna"], ["O", "B-PER"], r"^tokens\[0\]: expected a string, got int 2024$"),
    ],
)
def test_from_words_refuses_what_is_not_lists_of_tokens_and_iob2_tags(tokens, tags, refused) -> None:
    """Bare types were tagged as entities of type `R`, a string read letter by letter as tokens or tags."""
    with pytest.raises(DataError, match=refused):
        Document.from_words("d1", tokens, tags)


def test_from_words_reads_tokens_and_tags_given_as_generators() -> None:
    document = Document.from_words("d1", (token for token in ["Anna", "Smith"]), (tag for tag in ["B-PER", "I-PER"]))
    assert (document.text, document.spans) == ("Anna Smith", (Span(0, 10, "PER"),))


@pytest.mark.parametrize(
    ("text", "spans", "refused"),
    [
        ("Anna Smith", (Span(0, 10, "PER"), Span(0, 4, "X")), r"^spans \[0, 4, 'X'\] and \[0, 10, 'PER'\] overlap"),
        ("Anna Smith", [(0, 4, "PER")], r"^spans\[0\]: expected a Span\(start, end, label\) with a label, got \(0, 4"),
        ("Anna Smith", [Span(0, 4, "")], r"^spans\[0\]: expected a Span\(start, end, label\) with a label, got Span"),
        (["Anna", "Smith"], (), r"^text: expected a string, got list \['Anna', 'Smith'\]$"),
        (None, (), r"^text: expected a string, got NoneType None$"),
        (
            "Anna Smith",
            [Span(0, 4, "O")],
            r"^spans\[0\] \[0, 4, 'O'\]: 'O' is a tag, not an entity type; write types as",
        ),
        ("Anna Smith", [Span(0, 4, "PER"), Span(5, 10, "B-PER")], r"^spans\[1\] \[5, 10, 'B-PER'\]: 'B-PER' is a tag,"),
    ],
)
def test_from_spans_refuses_overlaps_and_what_is_not_a_text_and_spans(text, spans, refused) -> None:
    """Overlapping spans gave the tags of neither (`B-X`, `I-PER`); tuples or a list of words failed deep inside; a tag
    for a type tagged words 'B-O' or 'B-B-PER'."""
    with pytest.raises(DataError, match=refused):
        Document.from_spans("d1", text, spans)


def test_iob2_tag_names() -> None:
    assert iob2_tag_names(["PER", "LOC"]) == ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    assert iob2_tag_names([]) == ("O",)
