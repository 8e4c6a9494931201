"""Documents: words with offsets, IOB2 tags and character spans kept consistent."""

from __future__ import annotations

import pytest

from data.documents import Document, Span, Word, iob2_tag_names, spans_to_tags, split_words, tags_to_spans


def test_split_words_keeps_offsets_and_in_word_punctuation() -> None:
    text = "Mail jane.doe@acme.com, O'Brien 2019-2021!"
    words = split_words(text)
    assert [w.text for w in words] == ["Mail", "jane.doe@acme.com", ",", "O'Brien", "2019-2021", "!"]
    assert all(text[w.start : w.end] == w.text for w in words)


def test_split_words_cuts_at_given_edges() -> None:
    assert split_words("JohnSmith", {4}) == (Word("John", 0, 4), Word("Smith", 4, 9))
    assert split_words("JohnSmith", {0, 9}) == (Word("JohnSmith", 0, 9),)


def test_from_spans_splits_words_at_span_edges() -> None:
    doc = Document.from_spans("d1", "JohnSmith called", (Span(4, 9, "PER"),))
    assert [w.text for w in doc.words] == ["John", "Smith", "called"]
    assert doc.tags == ("O", "B-PER", "O")
    assert doc.spans == (Span(4, 9, "PER"),)


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


def test_tags_to_spans_reads_a_stray_inside_tag_as_a_new_entity() -> None:
    words = split_words("a b c")
    assert tags_to_spans(words, ["I-PER", "I-LOC", "I-LOC"]) == (Span(0, 1, "PER"), Span(2, 5, "LOC"))


def test_spans_and_tags_round_trip() -> None:
    words = split_words("one two three four five")
    spans = (Span(0, 7, "A"), Span(14, 18, "B"), Span(19, 23, "B"))
    tags = spans_to_tags(words, spans)
    assert tags == ("B-A", "I-A", "O", "B-B", "B-B")
    assert tags_to_spans(words, tags) == spans


def test_tags_must_pair_with_words() -> None:
    with pytest.raises(ValueError):
        tags_to_spans(split_words("a b"), ["O"])


def test_iob2_tag_names() -> None:
    assert iob2_tag_names(["PER", "LOC"]) == ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    assert iob2_tag_names([]) == ("O",)
