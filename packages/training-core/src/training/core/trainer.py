"""`train_model`: fine-tune a token-classification model, evaluate it each epoch and write its run folder."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import get_scheduler

from data.documents import Document, document_items, iob2_tag_names
from data.loaders import Dataset
from data.splits import hold_out
from training.common.errors import ConfigError, DataError, InputError
from training.common.fingerprint import fingerprint_items
from training.config.schema import TrainingConfig
from training.core.batching import epoch_batches
from training.core.callbacks import Callback, TrainerState
from training.core.checkpoint import load_checkpoint, rng_state, save_checkpoint
from training.core.features import Collator, EncodedSplit, encode_cached, merge_word_predictions, window_logits
from training.core.metrics import compute_metrics
from training.core.model import create_model_and_tokenizer, save_model
from training.core.run_context import RunContext
from training.core.run_folder import RunFolder

logger = logging.getLogger("training.core")
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass(frozen=True)
class TrainResult(Mapping[str, Any]):
    """What a run achieved; reads like its best metrics (`result["entity_f1"]`)."""

    output_dir: Path
    best_metrics: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    best_epoch: int | None
    best_step: int
    stopped_early: bool
    tag_names: tuple[str, ...]
    config_fingerprint: str
    dataset_fingerprint: str
    train_samples_per_second: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return RunFolder(self.output_dir).model

    def __getitem__(self, key: str) -> Any:
        return self.best_metrics[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.best_metrics)

    def __len__(self) -> int:
        return len(self.best_metrics)

    def to_record(self) -> dict[str, Any]:
        """The JSON record written to `metrics.json`."""
        return {
            "status": "completed",
            "best": self.best_metrics,
            "history": list(self.history),
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "stopped_early": self.stopped_early,
            "tag_names": list(self.tag_names),
            "config_fingerprint": self.config_fingerprint,
            "dataset_fingerprint": self.dataset_fingerprint,
            "train_samples_per_second": self.train_samples_per_second,
            **self.extra,
        }

    @classmethod
    def from_record(cls, output_dir: Path, record: Mapping[str, Any]) -> TrainResult:
        known = {
            "status",
            "format",
            "best",
            "history",
            "best_epoch",
            "best_step",
            "stopped_early",
            "tag_names",
            "config_fingerprint",
            "dataset_fingerprint",
            "train_samples_per_second",
        }
        return cls(
            output_dir=output_dir,
            best_metrics=dict(record["best"]),
            history=tuple(record["history"]),
            best_epoch=record["best_epoch"],
            best_step=record["best_step"],
            stopped_early=record["stopped_early"],
            tag_names=tuple(record["tag_names"]),
            config_fingerprint=record["config_fingerprint"],
            dataset_fingerprint=record["dataset_fingerprint"],
            train_samples_per_second=record.get("train_samples_per_second", 0.0),
            extra={key: value for key, value in record.items() if key not in known},
        )


def default_cache_dir() -> Path:
    """Where tokenised features are cached between runs and trials (`$XDG_CACHE_HOME/training/features`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "training" / "features"


def train_model(
    config: TrainingConfig,
    dataset: Dataset,
    output_dir: str | os.PathLike[str],
    *,
    callbacks: Sequence[Callback] = (),
    context: RunContext | None = None,
    resume: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train on `dataset["train"]`, evaluate on its validation split, keep the best model in `output_dir/model`.

    With `resume` (the default) an interrupted run in `output_dir` continues from its last checkpoint, and
    a finished run of the same config and data is returned as it is. Launched by torchrun, every rank trains
    on its shard and evaluation covers the whole validation split; only rank 0 writes.
    """
    ctx = context or _context_from_environment()
    run = RunFolder(Path(output_dir))
    labels = _labels(config, dataset)
    tag_names = iob2_tag_names(labels)
    train_docs, validation_docs, overlap = _training_splits(config, dataset)
    previous = _previous_run(run, config, dataset, resume)
    if previous is not None:
        return previous
    handler = run.attach_log(logger) if ctx.is_main else None
    try:
        for line in dataset.report.lines() if handler is not None else ():
            logger.info("data: %s", line)
        return _Trainer(
            config,
            dataset,
            run,
            ctx,
            tag_names,
            train_docs,
            validation_docs,
            overlap,
            list(callbacks),
            Path(cache_dir) if cache_dir else default_cache_dir(),
            resume,
        ).fit()
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()


def _context_from_environment() -> RunContext:
    """One process, or (under torchrun) a DDP rank via training-execution: the one upward import, kept lazy."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return RunContext(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        from training.execution.context import create_run_context
    except ModuleNotFoundError as error:
        raise ImportError(
            "distributed training (WORLD_SIZE > 1) needs training-execution: pip install training-execution"
        ) from error
    return create_run_context()


def _labels(config: TrainingConfig, dataset: Dataset) -> tuple[str, ...]:
    if config.data.labels is None:
        return dataset.labels
    unknown = sorted(set(dataset.labels) - set(config.data.labels))
    if unknown:
        raise DataError(f"the dataset has labels {unknown} that data.labels {list(config.data.labels)} does not list")
    return tuple(config.data.labels)


def _training_splits(
    config: TrainingConfig, dataset: Dataset
) -> tuple[tuple[Document, ...], tuple[Document, ...], int]:
    """Train and validation documents, and how many validation texts also occur in train."""
    if "train" not in dataset:
        raise DataError(f"the dataset has no 'train' split (it has {list(dataset)})")
    if "validation" not in dataset:
        if config.data.holdout_fraction is None:
            raise ConfigError(
                "data.holdout_fraction: the dataset has no validation split; set a fraction of train to hold out "
                "(e.g. 0.1) or provide a validation file"
            )
        dataset = hold_out(
            dataset,
            config.data.holdout_fraction,
            seed=config.training.seed,
            stratify=config.data.stratify,
            group_by=config.data.group_by,
        )
    train_texts = {doc.text for doc in dataset["train"]}
    overlap = sum(doc.text in train_texts for doc in dataset["validation"])
    return dataset["train"], dataset["validation"], overlap


def _previous_run(run: RunFolder, config: TrainingConfig, dataset: Dataset, resume: bool) -> TrainResult | None:
    """A finished identical run to reuse; an error if the folder holds another run and `resume` is on."""
    record = run.read_metrics()
    if record is None:
        return None
    same = (record.get("config_fingerprint"), record.get("dataset_fingerprint")) == (
        config.fingerprint,
        dataset.fingerprint,
    )
    if not resume:
        return None
    if not same:
        config_fp, data_fp = str(record.get("config_fingerprint"))[:12], str(record.get("dataset_fingerprint"))[:12]
        raise InputError(
            f"{run.root}: holds a run of another config or dataset (config {config_fp}, data {data_fp}); "
            "choose another output folder, or start it over (resume=False; training train --restart)"
        )
    return TrainResult.from_record(run.root, record) if record.get("status") == "completed" else None


class _Trainer:
    """One training run; state lives here so `fit` reads as the loop it is."""

    def __init__(
        self,
        config: TrainingConfig,
        dataset: Dataset,
        run: RunFolder,
        ctx: RunContext,
        tag_names: tuple[str, ...],
        train_docs: tuple[Document, ...],
        validation_docs: tuple[Document, ...],
        overlap: int,
        callbacks: list[Callback],
        cache_dir: Path,
        resume: bool,
    ) -> None:
        self.config, self.params, self.run, self.ctx = config, config.training, run, ctx
        self.dataset, self.tag_names, self.callbacks, self.resume = dataset, tag_names, callbacks, resume
        self.train_docs, self.validation_docs, self.overlap = train_docs, validation_docs, overlap
        self.cache_dir = cache_dir
        self.state = TrainerState(num_epochs=self.params.num_epochs)
        self.patience = 0
        self.best_metrics: dict[str, Any] = {}
        self.best_step = 0
        self.stopped_early = False
        self.evaluated_step = -1

    # -- set-up -------------------------------------------------------------------------------------------------
    def _encode(self, documents: tuple[Document, ...], name: str) -> EncodedSplit:
        key = fingerprint_items([name, *document_items(documents)])
        return encode_cached(
            documents,
            self.tokenizer,
            self.tag_names,
            self.config.model.max_length,
            self.config.model.stride,
            self.cache_dir,
            key,
        )

    def _setup(self) -> None:
        params, ctx = self.params, self.ctx
        torch.manual_seed(params.seed)
        self.model, self.tokenizer = create_model_and_tokenizer(self.config, labels=self._entity_types())
        self.model.to(ctx.device)
        self.train_split = self._encode(self.train_docs, "train")
        self.validation_split = self._encode(self.validation_docs, "validation")
        if self.train_split.truncated_words or self.validation_split.truncated_words:
            logger.warning(
                "%d training and %d validation words fall outside every window",
                self.train_split.truncated_words,
                self.validation_split.truncated_words,
            )
        self.collator = Collator(
            self.tokenizer.pad_token_id or 0, pad_to_multiple_of=8 if ctx.device.type == "cuda" else None
        )
        self.lengths = [window.length for window in self.train_split.windows]
        batches = len(self._batches(0))
        self.updates_per_epoch = math.ceil(batches / params.gradient_accumulation_steps)
        self.state.steps_per_epoch = self.updates_per_epoch
        self.state.total_steps = self.updates_per_epoch * params.num_epochs
        self.autocast_dtype, self.scaler = self._precision()
        self.optimizer = self._optimizer()
        self.scheduler = get_scheduler(
            SCHEDULES[params.scheduler],
            self.optimizer,
            num_warmup_steps=int(params.warmup_ratio * self.state.total_steps),
            num_training_steps=self.state.total_steps,
        )
        self.train_module: torch.nn.Module = self.model
        if ctx.is_distributed:
            self.train_module = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
        if params.compile:
            self.train_module = torch.compile(self.train_module)

    def _entity_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(tag[2:] for tag in self.tag_names if tag != "O"))

    def _batches(self, epoch: int) -> list[list[int]]:
        return epoch_batches(
            self.lengths,
            self.params.batch_size,
            seed=self.params.seed,
            epoch=epoch,
            group_by_length=self.params.group_by_length,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
        )

    def _precision(self) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
        choice, cuda = self.params.precision, self.ctx.device.type == "cuda"
        if choice == "auto":
            choice = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        if choice == "fp16" and not cuda:
            raise ConfigError("training.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on CPU")
        if choice == "fp16":
            return torch.float16, torch.amp.GradScaler("cuda")
        return (torch.bfloat16 if choice == "bf16" else None), None

    def _optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            if parameter.requires_grad:
                plain = parameter.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
                (no_decay if plain else decay).append(parameter)
        groups = [
            {"params": decay, "weight_decay": self.params.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        try:
            return torch.optim.AdamW(groups, lr=self.params.learning_rate, fused=True)
        except (RuntimeError, TypeError):  # fused kernels missing for this device or dtype
            return torch.optim.AdamW(groups, lr=self.params.learning_rate)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.autocast_dtype)

    # -- the loop -------------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        if self.ctx.is_main:
            for leftover in self.run.remove_leftovers():
                logger.warning("removed %s, left behind by an interrupted write", leftover)
        self._setup()
        start_epoch, skip = self._restore()
        if self.ctx.is_main:
            self.run.write_config(self.config.to_yaml())
            self._write_progress("running")
            logger.info(
                "training %d windows (%d documents) for %d epochs, %d optimizer steps; validation: %d documents",
                len(self.train_split.windows),
                len(self.train_docs),
                self.params.num_epochs,
                self.state.total_steps,
                len(self.validation_docs),
            )
            if self.overlap:
                logger.warning("%d validation documents also occur in train", self.overlap)
        for callback in self.callbacks:
            callback.on_train_begin(self.state)
        samples, train_seconds = 0, 0.0
        for epoch in range(start_epoch, self.params.num_epochs):
            if self.state.should_stop:
                break
            self.state.epoch = epoch
            started = time.perf_counter()
            samples += self._train_epoch(epoch, skip if epoch == start_epoch else 0)
            train_seconds += time.perf_counter() - started
            if self.state.should_stop:
                break
            last_epoch = epoch == self.params.num_epochs - 1
            if self.params.eval_steps is None or (last_epoch and self.state.global_step != self.evaluated_step):
                self._evaluate_and_checkpoint(epoch + 1, 0)
            if self.state.should_stop:
                break
        throughput = samples / train_seconds if train_seconds else 0.0
        result = self._finish(throughput)
        for callback in self.callbacks:
            callback.on_train_end(self.state)
        return result

    def _train_epoch(self, epoch: int, skip_batches: int) -> int:
        """Run one epoch (from batch `skip_batches` when resuming); returns the examples seen by this rank."""
        self.train_module.train()
        batches = self._batches(epoch)
        accumulation = self.params.gradient_accumulation_steps
        windows = self.train_split.windows
        seen = 0
        for index in range(skip_batches, len(batches)):
            batch = {
                key: value.to(self.ctx.device, non_blocking=True)
                for key, value in self.collator([windows[i] for i in batches[index]]).items()
            }
            boundary = (index + 1) % accumulation == 0 or index == len(batches) - 1
            sync = contextlib.nullcontext() if boundary or not self.ctx.is_distributed else self.train_module.no_sync()
            with sync:
                with self._autocast():
                    loss = self.train_module(**batch).loss
                scaled = loss / accumulation
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            seen += len(batches[index])
            if not boundary:
                continue
            self._step()
            self.state.global_step += 1
            self.state.loss = float(loss.detach())
            for callback in self.callbacks:
                callback.on_step_end(self.state)
            if self.params.eval_steps and self.state.global_step % self.params.eval_steps == 0:
                done = index + 1 == len(batches)
                self._evaluate_and_checkpoint(epoch + 1 if done else epoch, 0 if done else index + 1)
                self.train_module.train()
            if self.state.should_stop:
                break
        return seen

    def _step(self) -> None:
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.params.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    # -- evaluation, best model, checkpoints -----------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Metrics on the whole validation split: each rank predicts its share of documents, then all gather."""
        ctx, docs = self.ctx, self.validation_docs
        mine = {index for index in range(len(docs)) if index % ctx.world_size == ctx.rank}
        windows = [window for window in self.validation_split.windows if window.doc_index in mine]
        logits = window_logits(
            self.model, windows, self.collator, self.params.eval_batch_size, ctx.device, self.autocast_dtype
        )
        loss_sum, labelled = 0.0, 0
        for window, window_logit in zip(windows, logits, strict=True):
            labels = np.asarray(window.labels)
            mask = labels != -100
            shifted = window_logit[mask] - window_logit[mask].max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss_sum -= float(log_probs[np.arange(mask.sum()), labels[mask]].sum())
            labelled += int(mask.sum())
        merged = merge_word_predictions(docs, windows, logits)
        mine_tags = {index: [self.tag_names[t] for t in merged[index][0]] for index in mine}
        predictions: dict[int, list[str]] = {}
        for part in ctx.all_gather_object(mine_tags):
            predictions.update(part)
        loss_sum, labelled_total = ctx.all_reduce_sum([loss_sum, float(labelled)])
        metrics = compute_metrics([list(doc.tags) for doc in docs], [predictions[i] for i in range(len(docs))])
        metrics["loss"] = loss_sum / labelled_total if labelled_total else 0.0
        return metrics

    def _evaluate_and_checkpoint(self, next_epoch: int, next_batch: int) -> None:
        metrics = self.evaluate()
        self.evaluated_step = self.state.global_step
        entry = {
            "epoch": self.state.epoch + 1,
            "step": self.state.global_step,
            **{key: value for key, value in metrics.items() if key != "per_entity"},
        }
        self.state.history.append(entry)
        name = self.params.metric_for_best
        value = float(metrics[name])
        improved = (
            self.params.keep == "last"
            or self.state.best_metric is None
            or (value < self.state.best_metric if name == "loss" else value > self.state.best_metric)
        )
        if improved:
            self.state.best_metric, self.state.best_epoch = value, self.state.epoch + 1
            self.best_metrics, self.best_step, self.patience = metrics, self.state.global_step, 0
            if self.ctx.is_main:
                save_model(self.model, self.tokenizer, self.run.model)
        else:
            self.patience += 1
        logger.info(
            "epoch %d step %d: %s=%.4f (best %.4f)",
            self.state.epoch + 1,
            self.state.global_step,
            name,
            value,
            self.state.best_metric,
        )
        for callback in self.callbacks:
            callback.on_evaluate(self.state, metrics)
        if self.params.early_stopping_patience and self.patience >= self.params.early_stopping_patience:
            self.state.should_stop = self.stopped_early = True
            logger.info("early stopping: no improvement of %s for %d evaluations", name, self.patience)
        # The last evaluation needs no checkpoint: `_finish` follows at once and removes it (a MiniLM one is ~260 MB).
        finishing = next_epoch >= self.params.num_epochs or self.state.should_stop
        if not finishing:
            self._save_checkpoint(next_epoch, next_batch)
        if self.ctx.is_main:
            self._write_progress("running")
        self.ctx.barrier()

    def _save_checkpoint(self, next_epoch: int, next_batch: int) -> None:
        """Every rank hands in its RNG state (a collective call); rank 0 writes the checkpoint."""
        rng_states = self.ctx.all_gather_object(rng_state())
        if self.ctx.is_main:
            save_checkpoint(
                self.run.checkpoint,
                self.model,
                self.optimizer,
                self.scheduler,
                self.scaler,
                self._progress(next_epoch, next_batch),
                rng_states,
            )

    def _progress(self, next_epoch: int, next_batch: int) -> dict[str, Any]:
        return {
            "next_epoch": next_epoch,
            "next_batch": next_batch,
            "global_step": self.state.global_step,
            "best_metric": self.state.best_metric,
            "best_epoch": self.state.best_epoch,
            "best_metrics": self.best_metrics,
            "best_step": self.best_step,
            "patience": self.patience,
            "history": self.state.history,
            "stopped_early": self.stopped_early,
        }

    def _restore(self) -> tuple[int, int]:
        """Continue from `checkpoint/` when resuming; returns (epoch, batch) to start from."""
        if not (self.resume and self.run.checkpoint.is_dir()):
            if self.ctx.is_main:
                self.run.remove(self.run.checkpoint)
            return 0, 0
        progress = load_checkpoint(
            self.run.checkpoint, self.model, self.optimizer, self.scheduler, self.scaler, self.ctx.rank
        )
        self.state.global_step = progress["global_step"]
        self.state.best_metric, self.state.best_epoch = progress["best_metric"], progress["best_epoch"]
        self.state.history = list(progress["history"])
        self.best_metrics, self.best_step = progress["best_metrics"], progress["best_step"]
        self.patience, self.stopped_early = progress["patience"], progress["stopped_early"]
        self.state.should_stop = self.stopped_early
        logger.info(
            "resuming at epoch %d, batch %d (step %d)",
            progress["next_epoch"] + 1,
            progress["next_batch"],
            self.state.global_step,
        )
        return progress["next_epoch"], progress["next_batch"]

    def _write_progress(self, status: str) -> None:
        self.run.write_metrics(
            {
                "status": status,
                "history": self.state.history,
                "config_fingerprint": self.config.fingerprint,
                "dataset_fingerprint": self.dataset.fingerprint,
            }
        )

    def _finish(self, throughput: float) -> TrainResult:
        samples = self.ctx.all_reduce_sum([throughput])[0]
        result = TrainResult(
            output_dir=self.run.root,
            best_metrics=self.best_metrics,
            history=tuple(self.state.history),
            best_epoch=self.state.best_epoch,
            best_step=self.best_step,
            stopped_early=self.stopped_early,
            tag_names=self.tag_names,
            config_fingerprint=self.config.fingerprint,
            dataset_fingerprint=self.dataset.fingerprint,
            train_samples_per_second=samples,
            extra={
                "validation_overlap": self.overlap,
                "world_size": self.ctx.world_size,
                "truncated_words": self.train_split.truncated_words + self.validation_split.truncated_words,
                "load_report": self.dataset.report.model_dump(mode="json"),
            },
        )
        if self.ctx.is_main:
            self.run.write_metrics(result.to_record())
            shutil.rmtree(self.run.checkpoint, ignore_errors=True)
            logger.info(
                "done: best %s=%.4f at epoch %s",
                self.params.metric_for_best,
                self.state.best_metric or 0.0,
                self.state.best_epoch,
            )
        self.ctx.barrier()
        return result
