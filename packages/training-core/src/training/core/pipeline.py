"""The one prediction pipeline: documents -> windows -> logits -> one tag per word -> entities.

Training-time evaluation, `evaluate_model` and `predict` all run `predict_documents`, so reported metrics are those
of what `predict` returns; only the logits come from torch here (the onnxruntime predictor shares the rest). A
window's logits depend on the windows batched with it by rounding alone, as the kernels block each batch shape
differently: in fp32 below 1e-6 (practically never a different tag), in bf16 by bf16 rounding (up to about 4e-3 in
MiniLM's logits on an AMX CPU): a word whose two best tags are that close can change tag with the batch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document
from training.common.errors import InputError
from training.core.decoding import DocumentPrediction, Entity, document_predictions
from training.core.features import Collator, encode_documents, window_readings
from training.core.positions import check_max_length
from training.core.windowing import EncodedSplit, Windowing, merge_word_predictions, untagged_document

__all__ = ["Entity", "Predictions", "Windowing", "predict_documents", "text_entities", "untagged_document"]


@dataclass(frozen=True)
class Predictions:
    """Predictions by document index, with the loss terms of their windows against the documents' own tags."""

    documents: dict[int, DocumentPrediction]
    loss_sum: float
    labelled_tokens: int
    truncated_words: int


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
    """Tags, scores and entities of the documents at `indices` (default: all); `encoded` reuses windows made before."""
    check_max_length(windowing.max_length, model.config, None)
    if len(tag_names) != model.config.num_labels:
        raise InputError(f"tag_names: {len(tag_names)} tags for a model with {model.config.num_labels} labels")
    own = [model.config.id2label.get(index) for index in range(len(tag_names))]
    # Other names are the caller's renaming; a name of the model's at another id scores its tag as another.
    if moved := [(index, name) for index, name in enumerate(tag_names) if name in own and own.index(name) != index]:
        index, name = moved[0]
        raise InputError(
            f"tag_names: {list(tag_names)} put the model's tags at other ids ({name!r} at {index}, the model's at "
            f"{own.index(name)}); its id2label has {own}; omit tag_names to use the model's"
        )
    if encoded is None:
        encoded = encode_documents(documents, tokenizer, tag_names, windowing.max_length, windowing.stride)
    chosen = range(len(documents)) if indices is None else sorted(indices)
    wanted = set(chosen)
    windows = [window for window in encoded.windows if window.doc_index in wanted]
    target = torch.device(device) if device is not None else next(model.parameters()).device
    collator = Collator(tokenizer.pad_token_id, pad_to_multiple_of=8 if target.type == "cuda" else None)
    readings = window_readings(model, windows, collator, batch_size, target, autocast_dtype)
    merged = merge_word_predictions(documents, windows, readings)
    results = document_predictions(documents, merged, tag_names, chosen)
    return Predictions(results, readings.loss_sum, len(readings.tag_ids), encoded.truncated_words)


def text_entities(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[Document],
    predictions: Predictions,
    tag_names: Sequence[str],
    windowing: Windowing,
    **run: Any,
) -> dict[int, tuple[Entity, ...]]:
    """What `predict` returns for the texts of the predicted documents, by index: a document segmented otherwise than
    `predict` segments its text is predicted again from its text (`run`: `predict_documents`' options)."""
    raw = {index: untagged_document(index, documents[index].text) for index in predictions.documents}
    again = [index for index, document in raw.items() if document.words != documents[index].words]
    entities = {index: found.entities for index, found in predictions.documents.items() if index not in again}
    if again:
        second = predict_documents(model, tokenizer, [raw[index] for index in again], tag_names, windowing, **run)
        entities.update({index: second.documents[position].entities for position, index in enumerate(again)})
    return entities
