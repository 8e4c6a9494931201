"""The torch-free half of the prediction pipeline: word-aligned sub-token windows and per-word merging.

Documents are tokenised word by word (by any tokenizer: transformers' for torch, `tokenizers`' for onnxruntime). A
document longer than `max_length` tokens becomes several windows that overlap by `stride` tokens and end at word
edges where a word fits, so every word's first sub-token, which carries the word's tag, lies in at least one window.
Window logits are merged back to one tag per word. Nothing here imports torch or transformers, so the onnxruntime
predictor runs the very same windowing and merging as the torch one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from data.documents import Document, split_words
from training.common.errors import DataError, InputError
from training.config.schema import ModelConfig

IGNORE_INDEX = -100
# The context of a word on a side where its window reaches the document's edge.
_UNLIMITED = 1 << 30


@dataclass(frozen=True, slots=True)
class Windowing:
    """Window length (tokens, specials included) and the tokens consecutive windows share."""

    max_length: int
    stride: int

    @classmethod
    def of(
        cls, settings: ModelConfig | None = None, *, max_length: int | None = None, stride: int | None = None
    ) -> Windowing:
        """The values given, else those of `settings`, else `ModelConfig`'s defaults."""
        fields = ModelConfig.model_fields
        base_length = settings.max_length if settings is not None else fields["max_length"].default
        base_stride = settings.stride if settings is not None else fields["stride"].default
        return cls(base_length if max_length is None else max_length, base_stride if stride is None else stride)


@dataclass(frozen=True, slots=True)
class Window:
    """One model input: a stretch of one document's sub-tokens inside the tokenizer's special tokens.

    `labels` holds the word's tag id on the first sub-token of each word and -100 on special tokens and word
    continuations, so `labels[i] != -100` also marks where each word's prediction is read.
    """

    doc_index: int
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    word_ids: tuple[int | None, ...]

    @property
    def length(self) -> int:
        """Tokens in this window, special tokens included."""
        return len(self.input_ids)


@dataclass(frozen=True)
class EncodedSplit:
    """The windows of a sequence of documents, in document order."""

    windows: tuple[Window, ...]
    num_documents: int
    truncated_words: int


@dataclass(frozen=True)
class WordTokens:
    """A tokenizer's output for documents given as words: per document, sub-token ids and the word of each."""

    ids: Sequence[Sequence[int]]
    words: Sequence[Sequence[int | None]]
    prefix: Sequence[int]  # the special tokens before a single sequence (e.g. [CLS])
    suffix: Sequence[int]  # and after it (e.g. [SEP])
    unk_token_id: int | None


def untagged_document(index: int, text: str) -> Document:
    """A raw text segmented into words as `predict` segments it, with no labels."""
    words = split_words(text)
    return Document(str(index), text, words, ("O",) * len(words), ())


def window_documents(
    documents: Sequence[Document], tokens: WordTokens, tag_names: Sequence[str], max_length: int, stride: int
) -> EncodedSplit:
    """Cut each document's sub-tokens into windows of at most `max_length` tokens, special tokens included.

    A word the tokenizer maps to no sub-token (a lone control or format character) is given the unknown token,
    so word indices and tags never shift.
    """
    prefix, suffix = list(tokens.prefix), list(tokens.suffix)
    capacity = max_length - len(prefix) - len(suffix)
    if capacity < 1:
        raise InputError(f"max_length {max_length}: no room for text beside {len(prefix) + len(suffix)} special tokens")
    if not 0 <= stride < capacity:
        raise InputError(f"stride {stride}: expected 0 <= stride < {capacity} (max_length minus special tokens)")
    tag_ids = {name: index for index, name in enumerate(tag_names)}
    windows: list[Window] = []
    truncated = 0
    for doc_index, document in enumerate(documents):
        token_ids, token_words = _align(document, tokens.ids[doc_index], tokens.words[doc_index], tokens.unk_token_id)
        word_labels = _word_labels(document, tag_ids)
        is_first = [index == 0 or token_words[index - 1] != word for index, word in enumerate(token_words)]
        covered: set[int] = set()
        for start, end in _window_bounds(is_first, capacity, stride):
            labels = [word_labels[token_words[i]] if is_first[i] else IGNORE_INDEX for i in range(start, end)]
            covered.update(token_words[i] for i in range(start, end) if is_first[i])
            windows.append(
                Window(
                    doc_index=doc_index,
                    input_ids=(*prefix, *token_ids[start:end], *suffix),
                    labels=(*[IGNORE_INDEX] * len(prefix), *labels, *[IGNORE_INDEX] * len(suffix)),
                    word_ids=(*[None] * len(prefix), *token_words[start:end], *[None] * len(suffix)),
                )
            )
        truncated += len(document.words) - len(covered)
    return EncodedSplit(tuple(windows), len(documents), truncated)


def pad_windows(
    windows: Sequence[Window], pad_token_id: int, pad_to_multiple_of: int | None = None
) -> dict[str, np.ndarray]:
    """A batch of windows padded to its longest one (dynamic padding): int64 input ids, attention mask, labels."""
    width = max(window.length for window in windows)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = np.full((len(windows), width), pad_token_id, dtype=np.int64)
    labels = np.full((len(windows), width), IGNORE_INDEX, dtype=np.int64)
    attention_mask = np.zeros((len(windows), width), dtype=np.int64)
    for row, window in enumerate(windows):
        input_ids[row, : window.length] = window.input_ids
        labels[row, : window.length] = window.labels
        attention_mask[row, : window.length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def batched_logits(
    windows: Sequence[Window],
    forward: Callable[[dict[str, np.ndarray]], np.ndarray],
    batch_size: int,
    pad_token_id: int,
    pad_to_multiple_of: int | None = None,
) -> list[np.ndarray]:
    """Logits of each window as a float32 `[window.length, num_tags]` array, in the order given.

    `forward` maps a padded batch (`pad_windows`) to its `[batch, width, num_tags]` logits; windows of similar
    length are batched together, longest first, so a batch pads little.
    """
    order = sorted(range(len(windows)), key=lambda index: windows[index].length, reverse=True)
    results: list[np.ndarray] = [np.empty((0, 0), dtype=np.float32)] * len(windows)
    for first in range(0, len(order), batch_size):
        chunk = order[first : first + batch_size]
        logits = forward(pad_windows([windows[index] for index in chunk], pad_token_id, pad_to_multiple_of))
        for row, index in enumerate(chunk):
            results[index] = np.array(logits[row, : windows[index].length], dtype=np.float32)
    return results


def merge_word_predictions(
    documents: Sequence[Document], windows: Sequence[Window], logits: Sequence[np.ndarray]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per document index: the tag id (int64) and its probability (float32) of every word.

    A word seen in several overlapping windows takes the prediction of the window where it has the most context:
    the most tokens between it and the nearer window edge (a document edge counts as unlimited context); ties go
    to the earlier window. A word no window covers keeps tag id 0 (`O`) with probability 0.
    """
    tag_ids = {index: np.zeros(len(doc.words), dtype=np.int64) for index, doc in enumerate(documents)}
    scores = {index: np.zeros(len(doc.words), dtype=np.float32) for index, doc in enumerate(documents)}
    context = {index: np.full(len(doc.words), -1, dtype=np.int64) for index, doc in enumerate(documents)}
    for window, raw in zip(windows, logits, strict=True):
        probabilities = _softmax(raw)
        labels = np.asarray(window.labels)
        firsts = np.flatnonzero(labels != IGNORE_INDEX)
        if firsts.size == 0:
            continue
        words = np.asarray([window.word_ids[position] for position in firsts], dtype=np.int64)
        content = [position for position, word in enumerate(window.word_ids) if word is not None]
        left_edge, right_edge = content[0], content[-1]
        left = firsts - left_edge
        if window.word_ids[left_edge] == 0 and labels[left_edge] != IGNORE_INDEX:
            left = np.full_like(firsts, _UNLIMITED)
        right = right_edge - firsts
        if window.word_ids[right_edge] == len(documents[window.doc_index].words) - 1:
            right = np.full_like(firsts, _UNLIMITED)
        window_context = np.minimum(left, right)
        better = window_context > context[window.doc_index][words]
        chosen, positions = words[better], firsts[better]
        context[window.doc_index][chosen] = window_context[better]
        tag_ids[window.doc_index][chosen] = probabilities[positions].argmax(axis=-1)
        scores[window.doc_index][chosen] = probabilities[positions].max(axis=-1)
    return {index: (tag_ids[index], scores[index]) for index in range(len(documents))}


def _align(
    document: Document, ids: Sequence[int], words: Sequence[int | None], unk_token_id: int | None
) -> tuple[list[int], list[int]]:
    """Token ids and their word indices, giving a word without sub-tokens the unknown token."""
    pieces: list[list[int]] = [[] for _ in document.words]
    for token_id, word in zip(ids, words, strict=True):
        if word is not None:
            pieces[word].append(token_id)
    token_ids: list[int] = []
    token_words: list[int] = []
    for word, word_pieces in enumerate(pieces):
        if not word_pieces:
            if unk_token_id is None:
                raise DataError(
                    f"document {document.id!r}: word {word} {document.words[word].text!r} has no sub-tokens "
                    "and the tokenizer has no unknown token to stand for it"
                )
            word_pieces = [unk_token_id]
        token_ids.extend(word_pieces)
        token_words.extend([word] * len(word_pieces))
    return token_ids, token_words


def _word_labels(document: Document, tag_ids: dict[str, int]) -> list[int]:
    try:
        return [tag_ids[tag] for tag in document.tags]
    except KeyError as error:
        raise DataError(
            f"document {document.id!r}: tag {error.args[0]!r} is not one of the model's tags {list(tag_ids)}"
        ) from None


def _window_bounds(is_first: list[bool], capacity: int, stride: int) -> list[tuple[int, int]]:
    """`[start, end)` token ranges of at most `capacity` tokens, overlapping by about `stride`, covering all tokens.

    A window ends before the word that would not fit, unless that word alone fills the window; the next one
    starts at a word edge at least `stride` tokens back when there is one after the previous start.
    """
    total = len(is_first)
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < total:
        end = min(start + capacity, total)
        if end < total:
            cut = end
            while cut > start and not is_first[cut]:
                cut -= 1
            end = cut if cut > start else end
        bounds.append((start, end))
        if end == total:
            break
        wanted = max(end - stride, start + 1)
        back = wanted
        while back > start and not is_first[back]:
            back -= 1
        if back <= start:
            back = wanted
            while back < end and not is_first[back]:
                back += 1
        start = back
    return bounds


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
