"""An exported folder (`training export`): its record, `export.json`, and the onnxruntime predictor that runs it.

Free of torch and transformers: texts are encoded with the `tokenizers` library from the folder's `tokenizer.json`
(saved with its settings), then windowed, merged and decoded by the same functions as the torch `Predictor`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from data.documents import Document
from training.common.errors import ConfigError, InputError
from training.common.optional import require
from training.config.schema import Int, MaxLength
from training.config.validation import read_record
from training.core.decoding import DocumentPrediction, Entity, document_predictions
from training.core.windowing import (
    EncodedSplit,
    Windowing,
    WordTokens,
    batched_readings,
    checked_tag_names,
    merge_word_predictions,
    special_tokens,
    text_documents,
    whole_number,
    window_documents,
)

EXPORT_RECORD = "export.json"
TokenId = Annotated[Int, Field(ge=0)]
# What onnxruntime raises for a model file it cannot load (missing, truncated, not ONNX); they derive from Exception.
_ONNX_LOAD_ERRORS = ("Fail", "InvalidProtobuf", "InvalidGraph", "NoSuchFile", "InvalidArgument")


class QuantizationReport(BaseModel):
    """Entity F1 (strict IOB2, word level) on an evaluation split: torch, the fp32 ONNX model and the int8 one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str
    split: str
    documents: int
    torch_f1: float
    onnx_f1: float
    int8_f1: float

    @property
    def f1_change(self) -> float:
        """What int8 quantisation changed: int8 F1 minus fp32 ONNX F1."""
        return self.int8_f1 - self.onnx_f1


class ExportedModel(BaseModel):
    """`export.json`: what an exported folder holds and how its model must be fed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = 1
    onnx_file: str = "model.onnx"
    quantized_file: str | None = None
    tag_names: tuple[str, ...]
    max_length: MaxLength
    stride: Int = Field(ge=0)
    positions: Int | None = Field(default=None, description="the most tokens the model's positions hold in a window")
    pad_token_id: TokenId
    unk_token_id: TokenId | None
    backbone: str | None = None
    source: str
    opset: int
    parity_max_abs_diff: float
    quantization: QuantizationReport | None = None

    @model_validator(mode="after")
    def _windows_fit(self) -> ExportedModel:
        """An edited record's windows, which onnxruntime would fail on mid-request (or windowing never end)."""
        if self.positions is not None and self.max_length > self.positions:
            raise ValueError(f"max_length {self.max_length} is above the model's position limit of {self.positions}")
        if self.stride * 2 >= self.max_length:
            raise ValueError(f"stride {self.stride} must be below half of max_length ({self.max_length})")
        return self


def is_exported(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` is an exported folder (it holds `export.json`)."""
    return (Path(folder) / EXPORT_RECORD).is_file()


def read_export(folder: str | os.PathLike[str]) -> ExportedModel:
    """The record of an exported folder; a `ConfigError` naming the file when it is missing or invalid."""
    try:
        return read_record(ExportedModel, Path(folder) / EXPORT_RECORD, "export record")
    except ConfigError as error:
        raise ConfigError(f"{error} (re-export the model with `training export`)") from None


def model_file(folder: str | os.PathLike[str], *, quantized: bool = False) -> Path:
    """The ONNX model of an exported folder to run: the fp32 one, or the int8 one of an export made with --quantize."""
    record = read_export(folder)
    name = record.quantized_file if quantized else record.onnx_file
    if name is None:
        raise InputError(f"{folder}: exported without quantize (--quantize), so it holds no int8 model")
    path = Path(folder) / name
    if not path.is_file():
        raise ConfigError(f"{path}: no such file, though {EXPORT_RECORD} names it (re-export the model)")
    return path


def word_tokenizer(folder: str | os.PathLike[str]) -> Any:
    """The folder's `tokenizer.json` set up as transformers calls it for split words: no truncation or padding."""
    tokenizers = require("tokenizers", "prediction with an exported model")
    path = Path(folder) / "tokenizer.json"
    try:
        tokenizer = tokenizers.Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for a missing or unreadable file alike
        raise ConfigError(f"{path}: not a readable tokenizer ({error}) (re-export the model)") from error
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tokenizer.encode_special_tokens = False
    return tokenizer


def encode_words(
    tokenizer: Any,
    documents: Sequence[Document],
    tag_names: Sequence[str],
    windowing: Windowing,
    unk_token_id: int | None,
) -> EncodedSplit:
    """`features.encode_documents` with a `tokenizers.Tokenizer` (`word_tokenizer`) instead of transformers'."""
    words = [[word.text for word in document.words] for document in documents]
    encodings = tokenizer.encode_batch(words, is_pretokenized=True, add_special_tokens=False)
    probe = tokenizer.encode(["a"], is_pretokenized=True, add_special_tokens=True)
    ids, words = [encoding.ids for encoding in encodings], [encoding.word_ids for encoding in encodings]
    tokens = WordTokens(ids, words, *special_tokens(probe.ids, probe.word_ids), unk_token_id)
    return window_documents(documents, tokens, tag_names, windowing.max_length, windowing.stride)


class OnnxPredictor:
    """An exported model under onnxruntime (CPU), ready to tag texts; `quantized` runs the int8 model of a
    `--quantize` export (a window at a time: `batch_size` applies to fp32); `threads` sets onnxruntime's intra-op
    threads (default: its own, one per physical core). Load once, call often."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        quantized: bool = False,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        ort = require("onnxruntime", "prediction with an exported model")
        options = ort.SessionOptions()
        # Idle intra-op threads sleep instead of spinning: in a server they share the cores with the event loop,
        # the tokenizer and other processes, and spinning threads starve those (measured: 3x slower under load).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = whole_number(threads, "threads", least=1)
        self.folder = Path(folder)
        self.record = read_export(self.folder)
        self.tag_names = self.record.tag_names
        self.windowing = Windowing(self.record.max_length, self.record.stride)
        self.batch_size = whole_number(batch_size, "batch_size", least=1)  # not at the first call
        self.quantized = quantized
        self.precision = "int8" if quantized else "fp32"  # what it computes in, as `Predictor.precision` says it
        chosen = model_file(self.folder, quantized=quantized)
        try:
            self.session = ort.InferenceSession(str(chosen), options, providers=["CPUExecutionProvider"])
        except tuple(getattr(ort.capi.onnxruntime_pybind11_state, name) for name in _ONNX_LOAD_ERRORS) as error:
            raise ConfigError(
                f"{chosen}: not a readable ONNX model ({error}) (re-export the model, or upgrade onnxruntime if it is "
                "older than the one that exported it)"
            ) from error
        # The model's logits come as tags by position: names of another export decoded them as other tags, or failed.
        checked_tag_names(self.tag_names, f"{self.folder / EXPORT_RECORD}: tag_names")
        tags, named = self.session.get_outputs()[0].shape[-1], len(self.tag_names)
        if isinstance(tags, int) and tags != named:  # a size left symbolic (a name) tells nothing
            raise ConfigError(
                f"{chosen}: gives {tags} tags where {EXPORT_RECORD} names {named}; expected as many (re-export it)"
            )
        self.tokenizer = word_tokenizer(self.folder)
        self._check_token_ids()

    def predict_documents(self, documents: Sequence[Document]) -> dict[int, DocumentPrediction]:
        """Tags, scores and entities of each document's words, by document index (the torch pipeline's steps)."""
        encoded = encode_words(self.tokenizer, documents, self.tag_names, self.windowing, self.record.unk_token_id)
        # int8 activations are scaled per call (over the whole tensor): batched with other windows and their padding,
        # a text's entities would depend on the texts beside it; each window runs alone.
        batch_size = 1 if self.quantized else self.batch_size
        readings = batched_readings(encoded.windows, self._forward, batch_size, self.record.pad_token_id)
        merged = merge_word_predictions(documents, encoded.windows, readings)
        return document_predictions(documents, merged, self.tag_names, range(len(documents)))

    def __call__(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text, in text order, as `Predictor` returns them."""
        return [list(found.entities) for found in self.predict_documents(text_documents(texts)).values()]

    def _check_token_ids(self) -> None:
        """An edited record's padding or unknown-word id past the tokenizer's vocabulary, which onnxruntime's
        embedding lookup refused mid-request."""
        size = self.tokenizer.get_vocab_size()
        for name in ("pad_token_id", "unk_token_id"):
            token = getattr(self.record, name)
            if token is not None and token >= size:
                raise ConfigError(
                    f"{self.folder / EXPORT_RECORD}: {name} {token} is not a token of tokenizer.json (ids 0 to "
                    f"{size - 1}); re-export the model"
                )

    def _forward(self, batch: dict[str, Any]) -> np.ndarray:
        feed = {name: batch[name] for name in ("input_ids", "attention_mask")}
        return self.session.run(["logits"], feed)[0]
