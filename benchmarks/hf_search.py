"""Hugging Face's side of both `bench_hpo.py` comparisons: its features, metric, arguments and timing, and the search +
refit contender of `--refit` (see `hpo_contenders.py`). It imports torch and transformers, so `bench_hpo.py` imports it
only in Hugging Face's process (`bench_batch_order.py`, which trains both sides in one process, at its start).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from hpo_contenders import search_settings, since_process_start, split_f1, timed
from transformers import (
    DataCollatorForTokenClassification,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from data.documents import iob2_tag_names
from data.generate import ENTITY_TYPES
from data.loaders import Dataset
from training.config.schema import TrainingConfig
from training.core.features import encode_documents
from training.core.metrics import compute_metrics
from training.core.model import create_model_and_tokenizer


class Windows(torch.utils.data.Dataset):
    """The documents' windows (as `train_model` encodes them) as the feature dicts the HF collator pads."""

    def __init__(self, documents: Any, tokenizer: Any, config: TrainingConfig) -> None:
        model, tags = config.model, iob2_tag_names(ENTITY_TYPES)
        self.windows = encode_documents(documents, tokenizer, tags, model.max_length, model.stride).windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        window = self.windows[index]
        ids, labels = list(window.input_ids), list(window.labels)
        return {"input_ids": ids, "attention_mask": [1] * window.length, "labels": labels}


def entity_f1(prediction: Any) -> dict[str, float]:
    """`compute_metrics` on the labelled sub-tokens of HF's evaluation predictions."""
    tag_names = iob2_tag_names(ENTITY_TYPES)
    predicted, gold = np.argmax(prediction.predictions, axis=-1), prediction.label_ids
    keep = gold != -100
    golds = [[tag_names[t] for t in row[mask]] for row, mask in zip(gold, keep, strict=True)]
    guesses = [[tag_names[t] for t in row[mask]] for row, mask in zip(predicted, keep, strict=True)]
    return {"entity_f1": compute_metrics(golds, guesses)["entity_f1"]}


def arguments(config: TrainingConfig, folder: Path, **overrides: Any) -> TrainingArguments:
    """`TrainingArguments` with our config's epochs, decay, clipping and seed, evaluating each epoch, saving none."""
    settings = {
        "output_dir": str(folder),
        "num_train_epochs": config.training.num_epochs,
        "per_device_eval_batch_size": 32,
        "weight_decay": config.training.weight_decay,
        "max_grad_norm": config.training.max_grad_norm,
        "lr_scheduler_type": "linear",
        "eval_strategy": "epoch",
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "seed": config.training.seed,
        "use_cpu": True,
    }
    return TrainingArguments(**{**settings, **overrides})


class Timing(TrainerCallback):
    """Training time per trial (from `model_init`) and the process's peak RSS after it."""

    def __init__(self) -> None:
        self.model_init_at: float = 0.0
        self.creations: list[float] = []  # seconds of each model creation; the first is `Trainer.__init__`'s
        self.training: list[float] = []
        self.rss_mb: list[float] = []

    def model_init(self, config: TrainingConfig) -> Callable[[Any], Any]:
        """A `model_init` that marks each trial's start and adds up the seconds model creation takes."""

        def create(trial: Any = None) -> Any:
            self.model_init_at = time.perf_counter()
            model = create_model_and_tokenizer(config)[0]
            self.creations.append(time.perf_counter() - self.model_init_at)
            return model

        return create

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.training.append(time.perf_counter() - self.model_init_at)
        self.rss_mb.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class TimedTrainer(Trainer):
    """A `Trainer` that adds up the seconds its evaluations take."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remove_callback(PrinterCallback)
        self.evaluation_seconds = 0.0

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        started = time.perf_counter()
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.evaluation_seconds += time.perf_counter() - started


def huggingface(config: TrainingConfig, dataset: Dataset, args: Any, folder: Path) -> dict[str, Any]:
    search: dict[str, float] = {}
    refit: dict[str, float] = {}
    _, tokenizer = create_model_and_tokenizer(config)
    startup = since_process_start()
    started = time.perf_counter()
    timing = Timing()
    with timed(search, "setup (features, model)"):
        train, validation = (Windows(dataset[name], tokenizer, config) for name in ("train", "validation"))
    trainer = TimedTrainer(
        model_init=timing.model_init(config),
        args=arguments(config, folder / "hf-search"),
        train_dataset=train,
        eval_dataset=validation,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=entity_f1,
        callbacks=[timing],
    )
    storage = f"sqlite:///{folder / 'hf.db'}"
    chosen = trainer.hyperparameter_search(n_trials=args.trials, storage=storage, **search_settings(args.model))
    search_wall = time.perf_counter() - started
    search["setup (features, model)"] += sum(timing.creations)
    search["evaluation + saving"] = trainer.evaluation_seconds
    search["training"] = sum(timing.training) - sum(timing.creations[1:]) - trainer.evaluation_seconds
    study = optuna.load_study(study_name="hf", storage=storage)

    started, timing = time.perf_counter(), Timing()
    with timed(refit, "setup (features, model)"):
        merged = Windows([*dataset["train"], *dataset["validation"]], tokenizer, config)
    learning_rate, batch_size = chosen.hyperparameters["learning_rate"], chosen.hyperparameters["batch_size"]
    overrides = {"learning_rate": learning_rate, "per_device_train_batch_size": batch_size, "eval_strategy": "no"}
    refitter = TimedTrainer(
        model_init=timing.model_init(config),
        args=arguments(config, folder / "hf-final", **overrides),
        train_dataset=merged,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    with timed(refit, "training"):
        refitter.train()
    with timed(refit, "evaluation + saving"):
        refitter.save_model(str(folder / "hf-final" / "model"))
        tokenizer.save_pretrained(str(folder / "hf-final" / "model"))
    refit_wall = time.perf_counter() - started
    refit["training"] -= sum(timing.creations[1:])  # `train` creates the model again; `__init__` did it before
    refit["setup (features, model)"] += sum(timing.creations)
    return {
        "startup": startup,
        "walls": [search_wall, refit_wall],
        "phases": [search, refit],
        "best": chosen.objective,
        "best_any_epoch": max(max(t.intermediate_values.values(), default=0.0) for t in study.trials),
        "params": [learning_rate, batch_size],
        "refit_epochs": config.training.num_epochs,
        "pruned": sum(trial.state == optuna.trial.TrialState.PRUNED for trial in study.trials),
        "test_f1": split_f1(folder / "hf-final" / "model", dataset, config),
    }
