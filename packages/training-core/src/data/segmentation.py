"""Word segmentation: one rule for every text, labelled or not; training, evaluation and `predict` see the same words.

BERT's basic pre-tokenizer, a little finer: whitespace, control characters, U+200B, U+FEFF (a byte-order mark left
at the start of a text read from a Windows file, or inside files joined together) and the bidirectional marks and
embeddings (U+200E, U+200F, U+202A-U+202E, ... that text copied from right-to-left pages holds) separate words; every
punctuation (P*) and symbol (S*) character is a word (`jane@acme.com` is five); letters of scripts written without
spaces (Han, kana, Thai, Lao, Khmer, Myanmar) are a word each; combining marks and format characters (Mn, Mc, Me,
Cf: vowel signs, diacritics, NFD accents, ZWJ) stay with the character before them (with none, in no word), as do
skin-tone modifiers and pictographs after a ZWJ (an emoji sequence); a flag's two regional indicators are one word;
any other run is one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

_SINGLE = r"[\p{P}\p{S}\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}--\p{M}--\p{Cf}]"
# Invisible characters that separate words rather than join them, so that no word (entity) starts or ends with one.
_SEPARATING = r"\u200B\uFEFF\p{Bidi_Control}"
_JOINING = rf"[\p{{M}}\p{{Cf}}--[{_SEPARATING}]]"
_IN_WORD = rf"[[^\s\p{{Cc}}{_SEPARATING}]--{_SINGLE}]"
# An emoji of several code points is one word: a flag (two regional indicators), a skin-tone modifier, a ZWJ sequence.
_EMOJI_PART = r"\u200D\p{Extended_Pictographic}|\p{Emoji_Modifier}"
# A mark or format character with nothing before it to join (after a space) starts no word: it would be an entity
# of invisible text, and tokenizers drop it or read it as unknown.
_BASE = rf"[{_IN_WORD}--[\p{{M}}\p{{Cf}}]]"
_WORD = regex.compile(
    rf"(?:\p{{Regional_Indicator}}{{2}}|{_SINGLE})(?:{_EMOJI_PART}|{_JOINING})*|{_BASE}{_IN_WORD}*", regex.V1
)
# The same rule on ASCII text, where it is letters and digits in runs and each P/S character alone: `re` matches it
# about seven times faster than `regex` matches the Unicode rule, and most corpora are mostly ASCII.
_ASCII_WORD = re.compile(r"[0-9A-Za-z]+|[!-/:-@\[-`{-~]")


@dataclass(frozen=True, slots=True)
class Word:
    """A word: its text and characters `[start, end)` of the document."""

    text: str
    start: int
    end: int


def split_words(text: str) -> tuple[Word, ...]:
    """Words of `text` with their character offsets, by the module's rule; labels play no part."""
    pattern = _ASCII_WORD if text.isascii() else _WORD
    return tuple(Word(match.group(), *match.span()) for match in pattern.finditer(text))
