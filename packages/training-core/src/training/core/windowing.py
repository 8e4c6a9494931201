"""The torch-free half of the prediction pipeline: word-aligned sub-token windows and per-word merging.

A document longer than `max_length` tokens becomes windows that overlap by `stride` tokens and end at word edges,
so every word's first sub-token (which carries its tag) lies in a window; window logits merge back to one tag per
word. Free of torch and transformers, so the onnxruntime predictor runs the very same steps.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from data.documents import Document, split_words
from data.formats import HALF_SURROGATE
from training.common.errors import DataError, InputError
from training.config.schema import ModelConfig
from training.config.validation import validate

IGNORE_INDEX = -100
_UNLIMITED = 1 << 30  # the context of a word on a side where its window reaches the document's edge
_RECORD = "ner_windowing"  # the model config's attribute that holds a trained model's window settings


@dataclass(frozen=True, slots=True)
class Windowing:
    """Window length (tokens, specials included) and the tokens consecutive windows share."""

    max_length: int
    stride: int

    def __post_init__(self) -> None:
        whole_number(self.max_length, "max_length")  # a '16' from a form failed later with a TypeError naming neither
        whole_number(self.stride, "stride")

    @classmethod
    def of(
        cls,
        settings: ModelConfig | Windowing | None = None,
        *,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> Windowing:
        """The values given, else those of `settings`, else `ModelConfig`'s defaults; values other than those of
        `settings` follow the config's bounds and rule, and a `max_length` given alone keeps the stride only where it is
        below half of it, else the caller must give a stride too."""
        base = settings if settings is not None else ModelConfig.model_construct()  # the defaults, unvalidated
        if max_length is not None and stride is None and base.stride * 2 >= whole_number(max_length, "max_length"):
            # its own bounds first: "give a stride too" for a max_length of 0 led to a second error
            alone = {"name": "", "backbone": "", "max_length": max_length, "stride": 0}
            validate(ModelConfig, alone, "window settings")
            raise InputError(
                f"max_length {max_length}: the stride it would keep ({base.stride}) must be below half of it; "
                "give a stride too"
            )
        values = {"max_length": base.max_length if max_length is None else whole_number(max_length, "max_length")}
        values["stride"] = base.stride if stride is None else whole_number(stride, "stride")
        if tuple(values.values()) != (base.max_length, base.stride):
            # Chosen now, they are settings ModelConfig takes: a Predictor given stride 20 for 40-token windows (or
            # max_length 12) windowed text as no training could. A model's record stays what it was trained with (a
            # max_length of 40 set alone kept stride 32 before the config checked a default stride).
            validate(ModelConfig, {"name": "", "backbone": "", **values}, "window settings")
        return cls(**values)

    def write_to(self, model_config: object) -> None:
        """Record these settings in a model's config (its `config.json` once saved), so that the model folder, moved
        away from its run, still predicts with the windows it was trained on."""
        setattr(model_config, _RECORD, {"max_length": self.max_length, "stride": self.stride})

    @classmethod
    def read_from(cls, model_config: object) -> Windowing | None:
        """The settings `write_to` recorded in `model_config`, None where it holds none (a model trained elsewhere,
        or before models recorded them)."""
        saved = getattr(model_config, _RECORD, None)
        if saved is None:
            return None
        shape = isinstance(saved, dict) and set(saved) == {"max_length", "stride"}
        if not (shape and all(type(value) is int and value >= 0 for value in saved.values())):
            where = f"{getattr(model_config, 'name_or_path', '') or 'the model'}/config.json"
            expected = "{'max_length': <tokens>, 'stride': <tokens>}"
            raise InputError(f"{where}: {_RECORD} is {saved!r:.80}; expected {expected}")
        return cls(saved["max_length"], saved["stride"])


@dataclass(frozen=True, slots=True)
class Window:
    """One model input: a stretch of one document's sub-tokens inside the special tokens; `labels` holds each word's
    tag id on its first sub-token (where its prediction is read) and -100 elsewhere."""

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


def text_documents(texts: Sequence[str]) -> list[Document]:
    """The `untagged_document` of each text, in order; an error for one string given where a list belongs."""
    if isinstance(texts, str):
        raise InputError("texts: expected a list of strings, got one string; pass [text]")
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):  # bytes: their items are ints
        raise InputError(f"texts: expected a list of strings, got {type(texts).__name__} {texts!r:.60}")
    texts = list(texts)  # a generator is read once
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"texts[{index}]: expected a string, got {type(text).__name__} {text!r}")
        if broken := HALF_SURROGATE.search(text):  # no UTF-8 (nor a tokenizer) can encode it
            raise InputError(f"texts[{index}]: half a surrogate pair ({broken[0]!r}) at character {broken.start()}")
    return [untagged_document(index, text) for index, text in enumerate(texts)]


def checked_tag_names(names: Sequence[str], where: str) -> tuple[str, ...]:
    """`names` if they are IOB2 tag names, each once, 'O' among them, else an `InputError` naming `where` (a model's
    label map): without 'O' (every word of a text to tag starts as 'O') or with a tag at two ids, a model failed
    later, naming a document or a `tag_names` argument the user never gave, or tagged words as another tag."""
    named = all(isinstance(name, str) for name in names)  # a hand-edited id2label may map an id to null or a number
    iob2 = named and all(name == "O" or (name[:2] in ("B-", "I-") and len(name) > 2) for name in names)
    if not (iob2 and "O" in names and len(set(names)) == len(names)):
        raise InputError(f"{where} {list(names)} are not IOB2 tag names; expected 'O', 'B-X', 'I-X', ..., each once")
    return tuple(names)


def special_tokens(ids: Sequence[int], words: Sequence[int | None]) -> tuple[Sequence[int], Sequence[int]]:
    """The special tokens before and after the words of one encoded sequence (e.g. [CLS] and [SEP])."""
    inside = [position for position, word in enumerate(words) if word is not None]
    return ids[: inside[0]], ids[inside[-1] + 1 :]


def window_documents(
    documents: Sequence[Document], tokens: WordTokens, tag_names: Sequence[str], max_length: int, stride: int
) -> EncodedSplit:
    """Cut each document's sub-tokens into windows of at most `max_length` tokens, special tokens included; a word
    with no sub-token (a lone control character) gets the unknown token, so word indices never shift."""
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
    width = round_up(max(window.length for window in windows), pad_to_multiple_of)
    input_ids = np.full((len(windows), width), pad_token_id, dtype=np.int64)
    labels = np.full((len(windows), width), IGNORE_INDEX, dtype=np.int64)
    attention_mask = np.zeros((len(windows), width), dtype=np.int64)
    for row, window in enumerate(windows):
        input_ids[row, : window.length] = window.input_ids
        labels[row, : window.length] = window.labels
        attention_mask[row, : window.length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def round_up(width: int, multiple: int | None) -> int:
    """`width` rounded up to a multiple of `multiple` (as it is where `multiple` is None)."""
    return -(-width // multiple) * multiple if multiple else width


def flat_windows(windows: Sequence[Window]) -> dict[str, np.ndarray]:
    """Windows laid end to end (int64): `doc_index` and `lengths` per window; `input_ids`, `labels` and `word_ids`
    (-1 on special tokens) per token."""
    total = sum(window.length for window in windows)
    return {
        "doc_index": np.fromiter((window.doc_index for window in windows), np.int64, len(windows)),
        "lengths": np.fromiter((window.length for window in windows), np.int64, len(windows)),
        "input_ids": np.fromiter(chain.from_iterable(window.input_ids for window in windows), np.int64, total),
        "labels": np.fromiter(chain.from_iterable(window.labels for window in windows), np.int64, total),
        "word_ids": np.fromiter(
            (-1 if i is None else i for window in windows for i in window.word_ids), np.int64, total
        ),
    }


@dataclass(frozen=True)
class Readings:
    """Per labelled position of windows, in order: the most probable tag id, its probability, the label's log-prob."""

    tag_ids: np.ndarray  # int64
    scores: np.ndarray  # float32
    label_log_probs: np.ndarray  # float32

    @property
    def loss_sum(self) -> float:
        """Summed cross-entropy of the labels."""
        return -float(self.label_log_probs.sum(dtype=np.float64))


def whole_number(value: object, name: str, *, least: int | None = None) -> int:
    """`value` (the argument `name`) if it is a whole number (of at least `least`), else an `InputError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (least is not None and value < least):
        bound = "" if least is None else f" of at least {least}"
        raise InputError(f"{name}: expected a whole number{bound}, got {value!r}")
    return int(value)


def batched_readings(
    windows: Sequence[Window],
    forward: Callable[[dict[str, np.ndarray]], np.ndarray],
    batch_size: int,
    pad_token_id: int,
    pad_to_multiple_of: int | None = None,
) -> Readings:
    """The `Readings` of `windows`, from batches of similar length, longest first; `forward` maps a padded batch
    (`pad_windows`) to `[batch, width, num_tags]` logits, read whole (no Python loop over tokens)."""
    whole_number(batch_size, "batch_size", least=1)
    order = np.argsort(-np.fromiter((window.length for window in windows), np.int64, len(windows)), kind="stable")
    # Per batch: the window of each labelled position, and the readings there.
    parts = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.float32))]
    for first in range(0, len(order), batch_size):
        chunk = order[first : first + batch_size]
        batch = pad_windows([windows[index] for index in chunk], pad_token_id, pad_to_multiple_of)
        mask = batch["labels"] != IGNORE_INDEX
        parts.append((chunk[np.nonzero(mask)[0]], *_read(forward(batch)[mask], batch["labels"][mask])))
    owners, tag_ids, scores, label_log_probs = (np.concatenate(column) for column in zip(*parts, strict=True))
    back = np.argsort(owners, kind="stable")  # window order; a window's positions stay in token order
    return Readings(tag_ids[back], scores[back], label_log_probs[back])


def merge_word_predictions(
    documents: Sequence[Document], windows: Sequence[Window], readings: Readings
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per document index: the tag id (int64) and probability (float32) of every word, from the window where it has
    most tokens to the nearer window edge (a document edge: unlimited; ties: the earlier); uncovered words get 0, 0."""
    word_counts = np.fromiter((len(document.words) for document in documents), np.int64, len(documents))
    word_offsets = np.cumsum(word_counts) - word_counts
    tag_ids = np.zeros(int(word_counts.sum()), dtype=np.int64)
    scores = np.zeros(int(word_counts.sum()), dtype=np.float32)
    if windows:
        flat = flat_windows(windows)
        words, labels, doc_index = flat["word_ids"], flat["labels"], flat["doc_index"]
        token_owner = np.repeat(np.arange(len(windows)), flat["lengths"])
        content = np.flatnonzero(words >= 0)  # each window's first and last non-special token (every window has one)
        _, first = np.unique(token_owner[content], return_index=True)
        left_edge, right_edge = content[first], content[np.append(first[1:] - 1, len(content) - 1)]
        labelled = np.flatnonzero(labels != IGNORE_INDEX)
        owner = token_owner[labelled]
        left = labelled - left_edge[owner]
        opens_document = (words[left_edge] == 0) & (labels[left_edge] != IGNORE_INDEX)
        left[opens_document[owner]] = _UNLIMITED
        right = right_edge[owner] - labelled
        closes_document = words[right_edge] == word_counts[doc_index] - 1
        right[closes_document[owner]] = _UNLIMITED
        key = word_offsets[doc_index[owner]] + words[labelled]
        # Per word: the most context first, then the earliest window (the reading order is window order).
        ranked = np.lexsort((np.arange(len(key)), -np.minimum(left, right), key))
        first = np.ones(len(ranked), dtype=bool)
        first[1:] = key[ranked][1:] != key[ranked][:-1]
        chosen = ranked[first]
        tag_ids[key[chosen]] = readings.tag_ids[chosen]
        scores[key[chosen]] = readings.scores[chosen]
    return {
        index: (tag_ids[offset : offset + count], scores[offset : offset + count])
        for index, (offset, count) in enumerate(zip(word_offsets.tolist(), word_counts.tolist(), strict=True))
    }


def _read(rows: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Most probable tag id, its probability and the label's log-probability of each row of logits."""
    rows = rows.astype(np.float32, copy=False)
    shifted = rows - rows.max(axis=1, keepdims=True)
    exponents = np.exp(shifted)
    totals = exponents.sum(axis=1, keepdims=True)
    probabilities = exponents / totals
    label_log_probs = np.take_along_axis(shifted, labels[:, None], axis=1)[:, 0] - np.log(totals[:, 0])
    return probabilities.argmax(axis=1), probabilities.max(axis=1), label_log_probs


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
    """`[start, end)` ranges of at most `capacity` tokens covering all tokens: each ends before a word that does not
    fit (unless it alone fills the window); the next starts at a word edge about `stride` tokens back."""
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
