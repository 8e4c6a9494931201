"""`split_words`: one label-free segmentation; fine at punctuation, whole at combining marks, per character in CJK."""

from __future__ import annotations

import unicodedata

import pytest

from data.segmentation import Word, split_words

POLAND, GERMANY = "\U0001f1f5\U0001f1f1", "\U0001f1e9\U0001f1ea"  # flags: two regional indicators each
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with ZWNJ after its prefix


def texts(text: str) -> list[str]:
    words = split_words(text)
    assert all(text[w.start : w.end] == w.text for w in words)
    return [w.text for w in words]


def test_punctuation_and_symbols_are_words_of_their_own() -> None:
    assert texts("Mail jane.doe@acme.com, O'Brien 2019-2021!") == [
        "Mail", "jane", ".", "doe", "@", "acme", ".", "com", ",", "O", "'", "Brien", "2019", "-", "2021", "!",
    ]  # fmt: skip
    assert texts("Google's €100 a_b") == ["Google", "'", "s", "€", "100", "a", "_", "b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zoe\u0308 Dupont", ["Zoe\u0308", "Dupont"]),  # NFD Latin: the diaeresis stays on its letter
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # Devanagari vowel signs and virama (Mn, Mc)
        ("مُحَمَّد عَلِيّ", ["مُحَمَّد", "عَلِيّ"]),  # Arabic harakat and shadda (Mn)
        ("שָׁלוֹם עוֹלָם", ["שָׁלוֹם", "עוֹלָם"]),  # Hebrew niqqud (Mn)
        ("I \u2764\ufe0f NY", ["I", "\u2764\ufe0f", "NY"]),  # an emoji keeps its variation selector
        (PERSIAN, [PERSIAN]),  # a Persian zero-width non-joiner (Cf) inside a word
    ],
)
def test_combining_marks_and_joiners_stay_inside_their_word(text: str, expected: list[str]) -> None:
    assert texts(text) == expected
    assert all(not unicodedata.category(w[0]).startswith("M") for w in expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (POLAND + " Warsaw", [POLAND, "Warsaw"]),
        (POLAND + GERMANY + "\U0001f1e9", [POLAND, GERMANY, "\U0001f1e9"]),  # pairs from the start
        ("ok\U0001f44d\U0001f3fd!", ["ok", "\U0001f44d\U0001f3fd", "!"]),  # a skin-tone modifier
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467 home", ["\U0001f468\u200d\U0001f469\u200d\U0001f467", "home"]),
        ("\U0001f469\U0001f3fd\u200d\U0001f4bb", ["\U0001f469\U0001f3fd\u200d\U0001f4bb"]),  # modifier, then ZWJ
        ("\U0001f3f3\ufe0f\u200d\U0001f308,", ["\U0001f3f3\ufe0f\u200d\U0001f308", ","]),  # selector, then ZWJ
        ("\u20ac\u200d a", ["\u20ac\u200d", "a"]),  # a joiner with nothing to join stays on its symbol
        ("\u6771\u200d\u4eac", ["\u6771\u200d", "\u4eac"]),  # it joins pictographs only, not Han
    ],
)
def test_an_emoji_of_several_code_points_is_one_word(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


def test_cjk_and_thai_are_split_per_character() -> None:
    assert texts("東京都に住む") == ["東", "京", "都", "に", "住", "む"]
    assert texts("กรุงเทพ") == ["ก", "รุ", "ง", "เ", "ท", "พ"]  # the vowel sign U+0E38 stays on its consonant


def test_whitespace_controls_and_zero_width_space_separate_words() -> None:
    assert split_words(" a\u200bb\tc\x07d\u2028e ") == (
        Word("a", 1, 2),
        Word("b", 3, 4),
        Word("c", 5, 6),
        Word("d", 7, 8),
        Word("e", 9, 10),
    )
    assert split_words("") == () and split_words(" \n ") == ()


def test_ascii_text_splits_as_the_unicode_rule_splits_it() -> None:
    # ASCII text takes a faster pattern; every ASCII character, alone and between letters, and random ASCII strings
    # (controls, tabs, DEL, underscores, digits) must give the Unicode rule's words.
    from random import Random

    from data.segmentation import _WORD

    rng = Random(0)
    alphabet = [chr(code) for code in range(128)]
    samples = [*alphabet, *(f"ab{char}9Z{char}{char}x" for char in alphabet)]
    samples += ["".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(2000)]
    for text in samples:
        expected = [(m.group(), *m.span()) for m in _WORD.finditer(text)]
        assert [(w.text, w.start, w.end) for w in split_words(text)] == expected, repr(text)


def test_a_byte_order_mark_separates_words_and_is_in_none() -> None:
    # A text read from a Windows file with a BOM gave the entity "\ufeffJohn"; files joined put one in the middle.
    assert split_words("\ufeffJohn Smith\ufeff\ufeffLondon") == (
        Word("John", 1, 5),
        Word("Smith", 6, 11),
        Word("London", 13, 19),
    )
    assert split_words("\ufeff") == () and texts(PERSIAN + "\ufeff" + PERSIAN) == [PERSIAN, PERSIAN]


def test_bidirectional_marks_separate_words_and_are_in_none() -> None:
    # Text copied from a right-to-left page holds RLM/LRM and embeddings: entities were "\u200f..." or "John\u200e".
    hebrew = "\u05d3\u05d5\u05d3"
    assert texts(f"\u200f{hebrew}\u200f \u202aJohn\u202c\u200e 5\u061c%") == [hebrew, "John", "5", "%"]
    assert texts(f"{PERSIAN}\u200f") == [PERSIAN] and texts("\u2068\U0001f468\u200d\U0001f469\u2069") == [
        "\U0001f468\u200d\U0001f469"
    ]


def test_a_mark_with_no_character_to_join_is_in_no_word() -> None:
    # "John \u0301 Smith" made the lone accent a word of its own: tagged, it was an entity of invisible text.
    assert split_words("John \u0301 Smith") == (Word("John", 0, 4), Word("Smith", 7, 12))
    assert texts("a \u2060 b \u200d c \u0e34") == ["a", "b", "c"]
    assert split_words("\u0301abc \u00adco") == (Word("abc", 1, 4), Word("co", 6, 8))
    # With a character before them, marks and joiners stay inside its word as before.
    assert texts("e\u0301t\u00e9 co\u00adop a\u200db \u0e01\u0e34 \U0001f468\u200d\U0001f469") == [
        "e\u0301t\u00e9",
        "co\u00adop",
        "a\u200db",
        "\u0e01\u0e34",
        "\U0001f468\u200d\U0001f469",
    ]
