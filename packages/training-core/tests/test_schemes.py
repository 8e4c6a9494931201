"""Tagging schemes: spans -> each scheme -> spans is the identity, detection is exact, bad sequences are named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.documents import Document
from data.schemes import SCHEMES, detect_scheme, from_iob2, scheme_tag_names, to_iob2
from training.common.errors import DataError

# One segment: words outside entities before it, then an entity of some length and type.
segments = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4), st.sampled_from(["PER", "ORG"])), max_size=6)


def iob2_of(parts: list[tuple[int, int, str]]) -> list[str]:
    tags: list[str] = []
    for gap, length, label in parts:
        tags += ["O"] * gap + [f"B-{label}"] + [f"I-{label}"] * (length - 1)
    return tags


def spans_of(tags: list[str] | tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    document = Document.from_words("d", [f"w{index}" for index in range(len(tags))], list(tags))
    return tuple((span.start, span.end, span.label) for span in document.spans)


def adjacent_same_type(tags: list[str]) -> bool:
    return any(tag.startswith("B-") and index and tags[index - 1][2:] == tag[2:] for index, tag in enumerate(tags))


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(deadline=None)  # microseconds an example, but a loaded machine can stall one past the 200 ms default
@given(parts=segments)
def test_spans_through_each_scheme_and_back_are_the_identity(scheme: str, parts: list[tuple[int, int, str]]) -> None:
    iob2 = iob2_of(parts)
    if scheme == "IO" and adjacent_same_type(iob2):
        with pytest.raises(DataError, match="IO cannot separate two adjacent"):
            from_iob2(iob2, scheme)
        return
    encoded = from_iob2(iob2, scheme)
    assert set(encoded) <= set(scheme_tag_names(["PER", "ORG"], scheme))
    assert spans_of(to_iob2(encoded, scheme, "doc").tags) == spans_of(iob2)
    assert to_iob2(encoded, detect_scheme([("doc", encoded)]), "doc").tags == tuple(iob2)


@pytest.mark.parametrize(
    ("tags", "scheme"),
    [
        (["B-PER", "I-PER", "O", "B-LOC"], "IOB2"),
        (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "IOB1"),
        (["I-PER", "I-PER", "O", "I-LOC"], "IO"),
        (["B-PER", "E-PER", "O", "S-LOC"], "BIOES"),
        (["B-PER", "I-PER", "L-PER", "U-LOC"], "BILOU"),
        (["S-LOC"], "BIOES"),
        (["B-LOC", "M-LOC", "E-LOC", "S-PER", "O"], "BMES"),
        (["O", "O"], "IOB2"),
    ],
)
def test_detect_scheme(tags: list[str], scheme: str) -> None:
    assert detect_scheme([("doc", tags)]) == scheme


def test_conversion_counts_changed_tags() -> None:
    conversion = to_iob2(["B-PER", "I-PER", "E-PER", "O", "S-LOC"], "BIOES", "doc")
    assert conversion.tags == ("B-PER", "I-PER", "I-PER", "O", "B-LOC")
    assert conversion.changed == 2


def test_bmes_inside_tags_become_iob2_inside_tags() -> None:
    conversion = to_iob2(["B-LOC", "M-LOC", "M-LOC", "E-LOC", "S-PER"], "BMES", "doc")
    assert conversion.tags == ("B-LOC", "I-LOC", "I-LOC", "I-LOC", "B-PER")
    assert from_iob2(conversion.tags, "BMES") == ("B-LOC", "M-LOC", "M-LOC", "E-LOC", "S-PER")


@pytest.mark.parametrize("other", ["I-PER", "U-PER"])
def test_bmes_mixed_with_another_schemes_tags_is_named(other: str) -> None:
    with pytest.raises(DataError, match=f"is BMES but a:2: word 0 '{other}' is not a BMES tag"):
        detect_scheme([("a:1", ["B-LOC", "M-LOC", "E-LOC"]), ("a:2", [other, "O", "S-ORG"])])


def test_bioes_and_bilou_together_are_ambiguous_and_name_both() -> None:
    with pytest.raises(DataError) as error:
        detect_scheme([("a.jsonl:1", ["S-PER", "O"]), ("a.jsonl:2", ["O", "U-LOC"])])
    assert str(error.value) == (
        "cannot tell the tagging scheme: a.jsonl:1: word 0 'S-PER' is BIOES but a.jsonl:2: word 1 'U-LOC' is BILOU; "
        "fix the data or set data.scheme"
    )


def test_end_marks_with_iob2_entities_are_ambiguous() -> None:
    with pytest.raises(DataError) as error:
        detect_scheme([("a:1", ["B-PER", "E-PER"]), ("a:2", ["B-LOC", "O"])])
    assert str(error.value) == (
        "cannot tell the tagging scheme: a:1: word 1 'E-PER' is BIOES but a:2: word 1 'O' follows an unclosed "
        "B-/I-LOC (closed by E-), which it does not allow; fix the data or set data.scheme"
    )


@pytest.mark.parametrize(
    ("tags", "scheme", "message"),
    [
        (["B-PER", "O"], "BIOES", "doc: not valid BIOES: word 1 'O' follows an unclosed B-/I-PER (closed by E-)"),
        (["I-PER", "E-PER"], "BIOES", "doc: not valid BIOES: word 0 'I-PER' continues no entity opened by B-"),
        (["B-PER", "L-ORG"], "BILOU", "doc: not valid BILOU: word 1 'L-ORG' follows an unclosed B-/I-PER"),
        (["B-PER", "I-PER"], "BILOU", "doc: not valid BILOU: the sequence ends inside an unclosed 'PER' entity"),
        (["B-PER", "I-PER", "E-PER"], "BMES", "doc: word 1 tag 'I-PER' is not BMES; its prefixes are B, M, E, S"),
        (["M-PER", "E-PER"], "BMES", "doc: not valid BMES: word 0 'M-PER' continues no entity opened by B-"),
        (["B-PER", "O"], "BMES", "doc: not valid BMES: word 1 'O' follows an unclosed B-/M-PER (closed by E-)"),
        (["B-PER"], "IO", "doc: word 0 tag 'B-PER' is not IO; its prefixes are I"),
        (["S-PER"], "IOB2", "doc: word 0 tag 'S-PER' is not IOB2; its prefixes are B, I"),
        (["X-PER"], "IOB2", "doc: tag 'X-PER' is malformed; expected 'O' or '<prefix>-<type>'"),
    ],
)
def test_invalid_sequences_are_named(tags: list[str], scheme: str, message: str) -> None:
    with pytest.raises(DataError) as error:
        to_iob2(tags, scheme, "doc")
    assert str(error.value).startswith(message)


def test_errors_quote_lower_case_tags_as_written() -> None:
    """A lower-case prefix is read as upper-case; an error still quotes the tag as the data writes it."""
    with pytest.raises(DataError, match=r"^a:2: not valid BIOES: word 1 'i-per' continues no entity opened by B-"):
        to_iob2(["o", "i-per", "e-per"], "BIOES", "a:2")
    with pytest.raises(DataError, match=r"^a:1: word 1 tag 'e-per' is not IOB2"):
        to_iob2(["b-per", "e-per"], "IOB2", "a:1")
    with pytest.raises(DataError) as error:
        detect_scheme([("a:1", ["b-per", "e-per"]), ("a:2", ["o", "i-per"])])
    assert "a:1: word 1 'e-per' is BIOES but a:2: word 1 'i-per' continues no entity" in str(error.value)
    with pytest.raises(DataError, match="a:1: word 0 's-per' is BIOES but a:2: word 0 'u-loc' is BILOU"):
        detect_scheme([("a:1", ["s-per"]), ("a:2", ["u-loc"])])


@pytest.mark.parametrize(
    ("tag", "odd"), [("\u041e", "\u041e"), ("\u0412-PER", "\u0412"), ("\uff22-PER", "\uff22"), ("B\u2010PER", "\u2010")]
)
def test_a_tag_of_look_alike_characters_names_them(tag: str, odd: str) -> None:
    """A Cyrillic O or B, or a typographic dash, was quoted as a tag that looks valid, with nothing to tell."""
    with pytest.raises(DataError) as error:
        to_iob2(["O", tag], "IOB2", "a:1")
    named = f"a:1: tag {tag!r} is malformed ({odd!r} is U+{ord(odd):04X}, not ASCII); expected 'O' or"
    assert str(error.value).startswith(named)
    with pytest.raises(DataError, match=r"^a:1: tag '\u4eba\u540d' is malformed; expected"):  # a type in its script
        to_iob2(["\u4eba\u540d"], "IOB2", "a:1")
