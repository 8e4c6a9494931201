"""Prediction: raw texts to entity spans with character offsets, using a saved or loaded model."""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document, split_words, tags_to_spans
from training.common.errors import InputError
from training.config.schema import TrainingConfig
from training.core.features import Collator, encode_documents, merge_word_predictions, window_logits
from training.core.model import load_model, model_tag_names

DEFAULT_MAX_LENGTH = 256
DEFAULT_STRIDE = 32


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity found in a text: characters `[start, end)`, its type, the text it covers and a confidence."""

    start: int
    end: int
    label: str
    text: str
    score: float


class Predictor:
    """A model and tokenizer ready to tag texts (the model moves to `device`, in eval mode); load once, call often."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        stride: int = DEFAULT_STRIDE,
        batch_size: int = 32,
        device: str | torch.device | None = None,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tag_names = model_tag_names(model.config)
        self.max_length = max_length
        self.stride = stride
        self.batch_size = batch_size

    @classmethod
    def from_folder(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        max_length: int | None = None,
        stride: int | None = None,
        batch_size: int = 32,
        device: str | torch.device | None = None,
    ) -> Predictor:
        """Load a model folder; window settings not given come from the run's `config.yaml` beside it, if any."""
        folder = Path(model_dir)
        model, tokenizer, _ = load_model(folder)
        run_config = folder.parent / "config.yaml"
        if run_config.is_file():
            settings = TrainingConfig.from_yaml(run_config.read_text(encoding="utf-8"), str(run_config)).model
            max_length = settings.max_length if max_length is None else max_length
            stride = settings.stride if stride is None else stride
        return cls(
            model,
            tokenizer,
            max_length=DEFAULT_MAX_LENGTH if max_length is None else max_length,
            stride=DEFAULT_STRIDE if stride is None else stride,
            batch_size=batch_size,
            device=device,
        )

    def __call__(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text, in text order; a score is the mean probability of the entity's word tags."""
        if isinstance(texts, str):
            raise InputError("texts: expected a list of strings, got one string; pass [text]")
        documents = [_untagged(index, text) for index, text in enumerate(texts)]
        encoded = encode_documents(documents, self.tokenizer, self.tag_names, self.max_length, self.stride)
        collator = Collator(self.tokenizer.pad_token_id)
        logits = window_logits(self.model, encoded.windows, collator, self.batch_size, self.device)
        merged = merge_word_predictions(documents, encoded.windows, logits)
        return [_entities(document, *merged[index], self.tag_names) for index, document in enumerate(documents)]


def predict(
    model_dir: str | os.PathLike[str],
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    max_length: int | None = None,
    stride: int | None = None,
) -> list[list[Entity]]:
    """Entities of each text found by the model saved in `model_dir` (a run's `model/` folder)."""
    predictor = Predictor.from_folder(
        model_dir, max_length=max_length, stride=stride, batch_size=batch_size, device=device
    )
    return predictor(texts)


def _untagged(index: int, text: str) -> Document:
    words = split_words(text)
    return Document(str(index), text, words, ("O",) * len(words), ())


def _entities(
    document: Document, tag_ids: Sequence[int], scores: Sequence[float], tag_names: Sequence[str]
) -> list[Entity]:
    tags = [tag_names[tag_id] for tag_id in tag_ids]
    starts = [word.start for word in document.words]
    entities = []
    for span in tags_to_spans(document.words, tags):
        first = bisect_left(starts, span.start)
        last = bisect_left(starts, span.end)
        score = float(sum(scores[first:last]) / (last - first))
        entities.append(Entity(span.start, span.end, span.label, document.text[span.start : span.end], score))
    return entities
