"""The one decoder from word tags to entities, shared by the metrics, the HPO objective and `predict`.

Predicted tags are read as conlleval and Hugging Face's pipeline read them: an `I-X` that does not continue an X
entity starts one, so `O I-PER I-PER` is one PER entity in evaluation exactly as in prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from data.documents import Document, tag_runs


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity found in a text: characters `[start, end)`, its type, the text it covers and a confidence."""

    start: int
    end: int
    label: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class DocumentPrediction:
    """One document's word tags as the model predicts them, their probabilities, and the entities they decode to."""

    tags: tuple[str, ...]
    scores: tuple[float, ...]
    entities: tuple[Entity, ...]


def document_predictions(
    documents: Sequence[Document],
    merged: Mapping[int, tuple[np.ndarray, np.ndarray]],
    tag_names: Sequence[str],
    indices: Iterable[int],
) -> dict[int, DocumentPrediction]:
    """The predictions of the documents at `indices` from their merged word tag ids and probabilities."""
    names = np.asarray(tag_names, dtype=object)
    results = {}
    for index in indices:
        tag_ids, probabilities = merged[index]
        tags = tuple(names[tag_ids].tolist())
        scores = tuple(probabilities.tolist())
        results[index] = DocumentPrediction(tags, scores, _entities(documents[index], tags, scores))
    return results


def _entities(document: Document, tags: Sequence[str], scores: Sequence[float]) -> tuple[Entity, ...]:
    """The entities of word tags (a stray `I-X` starts one), scored by the mean probability of their words' tags."""
    entities = []
    for label, first, last in tag_runs(tags):
        start, end = document.words[first].start, document.words[last - 1].end
        score = float(sum(scores[first:last]) / (last - first))
        entities.append(Entity(start, end, label, document.text[start:end], score))
    return tuple(entities)
