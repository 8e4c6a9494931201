"""The one prediction pipeline: documents -> windows -> logits -> one tag per word -> entities.

Training-time evaluation, `evaluate_model` and `predict` all run `predict_documents`, so the metrics a run reports
are the metrics of what `predict` returns. Tags are decoded by the one policy of `decoding`; window settings come
from `ModelConfig` (its defaults where none are given).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document, split_words, tags_to_spans
from training.config.schema import ModelConfig
from training.core.decoding import repair_iob2
from training.core.features import (
    IGNORE_INDEX,
    Collator,
    EncodedSplit,
    Window,
    encode_documents,
    merge_word_predictions,
    window_logits,
)


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity found in a text: characters `[start, end)`, its type, the text it covers and a confidence."""

    start: int
    end: int
    label: str
    text: str
    score: float


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
class DocumentPrediction:
    """One document's word tags as the model predicts them, their probabilities, and the entities they decode to."""

    tags: tuple[str, ...]
    scores: tuple[float, ...]
    entities: tuple[Entity, ...]


@dataclass(frozen=True)
class Predictions:
    """Predictions by document index, with the loss terms of their windows against the documents' own tags."""

    documents: dict[int, DocumentPrediction]
    loss_sum: float
    labelled_tokens: int
    truncated_words: int


def untagged_document(index: int, text: str) -> Document:
    """A raw text segmented into words as `predict` segments it, with no labels."""
    words = split_words(text)
    return Document(str(index), text, words, ("O",) * len(words), ())


def predict_documents(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[Document],
    tag_names: Sequence[str],
    windowing: Windowing,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    encoded: EncodedSplit | None = None,
    indices: Collection[int] | None = None,
) -> Predictions:
    """Tags, scores and entities of the documents at `indices` (default: all), from their windows' logits.

    `encoded` reuses windows already made (e.g. cached) for `documents` with the same settings.
    """
    if encoded is None:
        encoded = encode_documents(documents, tokenizer, tag_names, windowing.max_length, windowing.stride)
    chosen = range(len(documents)) if indices is None else sorted(indices)
    wanted = set(chosen)
    windows = [window for window in encoded.windows if window.doc_index in wanted]
    target = torch.device(device) if device is not None else next(model.parameters()).device
    collator = Collator(tokenizer.pad_token_id, pad_to_multiple_of=8 if target.type == "cuda" else None)
    logits = window_logits(model, windows, collator, batch_size, target, autocast_dtype)
    merged = merge_word_predictions(documents, windows, logits)
    loss_sum, labelled = _loss_terms(windows, logits)
    results = {}
    for index in chosen:
        tag_ids, probabilities = merged[index]
        tags = tuple(tag_names[tag_id] for tag_id in tag_ids)
        scores = tuple(float(score) for score in probabilities)
        results[index] = DocumentPrediction(tags, scores, _entities(documents[index], tags, scores))
    return Predictions(results, loss_sum, labelled, encoded.truncated_words)


def text_entities(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[Document],
    predictions: Predictions,
    tag_names: Sequence[str],
    windowing: Windowing,
    **run: Any,
) -> dict[int, tuple[Entity, ...]]:
    """What `predict` returns for the texts of the predicted documents, by document index.

    A document segmented as `predict` segments its raw text keeps the entities already predicted; any other is
    predicted again from its raw text. `run` holds `predict_documents`' batch size, device and autocast dtype.
    """
    raw = {index: untagged_document(index, documents[index].text) for index in predictions.documents}
    again = [index for index, document in raw.items() if document.words != documents[index].words]
    entities = {index: found.entities for index, found in predictions.documents.items() if index not in again}
    if again:
        second = predict_documents(model, tokenizer, [raw[index] for index in again], tag_names, windowing, **run)
        entities.update({index: second.documents[position].entities for position, index in enumerate(again)})
    return entities


def _loss_terms(windows: Sequence[Window], logits: Sequence[np.ndarray]) -> tuple[float, int]:
    """Summed cross-entropy over the labelled tokens of `windows`, and how many there are."""
    loss_sum, labelled = 0.0, 0
    for window, window_logit in zip(windows, logits, strict=True):
        labels = np.asarray(window.labels)
        mask = labels != IGNORE_INDEX
        if not mask.any():
            continue
        shifted = window_logit[mask] - window_logit[mask].max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss_sum -= float(log_probs[np.arange(mask.sum()), labels[mask]].sum())
        labelled += int(mask.sum())
    return loss_sum, labelled


def _entities(document: Document, tags: Sequence[str], scores: Sequence[float]) -> tuple[Entity, ...]:
    """The entities of word tags decoded by the one policy; an entity's score is the mean probability of its words'
    tags."""
    starts = [word.start for word in document.words]
    entities = []
    for span in tags_to_spans(document.words, repair_iob2(tags)):
        first, last = bisect_left(starts, span.start), bisect_left(starts, span.end)
        score = float(sum(scores[first:last]) / (last - first))
        entities.append(Entity(span.start, span.end, span.label, document.text[span.start : span.end], score))
    return tuple(entities)
