"""Property: character spans -> IOB2 word tags -> spans is the identity, for any text and any disjoint spans that do
not start or end in whitespace (the loader trims such spans first, and counts it)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.documents import Document, Span, tags_to_spans

LABELS = ("PER", "ORG", "LOC", "X")


@st.composite
def text_and_spans(draw: st.DrawFn) -> tuple[str, tuple[Span, ...]]:
    """Any text (letters, digits, punctuation, other scripts, every kind of whitespace) and disjoint spans in it."""
    text = draw(st.text(max_size=80))
    edges = sorted(draw(st.lists(st.integers(0, len(text)), unique=True, max_size=12)))
    spans = []
    for start, end in zip(edges[::2], edges[1::2], strict=False):
        covered = text[start:end]
        if covered and covered == covered.strip():
            spans.append(Span(start, end, draw(st.sampled_from(LABELS))))
    return text, tuple(draw(st.permutations(spans)))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_and_spans())
def test_spans_to_tags_to_spans_is_the_identity(case: tuple[str, tuple[Span, ...]]) -> None:
    """Document.from_spans then tags_to_spans gives back exactly the spans (in text order), in valid IOB2."""
    text, spans = case
    document = Document.from_spans("doc", text, spans)
    assert tags_to_spans(document.words, document.tags) == tuple(sorted(spans, key=lambda s: (s.start, s.end)))
    assert len(document.tags) == len(document.words)
    previous = "O"
    for tag in document.tags:
        assert tag == "O" or tag[:2] in ("B-", "I-")
        assert not tag.startswith("I-") or previous[2:] == tag[2:], "an I- tag must continue an entity"
        previous = tag
    for word in document.words:
        assert text[word.start : word.end] == word.text and word.text.strip() == word.text != ""
