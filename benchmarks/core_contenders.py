"""The contenders of `bench_core.py`: `train_model`, Hugging Face `Trainer` in three settings, and a bare PyTorch loop.

Each trains `Workload` from the same starting weights and returns its `Measurement`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from core_workload import (
    Measurement,
    Workload,
    entity_f1,
    fresh_model,
    hugging_face_model,
    our_batches,
    padded_tokens,
    train_windows,
    warmup_steps,
    window_tokens,
)
from transformers import (
    DataCollatorForTokenClassification,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    get_scheduler,
)

from training.core.batching import epoch_batches
from training.core.features import Collator, Window
from training.core.model import load_model
from training.core.precision import native_bf16
from training.core.trainer import train_model

CONTENDERS = ("train_model", "Trainer, best settings", "Trainer", "Trainer, defaults", "bare loop")
# Run only when named: `train_model` with `precision: fp32`, against which its defaults' precision is weighed.
OPTIONAL = ("train_model, fp32",)


def run_train_model(workload: Workload, round_number: int, scratch: Path) -> Measurement:
    params = workload.params
    started = time.perf_counter()
    # A fresh feature cache, so tokenisation is paid here as it is by the other contenders.
    result = train_model(workload.config, workload.dataset, scratch / "run", resume=False, cache_dir=scratch / "cache")
    wall = time.perf_counter() - started
    samples = len(workload.windows) * params.num_epochs
    batches = [our_batches(workload, epoch) for epoch in range(params.num_epochs)]
    model, tokenizer, _ = load_model(result.model_dir)
    return Measurement(
        "train_model",
        round_number,
        params.seed,
        samples,
        window_tokens(workload.windows, params.num_epochs),
        sum(padded_tokens(workload.windows, epoch) for epoch in batches),
        samples / result.metrics.train_samples_per_second,
        wall,
        entity_f1(workload, model, tokenizer),
        notes={"best_epoch": result.metrics.best_epoch, "precision": result.metrics.precision},
    )


class _EpochTimer(TrainerCallback):
    """Seconds between `on_epoch_begin` and `on_epoch_end`: the Trainer's batch loops."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds += time.perf_counter() - self._started


class _CountingCollator(DataCollatorForTokenClassification):
    """`DataCollatorForTokenClassification` that also counts the padded tokens it hands out."""

    tokens: int = 0

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        batch = super().__call__(features, return_tensors)
        self.tokens += batch["input_ids"].numel()
        return batch


class _WindowDataset(torch.utils.data.Dataset):
    """`encode_documents` windows as the feature dicts `DataCollatorForTokenClassification` pads."""

    def __init__(self, windows: Sequence[Window]) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        window = self.windows[index]
        return {"input_ids": list(window.input_ids), "labels": list(window.labels)}


def run_trainer(
    workload: Workload, round_number: int, scratch: Path, *, defaults: bool = False, bf16: bool = False
) -> Measurement:
    """Trainer with length-grouped batches as `train_model` has them, or (`defaults`) with its default sampler;
    `bf16` turns on its bf16 mixed precision."""
    params = workload.params
    started = time.perf_counter()
    model, tokenizer = hugging_face_model(workload)
    windows = train_windows(workload, tokenizer)
    timer, collator = _EpochTimer(), _CountingCollator(tokenizer)
    arguments = TrainingArguments(
        output_dir=str(scratch / "trainer"),
        per_device_train_batch_size=params.batch_size,
        learning_rate=params.learning_rate,
        num_train_epochs=params.num_epochs,
        warmup_steps=warmup_steps(workload),
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm or 0.0,
        lr_scheduler_type="linear",
        optim="adamw_torch_fused",
        seed=params.seed,
        train_sampling_strategy="group_by_length" if params.group_by_length and not defaults else "random",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),  # Trainer refuses bf16 without a GPU unless told it runs on the CPU
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=_WindowDataset(windows),
        data_collator=collator,
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)  # it prints the final log line that `disable_tqdm` routes to stdout
    trainer.train()
    wall = time.perf_counter() - started
    samples, tokens = len(windows) * params.num_epochs, window_tokens(windows, params.num_epochs)
    f1 = entity_f1(workload, model, tokenizer)
    name = "Trainer, defaults" if defaults else "Trainer"
    measured = Measurement(name, round_number, params.seed, samples, tokens, collator.tokens, timer.seconds, wall, f1)
    measured.notes["precision"] = "bf16" if bf16 else "fp32"
    return measured


def run_bare_loop(workload: Workload, round_number: int, scratch: Path) -> Measurement:
    params = workload.params
    started = time.perf_counter()
    model, tokenizer = fresh_model(workload)
    windows = train_windows(workload, tokenizer)
    lengths = [window.length for window in windows]
    collator = Collator(tokenizer.pad_token_id or 0)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        plain = parameter.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
        (no_decay if plain else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=params.learning_rate,
        fused=True,
    )
    total_steps = math.ceil(len(windows) / params.batch_size) * params.num_epochs
    scheduler = get_scheduler(
        "linear", optimizer, num_warmup_steps=warmup_steps(workload), num_training_steps=total_steps
    )
    model.train()
    loop, tokens = 0.0, 0
    for epoch in range(params.num_epochs):
        epoch_started = time.perf_counter()
        batches = epoch_batches(
            lengths, params.batch_size, seed=params.seed, epoch=epoch, group_by_length=params.group_by_length
        )
        for indices in batches:
            batch = collator([windows[index] for index in indices])
            tokens += batch["input_ids"].numel()
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm or math.inf)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        loop += time.perf_counter() - epoch_started
    wall = time.perf_counter() - started
    samples = len(windows) * params.num_epochs
    f1 = entity_f1(workload, model, tokenizer)
    real = window_tokens(windows, params.num_epochs)
    return Measurement("bare loop", round_number, params.seed, samples, real, tokens, loop, wall, f1)


def runners(best_precision: str) -> dict[str, Callable[[Workload, int, Path], Measurement]]:
    """Each contender's run. "Trainer, best settings" is the length-grouped `Trainer` with fused AdamW and, where
    the CPU computes bf16 natively (`best_precision` "auto", the probe `precision: auto` uses) or when told, bf16."""
    bf16 = best_precision == "bf16" or (best_precision == "auto" and native_bf16(torch.device("cpu")))

    def best(workload: Workload, round_number: int, scratch: Path) -> Measurement:
        measured = run_trainer(workload, round_number, scratch, bf16=bf16)
        measured.contender = "Trainer, best settings"
        return measured

    def fp32(workload: Workload, round_number: int, scratch: Path) -> Measurement:
        fp32_workload = replace(workload, config=workload.config.with_values({"training.precision": "fp32"}))
        measured = run_train_model(fp32_workload, round_number, scratch)
        measured.contender = "train_model, fp32"
        return measured

    return {
        "train_model": run_train_model,
        "train_model, fp32": fp32,
        "Trainer, best settings": best,
        "Trainer": run_trainer,
        "Trainer, defaults": lambda workload, round_number, scratch: run_trainer(
            workload, round_number, scratch, defaults=True
        ),
        "bare loop": run_bare_loop,
    }
