"""The torch side of model inputs for training, evaluation and prediction: transformers' tokenizer, the feature
cache, padded tensors and window logits (windowing and merging themselves are torch-free, in `windowing`)."""

from __future__ import annotations

import io
import itertools
import logging
import os
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document
from training.common.atomic import atomic_write_bytes, remove_stale_staging
from training.common.errors import InputError
from training.common.fingerprint import fingerprint, fingerprint_items
from training.core.precision import autocast
from training.core.windowing import (
    EncodedSplit,
    Readings,
    Window,
    WordTokens,
    batched_readings,
    flat_windows,
    pad_windows,
    special_tokens,
    window_documents,
)

_CACHE_FORMAT = 1
_ARRAYS = ("doc_index", "offsets", "input_ids", "labels", "word_ids", "counts")
_log = logging.getLogger(__name__)


def encode_documents(
    documents: Sequence[Document],
    tokenizer: PreTrainedTokenizerBase,
    tag_names: Sequence[str],
    max_length: int,
    stride: int,
) -> EncodedSplit:
    """Tokenise each document's words and cut them into windows of at most `max_length` tokens (`window_documents`)."""
    batch = tokenizer(
        [[word.text for word in document.words] for document in documents],
        is_split_into_words=True,
        add_special_tokens=False,
        verbose=False,  # a document over the model's limit is cut into windows below, not fed whole
    )
    probe = tokenizer(["a"], is_split_into_words=True, add_special_tokens=True)
    words = [batch.word_ids(index) for index in range(len(documents))]
    specials = special_tokens(probe["input_ids"], probe.word_ids())
    tokens = WordTokens(batch["input_ids"], words, *specials, tokenizer.unk_token_id)
    return window_documents(documents, tokens, tag_names, max_length, stride)


def encode_cached(
    documents: Sequence[Document],
    tokenizer: PreTrainedTokenizerBase,
    tag_names: Sequence[str],
    max_length: int,
    stride: int,
    cache_dir: str | os.PathLike[str],
    key_fingerprint: str,
) -> EncodedSplit:
    """`encode_documents` through a disk cache (numpy `.npz`, no pickle) keyed by `key_fingerprint`, the documents'
    words and tags, the tokenizer's definition, tags and window settings; an unreadable cache file is rebuilt."""
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
    remove_stale_staging(path.parent, "features-*.npz")  # what writers killed mid-write left, a hit too
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
        arrays = pad_windows(windows, self.pad_token_id, self.pad_to_multiple_of)
        return {name: torch.from_numpy(array) for name, array in arrays.items()}


def window_readings(
    model: PreTrainedModel,
    windows: Sequence[Window],
    collator: Collator,
    batch_size: int,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> Readings:
    """The model's `Readings` of `windows` (`batched_readings`) on `device` (default: the model's), in eval mode."""
    target = torch.device(device) if device is not None else next(model.parameters()).device

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        inputs = {name: torch.from_numpy(batch[name]).to(target) for name in ("input_ids", "attention_mask")}
        with autocast(target, autocast_dtype):
            return model(**inputs).logits.float().cpu().numpy()

    with evaluation_mode(model), torch.inference_mode():
        return batched_readings(windows, forward, batch_size, collator.pad_token_id, collator.pad_to_multiple_of)


@contextmanager
def evaluation_mode(model: torch.nn.Module) -> Iterator[None]:
    """`model` in evaluation mode (no dropout) while entered, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _write_cache(path: Path, encoded: EncodedSplit) -> None:
    arrays = flat_windows(encoded.windows)
    arrays["offsets"] = np.concatenate([[0], np.cumsum(arrays.pop("lengths"))]).astype(np.int64)
    arrays["counts"] = np.asarray([encoded.num_documents, encoded.truncated_words], dtype=np.int64)
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
