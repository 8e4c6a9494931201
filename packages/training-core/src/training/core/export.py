"""Export a trained token classifier to ONNX (dynamic batch and sequence axes), with what prediction needs beside it.

The folder holds `model.onnx` (and `model.int8.onnx` when quantised), the tokenizer files and `export.json`: the
tag names and window settings the model was trained with, so an onnxruntime predictor needs neither torch nor the
run folder. The exporter is torch's own (`torch.onnx.export`, TorchScript-based, opset 17); every export is
checked against torch on a held-back batch of varied lengths before it is written.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from transformers import PreTrainedTokenizerBase

from training.common.atomic import atomic_directory, atomic_write_text
from training.common.errors import ExecutionError
from training.common.optional import require
from training.config.schema import ModelConfig, TrainingConfig
from training.core.model import load_model

EXPORT_RECORD = "export.json"
OPSET = 17
PARITY_TOLERANCE = 1e-4


class ExportedModel(BaseModel):
    """`export.json`: what an exported folder holds and how its model must be fed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = 1
    onnx_file: str = "model.onnx"
    quantized_file: str | None = None
    tag_names: tuple[str, ...]
    max_length: int
    stride: int
    backbone: str | None = None
    source: str
    opset: int = OPSET
    parity_max_abs_diff: float


def export_onnx(
    model_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, quantize: bool = False
) -> ExportedModel:
    """Write `output_dir` (atomically) from the saved model folder `model_dir` (a run's `model/`)."""
    require("onnx", "ONNX export")
    ort = require("onnxruntime", "ONNX export")
    source = Path(model_dir).resolve()
    model, tokenizer, tag_names = load_model(source)
    model = model.to("cpu").eval()
    run = _run_model_config(source)
    settings = run or ModelConfig(name=source.name, backbone=str(source))  # the defaults of a bare folder
    texts = _held_back_texts()
    trace = _encode(tokenizer, texts, settings.max_length)
    with atomic_directory(output_dir) as staging:
        onnx_path = staging / "model.onnx"
        # The tracer's notes (shape checks taken as constants, the legacy exporter's deprecation) are answered by the
        # parity check below, on batches of other shapes than the traced one.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", module=r"torch\.onnx.*")
            warnings.filterwarnings("ignore", message=".*(TorchScript-based ONNX export|aten::index).*")
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
        for part in (texts[:2], texts[-1:]):
            inputs = _encode(tokenizer, part, settings.max_length)
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
            quantize_dynamic(str(onnx_path), str(staging / quantized), weight_type=QuantType.QInt8)
        tokenizer.save_pretrained(staging)
        record = ExportedModel(
            quantized_file=quantized,
            tag_names=tag_names,
            max_length=settings.max_length,
            stride=settings.stride,
            backbone=run.backbone if run else None,
            source=str(source),
            parity_max_abs_diff=difference,
        )
        atomic_write_text(staging / EXPORT_RECORD, record.model_dump_json(indent=2))
    return record


def _run_model_config(model_dir: Path) -> ModelConfig | None:
    """The model settings of the run that saved `model_dir` (its `config.yaml`), if it is in a run folder."""
    run_config = model_dir.parent / "config.yaml"
    if not run_config.is_file():
        return None
    return TrainingConfig.from_yaml(run_config.read_text(encoding="utf-8"), str(run_config)).model


def _encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def _held_back_texts() -> list[str]:
    """Texts of varied lengths (padding included) that no training split holds, for the parity check."""
    return [
        "Ada Lovelace wrote the first program in London in 1843.",
        "Contact: jo@example.org",
        "Skills include Rust, SQL, distributed systems, statistics and technical writing; based in Lagos, Nigeria.",
        "x",
    ]
