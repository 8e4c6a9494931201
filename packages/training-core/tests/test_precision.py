"""`training.precision`: what `auto` resolves to on this machine, bf16 on a CPU, and bad values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from data.documents import Document, iob2_tag_names
from data.loaders import Dataset
from training.common.errors import ConfigError
from training.config import TrainingConfig
from training.core import train_model
from training.core.evaluator import evaluate_model
from training.core.features import Collator, encode_documents
from training.core.precision import native_bf16, resolve_precision
from training.core.predict import Predictor

ENTITY_TYPES = ("PER", "ORG", "LOC")
CPU = torch.device("cpu")
# bf16 keeps 8 significant bits: products of the tiny BERT's logits move by a few hundredths at most.
LOGIT_TOLERANCE = 0.1


def corpus(documents: tuple[Document, ...]) -> Dataset:
    return Dataset({"train": documents[:16], "validation": documents[-4:]}, ENTITY_TYPES)


def test_auto_is_bf16_exactly_where_the_cpu_computes_it_natively() -> None:
    """Native bf16 instructions imply oneDNN's bf16 kernels: a CPU without them (this AVX2 machine) trains in fp32."""
    onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    resolved = resolve_precision("auto", CPU)
    assert resolved == ("bf16" if native_bf16(CPU) else "fp32")
    if not onednn_bf16:
        assert resolved == "fp32"
    assert resolve_precision("auto", torch.device("meta")) == "fp32"


def test_a_run_records_and_logs_the_precision_auto_resolved_to(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    config = tiny_config.with_values({"training.num_epochs": 1})
    assert config.training.precision == "auto"
    result = train_model(config, corpus(ner_documents), tmp_path / "run")
    expected = resolve_precision("auto", CPU)
    assert result.metrics.precision == expected
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["precision"] == expected
    assert (tmp_path / "run" / "train.log").read_text().count(f"optimizer steps in {expected};") == 1


def test_bf16_trains_on_a_cpu(tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path) -> None:
    config = tiny_config.with_values({"training.num_epochs": 1, "training.precision": "bf16"})
    result = train_model(config, corpus(ner_documents), tmp_path / "run")
    assert result.metrics.precision == "bf16" and result.metrics.skipped_steps == 0
    assert torch.isfinite(torch.tensor(result.metrics.history[-1].loss))


def test_bf16_logits_equal_fp32_within_the_tolerance(
    tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    """The same weights and windows, forward in fp32 and under bf16 autocast: the same logits within
    `LOGIT_TOLERANCE` and the same tag wherever fp32's best tag leads by more than twice that."""
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    windows = encode_documents(ner_documents, tokenizer, iob2_tag_names(ENTITY_TYPES), 64, 8).windows
    batch = Collator(tokenizer.pad_token_id)(windows)
    inputs = {name: batch[name] for name in ("input_ids", "attention_mask")}
    real = batch["attention_mask"].bool()
    with torch.inference_mode():
        fp32 = model.eval()(**inputs).logits.float()[real]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(**inputs).logits.float()[real]

    assert float((fp32 - bf16).abs().max()) <= LOGIT_TOLERANCE
    top = fp32.topk(2, dim=1).values
    clear = top[:, 0] - top[:, 1] > 2 * LOGIT_TOLERANCE
    assert clear.sum() > 0
    assert torch.equal(fp32.argmax(dim=1)[clear], bf16.argmax(dim=1)[clear])


def test_prediction_and_evaluation_take_a_precision(
    tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    assert Predictor(model, tokenizer, device="cpu", precision="bf16").autocast_dtype == torch.bfloat16
    assert Predictor(model, tokenizer, device="cpu", precision="fp32").autocast_dtype is None
    assert Predictor(model, tokenizer, device="cpu").autocast_dtype is None  # fp32 by default, on any CPU
    result = evaluate_model(
        model, tokenizer, ner_documents[:4], tag_names=iob2_tag_names(ENTITY_TYPES), precision="bf16"
    )
    assert result.num_documents == 4


def test_a_bad_precision_is_one_config_error(
    tiny_config: TrainingConfig, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    with pytest.raises(ConfigError, match=r"^override: training.precision: .*'fp8'") as caught:
        tiny_config.with_values({"training.precision": "fp8"})
    assert len(str(caught.value).splitlines()) == 1
    with pytest.raises(ConfigError, match=r"^training.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on cpu$"):
        resolve_precision("fp16", CPU)
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    with pytest.raises(ConfigError, match=r"^precision: 'fp8' is not a precision; expected auto, fp32, bf16 or fp16$"):
        evaluate_model(model, tokenizer, ner_documents[:2], tag_names=iob2_tag_names(ENTITY_TYPES), precision="fp8")
