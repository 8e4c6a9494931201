"""Properties of character spans on words: for any text, spans on word edges survive spans -> IOB2 tags -> spans
exactly, the words never depend on the spans, and a span off word edges is widened to the whole words it touches."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.documents import Document, Span, align_spans, tags_to_spans
from data.segmentation import split_words

LABELS = ("PER", "ORG", "LOC", "X")


@st.composite
def text_and_aligned_spans(draw: st.DrawFn) -> tuple[str, tuple[Span, ...]]:
    """Any text (letters, digits, punctuation, marks, other scripts, every kind of whitespace) and disjoint spans that
    start and end on word edges."""
    text = draw(st.text(max_size=80))
    words = split_words(text)
    cuts = sorted(draw(st.lists(st.integers(0, len(words)), unique=True, max_size=12)))
    spans = [
        Span(words[first].start, words[last - 1].end, draw(st.sampled_from(LABELS)))
        for first, last in zip(cuts[::2], cuts[1::2], strict=False)
        if first < last
    ]
    return text, tuple(draw(st.permutations(spans)))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_and_aligned_spans())
def test_spans_to_tags_to_spans_is_the_identity(case: tuple[str, tuple[Span, ...]]) -> None:
    """Document.from_spans then tags_to_spans gives back exactly the spans (in text order), in valid IOB2."""
    text, spans = case
    document = Document.from_spans("doc", text, spans)
    assert document.words == split_words(text), "the words do not depend on the labels"
    assert tags_to_spans(document.words, document.tags) == tuple(sorted(spans, key=lambda s: (s.start, s.end)))
    assert len(document.tags) == len(document.words)
    previous = "O"
    for tag in document.tags:
        assert tag == "O" or tag[:2] in ("B-", "I-")
        assert not tag.startswith("I-") or previous[2:] == tag[2:], "an I- tag must continue an entity"
        previous = tag
    for word in document.words:
        assert text[word.start : word.end] == word.text and word.text.strip() == word.text != ""


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=60), st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=6))
def test_a_span_off_word_edges_is_widened_to_the_words_it_touches(text: str, raw: list[tuple[int, int]]) -> None:
    """A span off word edges widens to exactly the words it touches; one that touches no word is dropped."""
    words = split_words(text)
    spans = [Span(start, min(start + length, len(text)), "X") for start, length in raw if start < len(text)]
    for span, widened in align_spans(words, spans):
        touched = [w for w in words if w.start < span.end and span.start < w.end]
        if not touched:
            assert widened is None
            continue
        assert widened == Span(touched[0].start, touched[-1].end, "X")
        assert (widened == span) == (span.start == touched[0].start and span.end == touched[-1].end)
