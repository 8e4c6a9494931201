"""Export a trained token classifier to ONNX (dynamic batch and sequence axes), with what prediction needs beside it.

The folder holds `model.onnx` (and `model.int8.onnx` when quantised), the tokenizer and `export.json` (tags, window
settings), so onnxruntime prediction needs neither torch nor the run. Every export is checked against torch before it
is written; an int8 model is scored beside torch and the fp32 ONNX model, so its F1 change is on record.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document
from data.loaders import load_dataset
from data.split_names import chosen_split
from training.common.atomic import atomic_directory, atomic_write_text, check_output_folder, check_writable
from training.common.errors import ExecutionError, InputError
from training.common.optional import require
from training.config.schema import TrainingConfig
from training.core.exported import EXPORT_RECORD, ExportedModel, OnnxPredictor, QuantizationReport, is_exported
from training.core.metrics import compute_metrics
from training.core.model import load_model
from training.core.pipeline import Windowing, predict_documents
from training.core.positions import position_limit
from training.core.run_folder import RunFolder
from training.core.run_inputs import run_inputs

__all__ = ["EXPORT_RECORD", "ExportedModel", "QuantizationReport", "export_onnx"]

OPSET = 17
PARITY_TOLERANCE = 1e-4
# Texts of varied lengths (padding included) that no training split holds, for the parity check.
_HELD_BACK_TEXTS = [
    "Ada Lovelace wrote the first program in London in 1843.",
    "Contact: jo@example.org",
    "Skills include Rust, SQL, distributed systems, statistics and technical writing; based in Lagos, Nigeria.",
    "x",
]


def export_onnx(
    model_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    quantize: bool = False,
    data_path: str | None = None,
    split: str | None = None,
) -> ExportedModel:
    """Write `output_dir` (atomically) from the saved model folder `model_dir` (a run's `model/`); with `quantize`,
    the int8 model is scored on `split` of `data_path` (default: validation; a single file whole), else on the run's
    validation documents."""
    if split is not None and not isinstance(split, str):  # it raised an AttributeError once the model had loaded
        raise InputError(f"split: expected a split name such as 'test', got {split!r}")
    if not quantize and (data_path is not None or split is not None):  # they would be ignored, silently
        raise InputError(
            "data_path (--data-path) and split (--split) choose the data the int8 model is scored on; "
            "add quantize=True (--quantize)"
        )
    if split is not None and data_path is None:  # the run's validation documents would be scored instead
        raise InputError(f"split {split} (--split): names a split of data_path (--data-path); pass data_path too")
    check_output_folder(output_dir, is_exported, "an exported folder", "the export would replace it with all it holds")
    check_writable(Path(output_dir).parent, "a folder to stage the export in")  # swapped in from there (atomic)
    require("onnx", "ONNX export")
    ort = require("onnxruntime", "ONNX export")
    source = Path(model_dir).resolve()
    model, tokenizer, tag_names = load_model(source)
    model = model.to("cpu").eval()
    run = RunFolder.of_model(source)
    config = run.read_config()
    windowing = run.windowing(saved=Windowing.read_from(model.config))
    evaluation = _evaluation_split(source, config, data_path, split) if quantize else None
    with atomic_directory(output_dir) as staging:
        tokenizer.save_pretrained(staging)  # first: encoding sets truncation and padding, which it would save
        trace = _encode(tokenizer, _HELD_BACK_TEXTS, windowing.max_length)
        onnx_path = staging / "model.onnx"
        # The tracer's notes (shape checks taken as constants, the legacy exporter's deprecation, DeBERTa's
        # `torch.tensor` of a size that tracing makes a tensor) are answered by the parity check below, on batches of
        # other shapes than the traced one.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", module=r"torch\.onnx.*")
            traced = "TorchScript-based ONNX export|aten::index|To copy construct from a tensor"
            warnings.filterwarnings("ignore", message=f".*({traced}).*")
            torch.onnx.export(
                model,
                (trace["input_ids"], trace["attention_mask"]),
                str(onnx_path),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "logits")},
                opset_version=OPSET,
                dynamo=False,
            )
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        difference = 0.0
        for part in (_HELD_BACK_TEXTS[:2], _HELD_BACK_TEXTS[-1:]):
            inputs = _encode(tokenizer, part, windowing.max_length)
            with torch.no_grad():
                expected = model(**inputs).logits.numpy()
            got = session.run(["logits"], {name: tensor.numpy() for name, tensor in inputs.items()})[0]
            difference = max(difference, float(np.abs(got - expected).max()))
        if difference > PARITY_TOLERANCE:
            raise ExecutionError(
                f"{source}: the ONNX model's logits differ from torch's by {difference:.2e} "
                f"(over {PARITY_TOLERANCE}); the export was not written"
            )
        quantized = None
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = "model.int8.onnx"
            with _without_preprocessing_advice():
                quantize_dynamic(str(onnx_path), str(staging / quantized), weight_type=QuantType.QInt8)
        lineage = run.lineage
        if lineage.is_file():  # the export is deployed without its run: it carries the run's lineage
            shutil.copyfile(lineage, staging / lineage.name)
        record = ExportedModel(
            quantized_file=quantized,
            tag_names=tag_names,
            max_length=windowing.max_length,
            stride=windowing.stride,
            positions=position_limit(model.config),
            pad_token_id=tokenizer.pad_token_id,
            unk_token_id=tokenizer.unk_token_id,
            backbone=config.model.backbone if config else None,
            source=str(source),
            opset=OPSET,
            parity_max_abs_diff=difference,
        )
        atomic_write_text(staging / EXPORT_RECORD, record.model_dump_json(indent=2))
        if evaluation is not None:
            report = _quantization_report(model, tokenizer, tag_names, windowing, staging, *evaluation)
            record = record.model_copy(update={"quantization": report})
            atomic_write_text(staging / EXPORT_RECORD, record.model_dump_json(indent=2))
    return record


@contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    """Drop onnxruntime's advice to pre-process a model before quantising it (`quant_pre_process`: its shape inference
    fails on BERT graphs, and it made int8 no faster here, docs/benchmarks.md), which it logs on the root logger,
    setting that logger up (a stderr handler for good) when nothing had."""
    root, placeholder = logging.getLogger(), logging.NullHandler()  # with a handler, `logging.warning` sets none up
    root.addHandler(placeholder)
    root.addFilter(_advice)
    try:
        yield
    finally:
        root.removeFilter(_advice)
        root.removeHandler(placeholder)


def _advice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Please consider to run pre-processing before quantization")


def _evaluation_split(
    source: Path, config: TrainingConfig | None, data_path: str | None, split: str | None
) -> tuple[str, str, tuple[Document, ...]]:
    """(data, split, documents) the int8 model is scored on: `split` of `data_path` (read with the run's data
    options), else the run's own validation documents."""
    if data_path is None:
        if config is None:
            raise InputError(
                f"{source}: no run config.yaml beside the model to find its validation data; "
                "pass data_path (--data-path)"
            )
        # A refit on other data recorded before its config dropped the sweep's columns that data does not take
        run, dataset = RunFolder.of_model(source), config.data.load(inherited=True)
        metrics = run.read_metrics()
        # A refit trains on its data's validation split and is evaluated on another one (data without one: its test).
        has_validation = "validation" in dataset or config.data.holdout_fraction is not None
        inputs = run_inputs(config, dataset) if has_validation else None
        if inputs is None or metrics is None:
            evaluated_there = False
        elif metrics.validation_fingerprint is not None:
            evaluated_there = metrics.validation_fingerprint == inputs.validation_fingerprint
        else:  # recorded before runs kept the fingerprint: final runs alone had a lineage.json then
            evaluated_there = not run.lineage.is_file()
        if inputs is None or not evaluated_there:
            raise InputError(
                f"{source}: nothing says its run was evaluated on the validation documents of {config.data.path} "
                "(a final run trains on them); score the int8 model on data it did not see: pass data_path "
                "(--data-path), and split='test' (--split test)"
            )
        return str(config.data.path), "validation", inputs.validation
    # Read as evaluate reads other data with a run's settings: in the format its content shows where it contradicts them
    dataset = config.data.for_data(data_path).load(inherited=True) if config is not None else load_dataset(data_path)
    split = chosen_split(dataset, data_path, split, "validation")
    return data_path, split, tuple(dataset[split])


def _quantization_report(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tag_names: tuple[str, ...],
    windowing: Windowing,
    folder: Path,
    data: str,
    split: str,
    documents: tuple[Document, ...],
) -> QuantizationReport:
    """Entity F1 of torch, the fp32 ONNX model and the int8 one on the same documents, by the one pipeline."""
    gold = [document.tags for document in documents]
    found = predict_documents(model, tokenizer, documents, tag_names, windowing)
    torch_tags = [found.documents[index].tags for index in range(len(documents))]
    f1 = {"torch_f1": compute_metrics(gold, torch_tags)["entity_f1"]}
    for name, quantized in (("onnx_f1", False), ("int8_f1", True)):
        predicted = OnnxPredictor(folder, quantized=quantized).predict_documents(documents)
        f1[name] = compute_metrics(gold, [predicted[index].tags for index in range(len(documents))])["entity_f1"]
    return QuantizationReport(data=data, split=split, documents=len(documents), **f1)


def _encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
