"""Word-level evaluation of a model on labelled documents, with sliding windows so long documents lose nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document
from training.common.errors import InputError
from training.core.features import Collator, encode_documents, merge_word_predictions, window_logits
from training.core.metrics import compute_metrics
from training.core.model import load_model, model_tag_names


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one evaluation, the predicted tags of every word, and how many words no window covered."""

    metrics: dict[str, Any]
    predictions: tuple[tuple[str, ...], ...]
    truncated_words: int
    num_documents: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "metrics": self.metrics,
            "predictions": [list(tags) for tags in self.predictions],
            "truncated_words": self.truncated_words,
            "num_documents": self.num_documents,
        }


def evaluate_model(
    model: PreTrainedModel | str | os.PathLike[str],
    tokenizer: PreTrainedTokenizerBase | None,
    documents: Sequence[Document],
    *,
    tag_names: Sequence[str] | None = None,
    max_length: int = 256,
    stride: int = 32,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> EvaluationResult:
    """Predict a tag for every word of `documents` and score it against their gold tags (strict IOB2).

    `model` may be a saved model folder, whose own tokenizer is then used. `tag_names` default to the model's
    `id2label`. The model is moved to `device` when one is given, else it runs where it is.
    """
    if isinstance(model, (str, os.PathLike)):
        model, tokenizer, _ = load_model(Path(model))
    if tokenizer is None:
        raise InputError("tokenizer: missing; pass the model's tokenizer or a saved model folder as model")
    if device is not None:
        model.to(device)
    names = tuple(tag_names) if tag_names is not None else model_tag_names(model.config)
    encoded = encode_documents(documents, tokenizer, names, max_length, stride)
    logits = window_logits(model, encoded.windows, Collator(tokenizer.pad_token_id), batch_size, device)
    merged = merge_word_predictions(documents, encoded.windows, logits)
    predictions = tuple(tuple(names[tag_id] for tag_id in merged[index][0]) for index in range(len(documents)))
    metrics = compute_metrics([document.tags for document in documents], predictions)
    return EvaluationResult(metrics, predictions, encoded.truncated_words, encoded.num_documents)
