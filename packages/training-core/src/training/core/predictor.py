"""Prediction: raw texts to entity spans with character offsets, using a saved or loaded model."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from training.common.errors import expect_instance
from training.core.model import load_model, model_tag_names
from training.core.pipeline import Entity, Windowing, predict_documents
from training.core.precision import AUTOCAST_DTYPES, inference_precision, resolve_device
from training.core.run_folder import RunFolder
from training.core.windowing import text_documents, whole_number

__all__ = ["Entity", "Predictor", "predict"]


class Predictor:
    """A model and tokenizer ready to tag texts on `device` (in eval mode); load once, call often. Window settings
    default to those the model records (`ner_windowing`), else `ModelConfig`'s; `precision` resolves as
    `training.precision` (default fp32; `from_folder`: the run's)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int | None = None,
        stride: int | None = None,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        precision: str = "fp32",
    ) -> None:
        expect_instance(model, torch.nn.Module, "model", "a PreTrainedModel (a saved folder: Predictor.from_folder)")
        # None or a folder's path failed at the first call, as "'NoneType' object is not callable"
        expect_instance(tokenizer, PreTrainedTokenizerBase, "tokenizer", "the model's PreTrainedTokenizerBase")
        self.device = resolve_device(device)
        self.precision = inference_precision(precision, self.device)
        self.autocast_dtype = AUTOCAST_DTYPES[self.precision]
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tag_names = model_tag_names(model.config)
        own = Windowing.read_from(model.config)  # what it was trained with, where it says
        self.windowing = Windowing.of(own, max_length=max_length, stride=stride)
        self.batch_size = whole_number(batch_size, "batch_size", least=1)  # not at the first call

    @property
    def max_length(self) -> int:
        return self.windowing.max_length

    @property
    def stride(self) -> int:
        return self.windowing.stride

    @classmethod
    def from_folder(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        max_length: int | None = None,
        stride: int | None = None,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        precision: str | None = None,
    ) -> Predictor:
        """Load a model folder; window settings not given come from the run's `config.yaml` beside it, if any, and
        the precision from its `metrics.json`: the one its evaluations ran in, where `device` computes it natively."""
        whole_number(batch_size, "batch_size", least=1)  # before the model loads, as a precision given
        target = resolve_device(device)
        given = inference_precision(precision, target) if precision is not None else None
        model, tokenizer, _ = load_model(model_dir)
        run = RunFolder.of_model(model_dir)
        windowing = run.windowing(max_length=max_length, stride=stride, saved=Windowing.read_from(model.config))
        precision = given or inference_precision(None, target, run.recorded_precision())
        options = {"batch_size": batch_size, "device": device, "precision": precision}
        return cls(model, tokenizer, max_length=windowing.max_length, stride=windowing.stride, **options)

    def __call__(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text, in text order; a score is the mean probability of the entity's word tags."""
        found = predict_documents(
            self.model,
            self.tokenizer,
            text_documents(texts),
            self.tag_names,
            self.windowing,
            batch_size=self.batch_size,
            device=self.device,
            autocast_dtype=self.autocast_dtype,
        )
        return [list(prediction.entities) for prediction in found.documents.values()]


def predict(
    model_dir: str | os.PathLike[str],
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    max_length: int | None = None,
    stride: int | None = None,
    precision: str | None = None,
) -> list[list[Entity]]:
    """Entities of each text found by the model saved in `model_dir` (a run's `model/` folder), in `precision`
    (default: the one the run evaluated in, where `device` computes it natively, else fp32)."""
    predictor = Predictor.from_folder(
        model_dir, max_length=max_length, stride=stride, batch_size=batch_size, device=device, precision=precision
    )
    return predictor(texts)
