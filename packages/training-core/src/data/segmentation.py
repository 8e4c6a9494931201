"""Word segmentation: one rule for every text, labelled or not; training, evaluation and `predict` see the same words.

The rule follows BERT's basic pre-tokenizer, a little finer:
- whitespace, control characters and U+200B (zero-width space) separate words and belong to none;
- every punctuation (Unicode P*) and symbol (S*) character is a word of its own, so `jane@acme.com` is five words
  and `Al-Mansouri` three, all inside one entity (BERT splits P* and ASCII symbols; we split every S* alike);
- letters of scripts written without spaces are one word each: Han, kana, Thai, Lao, Khmer, Myanmar (per
  character, as BERT does for CJK: no dictionary, and an entity inside such text can still be tagged);
- combining marks (Mn, Mc, Me) and format characters (Cf, e.g. ZWJ, ZWNJ) stay with the character before them, so
  Devanagari vowel signs, Arabic and Hebrew diacritics, NFD accents (`Zoe\u0308`) and emoji variation selectors
  never start or end a word;
- every other run of characters is one word.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

_SINGLE = r"[\p{P}\p{S}\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}--\p{M}--\p{Cf}]"
_JOINING = r"[\p{M}\p{Cf}--\u200B]"
_IN_WORD = rf"[[^\s\p{{Cc}}\u200B]--{_SINGLE}]"
_WORD = regex.compile(rf"{_SINGLE}{_JOINING}*|{_IN_WORD}+", regex.V1)


@dataclass(frozen=True, slots=True)
class Word:
    """A word: its text and characters `[start, end)` of the document."""

    text: str
    start: int
    end: int


def split_words(text: str) -> tuple[Word, ...]:
    """Words of `text` with their character offsets, by the module's rule; labels play no part."""
    return tuple(Word(match.group(), *match.span()) for match in _WORD.finditer(text))
