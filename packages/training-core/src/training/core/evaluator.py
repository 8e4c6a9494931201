"""Word-level evaluation of a model on labelled documents, with sliding windows so long documents lose nothing.

Scores come from the one prediction pipeline: entity metrics on word tags, `span_*` on the spans `predict` returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document
from training.common.errors import InputError, expect_instance
from training.core.features import EncodedSplit
from training.core.metrics import compute_metrics, span_metrics
from training.core.model import load_model, model_tag_names
from training.core.pipeline import Entity, Windowing, predict_documents, text_entities
from training.core.precision import AUTOCAST_DTYPES, inference_precision, resolve_device
from training.core.run_context import RunContext
from training.core.run_folder import RunFolder
from training.core.run_metrics import Precision


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one evaluation, the predicted tags of every word, how many words no window covered, and the
    precision the model computed in."""

    metrics: dict[str, Any]
    predictions: tuple[tuple[str, ...], ...]
    truncated_words: int
    num_documents: int
    precision: Precision

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {**asdict(self), "predictions": [list(tags) for tags in self.predictions]}


def evaluate_model(
    model: PreTrainedModel | str | os.PathLike[str],
    tokenizer: PreTrainedTokenizerBase | None,
    documents: Sequence[Document],
    *,
    tag_names: Sequence[str] | None = None,
    max_length: int | None = None,
    stride: int | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    precision: str | None = None,
) -> EvaluationResult:
    """Predict a tag for every word of `documents` and score it against their gold tags (strict IOB2).

    `model` may be a saved model folder (with its own tokenizer); `tag_names` default to the model's `id2label`,
    window settings to those of the run that saved the folder, else those the model records (`ner_windowing`), else
    `ModelConfig`'s; `precision` resolves for
    `device` as `training.precision` (default: for a folder, the precision its run evaluated in where `device`
    computes it natively, so the scores are those the run reported; else fp32).
    """
    documents = _checked(documents)
    if tag_names is not None:  # 5 failed as a TypeError, a string was read letter by letter, id2label as its ids
        expect_instance(tag_names, (list, tuple), "tag_names", "a list of tag names such as ['O', 'B-PER', 'I-PER']")
    device = resolve_device(device) if device is not None else None
    if isinstance(model, (str, os.PathLike)):
        run_folder = RunFolder.of_model(model)
        recorded = run_folder.recorded_precision() if precision is None else None
        chosen = inference_precision(precision, device or torch.device("cpu"), recorded)  # load_model: on the CPU
        model, tokenizer, _ = load_model(Path(model))
        saved = Windowing.read_from(model.config)
        windowing = run_folder.windowing(max_length=max_length, stride=stride, saved=saved)
    else:  # None was reported as a missing tokenizer
        expect_instance(model, torch.nn.Module, "model", "a PreTrainedModel or the path of a saved model folder")
        chosen = inference_precision(precision, device or next(model.parameters()).device)
        windowing = Windowing.of(Windowing.read_from(model.config), max_length=max_length, stride=stride)
    if tokenizer is None:
        raise InputError("tokenizer: missing; pass the model's tokenizer or a saved model folder as model")
    expect_instance(tokenizer, PreTrainedTokenizerBase, "tokenizer", "the model's PreTrainedTokenizerBase")
    if device is not None:
        model.to(device)
    names = tuple(tag_names) if tag_names is not None else model_tag_names(model.config)
    run = {"batch_size": batch_size, "device": device, "autocast_dtype": AUTOCAST_DTYPES[chosen]}
    found = predict_documents(model, tokenizer, documents, names, windowing, **run)
    entities = text_entities(model, tokenizer, documents, found, names, windowing, **run)
    predictions = tuple(found.documents[index].tags for index in range(len(documents)))
    metrics = score(documents, predictions, entities)
    return EvaluationResult(metrics, predictions, found.truncated_words, len(documents), chosen)


def _checked(documents: Sequence[Document]) -> list[Document]:
    """`documents` read once into a list (a generator is fine), or an `InputError` naming the first that is not one."""
    expected = "expected Documents (load_dataset(path)[split] holds them)"
    if isinstance(documents, Document):
        raise InputError(f"documents: {expected}, got one Document; pass [document]")
    if isinstance(documents, str):
        raise InputError(f"documents: {expected}, got one string; texts without tags are for predict")
    if isinstance(documents, Mapping):  # a whole Dataset: its split names were read as documents
        raise InputError(f"documents: {expected}, got a mapping of {list(documents)}; pass one split, e.g. ['test']")
    if not isinstance(documents, Iterable):
        raise InputError(f"documents: {expected}, got {type(documents).__name__} {documents!r:.60}")
    documents = list(documents)
    if not documents:  # it scored nothing as an F1 of 0.0
        raise InputError(f"documents: empty; {expected}")
    for index, document in enumerate(documents):
        if not isinstance(document, Document):
            what = f"{type(document).__name__} {document!r:.60}"
            raise InputError(f"documents[{index}]: {expected}, got {what}; texts without tags are for predict")
    return documents


def score(
    documents: Sequence[Document],
    predictions: Sequence[Sequence[str]],
    entities: Mapping[int, Sequence[Entity]],
) -> dict[str, Any]:
    """`compute_metrics` of the predicted word tags, with `span_*` scores of the entities `predict` returned."""
    metrics = compute_metrics([document.tags for document in documents], predictions)
    gold = [[(span.start, span.end, span.label) for span in document.spans] for document in documents]
    found = [[(e.start, e.end, e.label) for e in entities[index]] for index in range(len(documents))]
    return {**metrics, **span_metrics(gold, found)}


def evaluate_split(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[Document],
    encoded: EncodedSplit,
    tag_names: Sequence[str],
    windowing: Windowing,
    ctx: RunContext,
    *,
    batch_size: int,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Training-time metrics and loss on the whole validation split: each rank predicts its share, then all gather."""
    mine = range(ctx.rank, len(documents), ctx.world_size)
    run = {"batch_size": batch_size, "device": ctx.device, "autocast_dtype": autocast_dtype}
    found = predict_documents(model, tokenizer, documents, tag_names, windowing, encoded=encoded, indices=mine, **run)
    entities = text_entities(model, tokenizer, documents, found, tag_names, windowing, **run)
    gathered = ctx.all_gather_object(({i: p.tags for i, p in found.documents.items()}, entities))
    predictions = {index: tags for part, _ in gathered for index, tags in part.items()}
    found_entities = {index: spans for _, part in gathered for index, spans in part.items()}
    loss_sum, labelled = ctx.all_reduce_sum([found.loss_sum, float(found.labelled_tokens)])
    metrics = score(documents, [predictions[index] for index in range(len(documents))], found_entities)
    return {**metrics, "loss": loss_sum / labelled if labelled else 0.0}


def improves(value: float, best: float | None, metric: str) -> bool:
    """Whether `value` of `metric` beats the best so far (lower for the loss, higher for every score)."""
    return best is None or (value < best if metric == "loss" else value > best)
