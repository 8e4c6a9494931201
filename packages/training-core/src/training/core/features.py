"""Model inputs shared by training, evaluation and prediction: word-aligned sub-token windows, padding, logits.

Documents are tokenised word by word. A document longer than `max_length` tokens becomes several windows that
overlap by `stride` tokens and end at word edges where a word fits, so every word's first sub-token, which
carries the word's tag, lies in at least one window. Predictions are merged back to one tag per word.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document
from training.common.atomic import atomic_write_bytes
from training.common.errors import DataError, InputError
from training.common.fingerprint import fingerprint, fingerprint_items

IGNORE_INDEX = -100
_CACHE_FORMAT = 1
# The context of a word on a side where its window reaches the document's edge.
_UNLIMITED = 1 << 30
_ARRAYS = ("doc_index", "offsets", "input_ids", "labels", "word_ids", "counts")
_log = logging.getLogger(__name__)


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


def encode_documents(
    documents: Sequence[Document],
    tokenizer: PreTrainedTokenizerBase,
    tag_names: Sequence[str],
    max_length: int,
    stride: int,
) -> EncodedSplit:
    """Tokenise each document's words and cut them into windows of at most `max_length` tokens.

    A word the tokenizer maps to no sub-token (a lone control or format character) is given the unknown token,
    so word indices and tags never shift.
    """
    prefix, suffix = _special_tokens(tokenizer)
    capacity = max_length - len(prefix) - len(suffix)
    if capacity < 1:
        raise InputError(f"max_length {max_length}: no room for text beside {len(prefix) + len(suffix)} special tokens")
    if not 0 <= stride < capacity:
        raise InputError(f"stride {stride}: expected 0 <= stride < {capacity} (max_length minus special tokens)")
    tag_ids = {name: index for index, name in enumerate(tag_names)}
    batch = tokenizer(
        [[word.text for word in document.words] for document in documents],
        is_split_into_words=True,
        add_special_tokens=False,
    )
    windows: list[Window] = []
    truncated = 0
    for doc_index, document in enumerate(documents):
        token_ids, token_words = _align(document, batch["input_ids"][doc_index], batch.word_ids(doc_index), tokenizer)
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


def encode_cached(
    documents: Sequence[Document],
    tokenizer: PreTrainedTokenizerBase,
    tag_names: Sequence[str],
    max_length: int,
    stride: int,
    cache_dir: str | os.PathLike[str],
    key_fingerprint: str,
) -> EncodedSplit:
    """`encode_documents` through a disk cache (numpy `.npz`, no pickle), so repeated runs skip tokenisation.

    The key covers `key_fingerprint` (e.g. dataset fingerprint and split name), the documents' words and tags, the
    tokenizer's full definition, the tag names, `max_length` and `stride`. An unreadable cache file is rebuilt.
    """
    key = fingerprint(
        {
            "format": _CACHE_FORMAT,
            "key": key_fingerprint,
            "documents": fingerprint_items([[w.text for w in doc.words], doc.tags] for doc in documents),
            "tokenizer": fingerprint(tokenizer.backend_tokenizer.to_str()),
            "tag_names": list(tag_names),
            "max_length": max_length,
            "stride": stride,
        }
    )
    path = Path(cache_dir) / f"features-{key[:32]}.npz"
    if path.is_file():
        cached = _read_cache(path, len(documents))
        if cached is not None:
            return cached
        _log.warning("%s: unreadable feature cache, rebuilding it", path)
    encoded = encode_documents(documents, tokenizer, tag_names, max_length, stride)
    _write_cache(path, encoded)
    return encoded


class Collator:
    """Pads a batch of windows to its longest one (dynamic padding): input ids, attention mask, labels (-100)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        if pad_token_id is None:
            raise InputError("pad_token_id: the tokenizer has no padding token; set tokenizer.pad_token")
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, windows: Sequence[Window]) -> dict[str, torch.Tensor]:
        width = max(window.length for window in windows)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(windows), width), self.pad_token_id, dtype=np.int64)
        labels = np.full((len(windows), width), IGNORE_INDEX, dtype=np.int64)
        attention_mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, window in enumerate(windows):
            input_ids[row, : window.length] = window.input_ids
            labels[row, : window.length] = window.labels
            attention_mask[row, : window.length] = 1
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(labels),
        }


def window_logits(
    model: PreTrainedModel,
    windows: Sequence[Window],
    collator: Collator,
    batch_size: int,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> list[np.ndarray]:
    """Logits of each window as a float32 `[window.length, num_tags]` array, in the order given.

    Runs in eval mode under `torch.inference_mode` on `device` (default: the model's), batching windows of
    similar length together; the model's train/eval mode is restored afterwards.
    """
    target = torch.device(device) if device is not None else next(model.parameters()).device
    order = sorted(range(len(windows)), key=lambda index: windows[index].length, reverse=True)
    results: list[np.ndarray] = [np.empty((0, 0), dtype=np.float32)] * len(windows)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for first in range(0, len(order), batch_size):
                chunk = order[first : first + batch_size]
                batch = collator([windows[index] for index in chunk])
                autocast = (
                    torch.autocast(device_type=target.type, dtype=autocast_dtype)
                    if autocast_dtype is not None
                    else contextlib.nullcontext()
                )
                with autocast:
                    output = model(
                        input_ids=batch["input_ids"].to(target), attention_mask=batch["attention_mask"].to(target)
                    )
                logits = output.logits.float().cpu().numpy()
                for row, index in enumerate(chunk):
                    results[index] = logits[row, : windows[index].length].copy()
    finally:
        model.train(was_training)
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


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single sequence (e.g. [CLS] and [SEP])."""
    probe = tokenizer(["a"], is_split_into_words=True, add_special_tokens=True)
    ids, words = probe["input_ids"], probe.word_ids()
    inside = [position for position, word in enumerate(words) if word is not None]
    return ids[: inside[0]], ids[inside[-1] + 1 :]


def _align(
    document: Document, ids: list[int], words: list[int | None], tokenizer: PreTrainedTokenizerBase
) -> tuple[list[int], list[int]]:
    """Token ids and their word indices, giving a word without sub-tokens the unknown token."""
    pieces: list[list[int]] = [[] for _ in document.words]
    for token_id, word in zip(ids, words, strict=True):
        pieces[word].append(token_id)
    token_ids: list[int] = []
    token_words: list[int] = []
    for word, word_pieces in enumerate(pieces):
        if not word_pieces:
            if tokenizer.unk_token_id is None:
                raise DataError(
                    f"document {document.id!r}: word {word} {document.words[word].text!r} has no sub-tokens "
                    "and the tokenizer has no unknown token to stand for it"
                )
            word_pieces = [tokenizer.unk_token_id]
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


def _write_cache(path: Path, encoded: EncodedSplit) -> None:
    windows = encoded.windows
    lengths = [window.length for window in windows]
    arrays = {
        "doc_index": np.asarray([window.doc_index for window in windows], dtype=np.int64),
        "offsets": np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
        "input_ids": np.fromiter((i for w in windows for i in w.input_ids), dtype=np.int64),
        "labels": np.fromiter((i for w in windows for i in w.labels), dtype=np.int64),
        "word_ids": np.fromiter((-1 if i is None else i for w in windows for i in w.word_ids), dtype=np.int64),
        "counts": np.asarray([encoded.num_documents, encoded.truncated_words], dtype=np.int64),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _read_cache(path: Path, num_documents: int) -> EncodedSplit | None:
    """The cached split, or None when the file is unreadable or inconsistent."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in _ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    offsets, doc_index, counts = arrays["offsets"], arrays["doc_index"], arrays["counts"]
    tokens = len(arrays["input_ids"])
    consistent = (
        offsets.ndim == 1
        and len(offsets) == len(doc_index) + 1
        and offsets[0] == 0
        and offsets[-1] == tokens
        and bool(np.all(np.diff(offsets) > 0))
        and len(arrays["labels"]) == tokens == len(arrays["word_ids"])
        and counts.shape == (2,)
        and counts[0] == num_documents
        and bool(np.all((doc_index >= 0) & (doc_index < num_documents)))
    )
    if not consistent:
        return None
    input_ids, labels = arrays["input_ids"].tolist(), arrays["labels"].tolist()
    word_ids = [None if word < 0 else word for word in arrays["word_ids"].tolist()]
    bounds = offsets.tolist()
    windows = tuple(
        Window(doc, tuple(input_ids[a:b]), tuple(labels[a:b]), tuple(word_ids[a:b]))
        for doc, (a, b) in zip(doc_index.tolist(), itertools.pairwise(bounds), strict=True)
    )
    return EncodedSplit(windows, int(counts[0]), int(counts[1]))
