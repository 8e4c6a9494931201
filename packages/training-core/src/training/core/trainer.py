"""`train_model`: fine-tune a token-classification model, evaluate it each epoch and write its run folder."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from data.documents import Document, document_items
from data.loaders import Dataset
from training.common.errors import DataError
from training.common.fingerprint import fingerprint_items
from training.config.schema import TrainingConfig
from training.core import optimization
from training.core.batching import epoch_batches, repeats_last_batch
from training.core.callbacks import Callback, TrainerState
from training.core.checkpoint import Progress, load_checkpoint, rng_state, save_checkpoint
from training.core.evaluator import evaluate_split, improves
from training.core.features import Collator, EncodedSplit, encode_cached
from training.core.model import create_model_and_tokenizer, save_model
from training.core.packing import training_collator
from training.core.pipeline import Windowing
from training.core.precision import check_bf16, take_check
from training.core.result import TrainResult, previous_run
from training.core.run_context import Readback, RunContext, StopVote, create_run_context
from training.core.run_folder import RunFolder
from training.core.run_inputs import RunInputs, check_run_arguments, default_cache_dir, run_inputs
from training.core.run_metrics import Evaluation, PrecisionCheck, RunMetrics
from training.core.tensorboard import tracking_callbacks

__all__ = ["TrainResult", "default_cache_dir", "train_model"]

logger = logging.getLogger("training.core")


def train_model(
    config: TrainingConfig,
    dataset: Dataset,
    output_dir: str | os.PathLike[str],
    *,
    callbacks: Sequence[Callback] = (),
    context: RunContext | None = None,
    resume: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    resumable: bool = True,
    backbone_folder: str | os.PathLike[str] | None = None,
    precision_check: PrecisionCheck | None = None,
) -> TrainResult:
    """Train on `dataset["train"]`, evaluate on its validation split, keep the best model in `output_dir/model`.

    `resume` (default): an interrupted run continues from its checkpoint, a finished one of the same config and data
    is returned as it is; one another process writes is refused. `resumable=False`: no checkpoints (a sweep's trial).
    Under torchrun each rank trains on its shard, evaluation covers the whole validation split, rank 0 writes.
    `backbone_folder`: as in `create_model_and_tokenizer`. `precision_check`: `auto`'s bf16 check by an earlier run
    of the same model and data (a trial's): a fresh run takes it instead of scoring its first evaluation in fp32.
    """
    callbacks = check_run_arguments(output_dir, cache_dir, precision_check, callbacks, context)
    ctx = context or create_run_context()  # one process on the best device, or this torchrun rank
    inputs, run = run_inputs(config, dataset), RunFolder(Path(output_dir))
    run.check_path()
    with run.writing(ctx.is_main):
        previous = previous_run(run, config, dataset, resume, ctx.world_size)
        if previous is not None:
            return previous
        logs = run.logging_to(logger) if ctx.is_main else contextlib.nullcontext()
        # A caller's torch draws go on as if the run had not seeded; its GPU alone (all would start CUDA in a CPU run)
        with logs, torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            return _Trainer(
                config=config,
                dataset=dataset,
                run=run,
                ctx=ctx,
                inputs=inputs,
                callbacks=[*callbacks, *tracking_callbacks(config.tracking, run.root, ctx.is_main)],
                cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
                resume=resume,
                resumable=resumable,
                backbone_folder=backbone_folder,
                known_check=precision_check,
            ).fit()


@dataclass(eq=False, repr=False, kw_only=True)
class _Trainer:
    """One training run; state lives here so `fit` reads as the loop it is."""

    config: TrainingConfig
    dataset: Dataset
    run: RunFolder
    ctx: RunContext
    inputs: RunInputs
    callbacks: list[Callback]
    cache_dir: Path
    resume: bool
    resumable: bool
    backbone_folder: str | os.PathLike[str] | None
    known_check: PrecisionCheck | None

    def __post_init__(self) -> None:
        self.params, self.windowing = self.config.training, Windowing.of(self.config.model)
        self.state = TrainerState(num_epochs=self.params.num_epochs, rank=self.ctx.rank, world_size=self.ctx.world_size)
        self.best_metrics: Evaluation | None = None
        self.patience, self.best_step, self.evaluated_step, self.stopped_early = 0, 0, -1, False
        self.nonfinite = optimization.NonFiniteSteps(self.params.max_nonfinite_steps)
        self.stops = StopVote(self.ctx)

    # -- set-up -------------------------------------------------------------------------------------------------
    def _encode(self, documents: tuple[Document, ...], name: str) -> EncodedSplit:
        key, windows = fingerprint_items([name, *document_items(documents)]), self.windowing
        max_length, stride = windows.max_length, windows.stride
        return encode_cached(documents, self.tokenizer, self.inputs.tag_names, max_length, stride, self.cache_dir, key)

    def _setup(self) -> None:
        params, ctx = self.params, self.ctx
        torch.manual_seed(params.seed)
        self.model, self.tokenizer = create_model_and_tokenizer(
            self.config, labels=self.inputs.labels, backbone_folder=self.backbone_folder
        )
        self.model.to(ctx.device)
        if ctx.rank:  # same weights on every rank (DDP sends rank 0's), but each its own dropout masks
            torch.manual_seed(ctx.rank_seed(params.seed))
        self.train_split = self._encode(self.inputs.train, "train")
        self.validation_split = self._encode(self.inputs.validation, "validation")
        if any(truncated := (self.train_split.truncated_words, self.validation_split.truncated_words)):
            logger.warning("%d training and %d validation words fall outside every window", *truncated)
        self.windows, self.window_tokens = optimization.labelled_windows(self.train_split.windows)
        self.unlabelled_windows = len(self.train_split.windows) - len(self.windows)
        if self.unlabelled_windows:
            logger.warning("%d training windows hold no labelled token and are not trained on", self.unlabelled_windows)
        if not self.windows:
            raise DataError("the training split has no labelled token to train on")
        padded = Collator(self.tokenizer.pad_token_id or 0, pad_to_multiple_of=8 if ctx.device.type == "cuda" else None)
        self.collator = training_collator(self.model, padded, self.windowing.max_length, params.packing)
        self.state.steps_per_epoch = math.ceil(len(self._batches(0)) / params.gradient_accumulation_steps)
        self.state.total_steps = self.state.steps_per_epoch * params.num_epochs
        steps, padding = self.state.total_steps, padded.pad_token_id
        self.optimization = optimization.Optimization.build(self.model, params, ctx, steps, self.windows, padding)

    def _batches(self, epoch: int) -> list[list[int]]:
        return epoch_batches(
            [window.length for window in self.windows],
            self.params.batch_size,
            seed=self.params.seed,
            epoch=epoch,
            group_by_length=self.params.group_by_length,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
        )

    # -- the loop -------------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        if self.ctx.is_main:
            for leftover in self.run.remove_leftovers():
                logger.warning("removed %s, left behind by an interrupted write", leftover)
        self._setup()
        start_epoch, skip = self._restore()
        if self.ctx.is_main:  # only once the checkpoint is read: a refused resume changes nothing in the folder
            for line in self.dataset.report.lines():
                logger.info("data: %s", line)
            self.run.write_config(self.config.to_yaml())
            self.run.write_metrics(self._metrics("running"))
            logger.info(
                "training %d windows (%d documents) for %d epochs, %d optimizer steps in %s; validation: %d documents",
                len(self.windows),
                len(self.inputs.train),
                self.params.num_epochs,
                self.state.total_steps,
                self.optimization.summary,
                len(self.inputs.validation),
            )
            for warning in self.inputs.warnings(self.config.training.metric_for_best):
                logger.warning(warning)
        for callback in self.callbacks:
            callback.on_train_begin(self.state)
        self.state.should_stop = self.stops.agree(self.state.should_stop)
        samples, train_seconds = 0, 0.0
        for epoch in range(start_epoch, self.params.num_epochs):
            if self.state.should_stop:
                break
            self.state.epoch = epoch
            started = time.perf_counter()
            samples += self._train_epoch(epoch, skip if epoch == start_epoch else 0)
            train_seconds += time.perf_counter() - started
            last_epoch = epoch == self.params.num_epochs - 1 or self.state.should_stop  # a stop ends the run here
            evaluate = self.params.eval_steps is None or last_epoch  # the weights trained since the last evaluation
            if evaluate and self.state.global_step != self.evaluated_step:
                self._evaluate_and_checkpoint(epoch + 1, 0)
        result = self._finish(samples, train_seconds)
        for callback in self.callbacks:
            callback.on_train_end(self.state)
        return result

    def _train_epoch(self, epoch: int, skip_batches: int) -> int:
        """Run one epoch (from batch `skip_batches` when resuming); returns the windows this rank saw, padding left out.
        A step counts once the next group is queued (its loss then reads without draining the device), or before an
        evaluation."""
        self.optimization.module.train()
        batches = self._batches(epoch)
        size, every = self.params.gradient_accumulation_steps, self.params.eval_steps
        groups = [batches[first : first + size] for first in range(0, len(batches), size)]
        # Labelled tokens per accumulation group, summed over ranks: one collective per epoch.
        counts = [float(sum(self.window_tokens[i] for batch in group for i in batch)) for group in groups]
        group_tokens = self.ctx.all_reduce_sum(counts)
        windows = [sum(len(batch) for batch in group) for group in groups]
        if repeats_last_batch(len(self.windows), self.params.batch_size, self.ctx.rank, self.ctx.world_size):
            windows[-1] -= len(batches[-1])
        seen, pending = 0, []
        for number in range(skip_batches // size, len(groups)):
            if every and (self.state.global_step + 1) % every == 0:
                self._count_steps(pending, epoch, len(groups))
                if self.state.should_stop:
                    break
            collated = [self.collator([self.windows[i] for i in batch]) for batch in groups[number]]
            loss = optimization.backward_group(self.optimization, collated, group_tokens[number], self.ctx)
            self._count_steps(pending, epoch, len(groups))
            if self.state.should_stop:  # asked for by the step just counted: this group is never applied
                self.optimization.optimizer.zero_grad(set_to_none=True)
                break
            seen += windows[number]
            optimization.optimizer_step(self.optimization, loss, self.params.max_grad_norm)
            pending.append((number, Readback(loss)))
        self._count_steps(pending, epoch, len(groups))
        return seen

    def _count_steps(self, pending: list[tuple[int, Readback]], epoch: int, groups: int) -> None:
        """Count the `pending` (group number, loss) steps whose loss is finite: schedule, callbacks, `eval_steps`."""
        while pending:
            number, loss = pending.pop(0)
            value = loss.value()
            if not self.nonfinite.finite(value, self.state.global_step):
                continue
            self.state.loss, self.state.learning_rate = value, self.optimization.scheduler.get_last_lr()[0]
            self.optimization.scheduler.step()
            self.state.global_step += 1
            for callback in self.callbacks:
                callback.on_step_end(self.state)
            self.state.should_stop = self.stops.after_step(self.state.should_stop)
            if self.params.eval_steps and self.state.global_step % self.params.eval_steps == 0:
                done, size = number + 1 == groups, self.params.gradient_accumulation_steps
                self._evaluate_and_checkpoint(epoch + 1 if done else epoch, 0 if done else (number + 1) * size)
                self.optimization.module.train()

    # -- evaluation, best model, checkpoints -----------------------------------------------------------------------
    def _evaluate(self, autocast_dtype: torch.dtype | None) -> Evaluation:
        docs, split, tags = self.inputs.validation, self.validation_split, self.inputs.tag_names
        run = {"batch_size": self.params.eval_batch_size, "autocast_dtype": autocast_dtype}
        metrics = evaluate_split(self.model, self.tokenizer, docs, split, tags, self.windowing, self.ctx, **run)
        return Evaluation.model_validate(metrics)

    @property
    def _checks_bf16(self) -> bool:
        """`auto` in bf16 with the model chosen on validation (a refit keeps its last: no check may steer it)."""
        return self.params.precision == "auto" and self.optimization.precision == "bf16" and self.params.keep == "best"

    def _checked(self, evaluation: Evaluation, next_epoch: int) -> Evaluation:
        """`auto`'s bf16 against fp32 on the same weights, until fp32 finds entities, while training is left."""
        state = self.state
        if not self._checks_bf16 or state.precision_check is not None or next_epoch >= self.params.num_epochs:
            return evaluation
        fp32 = self._evaluate(None)
        state.precision_check = check = check_bf16(evaluation, fp32, announce=self.ctx.is_main)
        self.optimization = self.optimization.after(check)
        return fp32 if check is not None and check.switched else evaluation

    def _evaluate_and_checkpoint(self, next_epoch: int, next_batch: int) -> None:
        state, name = self.state, self.params.metric_for_best
        self.optimization.write_model()
        evaluation = self._checked(self._evaluate(self.optimization.autocast_dtype), next_epoch)
        epoch, self.evaluated_step = state.epoch + 1, state.global_step
        state.history.append(evaluation.entry(epoch, state.global_step))
        value = evaluation.score(name)
        improved = self.params.keep == "last" or improves(value, state.best_metric, name)
        if improved:
            state.best_metric, state.best_epoch = value, epoch
            self.best_metrics, self.best_step, self.patience = evaluation, state.global_step, 0
        else:
            self.patience += 1
        logger.info("epoch %d step %d: %s=%.4f (best %.4f)", epoch, state.global_step, name, value, state.best_metric)
        for callback in self.callbacks:
            callback.on_evaluate(state, evaluation)
        self.state.should_stop = self.stops.agree(self.state.should_stop)
        if self.params.early_stopping_patience and self.patience >= self.params.early_stopping_patience:
            state.should_stop = self.stopped_early = True
            logger.info("early stopping: no improvement of %s for %d evaluations", name, self.patience)
        # The last evaluation needs no checkpoint: `_finish` follows at once and removes it (a MiniLM one is ~260 MB).
        finishing = next_epoch >= self.params.num_epochs or state.should_stop
        if self.resumable and not finishing:
            self._save_checkpoint(next_epoch, next_batch)
        # `model/` follows the checkpoint that records it as best: a crash in between is repaired by `_restore`.
        if improved and self.ctx.is_main:
            save_model(self.model, self.tokenizer, self.run.model)
        if self.ctx.is_main:
            self.run.write_metrics(self._metrics("running"))
        self.ctx.barrier()

    def _save_checkpoint(self, next_epoch: int, next_batch: int) -> None:
        """Every rank hands in its RNG state (a collective call); rank 0 writes the checkpoint."""
        rngs = self.ctx.all_gather_object(rng_state())
        if not self.ctx.is_main:
            return
        state, opt = self.state, self.optimization
        progress = Progress(
            next_epoch=next_epoch,
            next_batch=next_batch,
            global_step=state.global_step,
            best_metric=state.best_metric,
            best_epoch=state.best_epoch,
            best_metrics=self.best_metrics,
            best_step=self.best_step,
            patience=self.patience,
            history=tuple(state.history),
            stopped_early=self.stopped_early,
            skipped_steps=self.nonfinite.skipped,
            nonfinite_in_row=self.nonfinite.in_row,
            precision_check=self.state.precision_check,
            world_size=self.ctx.world_size,
            steps_per_epoch=state.steps_per_epoch,
        )
        save_checkpoint(self.run.checkpoint, self.model, opt.checkpointed, opt.scheduler, opt.scaler, progress, rngs)

    def _restore(self) -> tuple[int, int]:
        """Continue from `checkpoint/` when resuming; returns (epoch, batch) to start from."""
        if not (self.resume and self.run.checkpoint.is_dir()):
            if self.ctx.is_main:  # from the start: an earlier run's lineage would claim the model trained now
                for stale in (self.run.checkpoint, self.run.lineage):
                    self.run.remove(stale)
            if self.known_check is not None and self._checks_bf16:  # a fresh start: a resumed run keeps its own
                self.state.precision_check = check = take_check(self.known_check, announce=self.ctx.is_main)
                self.optimization = self.optimization.after(check)
            return 0, 0
        state, opt, ctx, saved = self.state, self.optimization, self.ctx, self.run.checkpoint
        counts = ctx.rank, ctx.world_size, state.steps_per_epoch, self.params.gradient_accumulation_steps
        progress = load_checkpoint(saved, self.model, opt.checkpointed, opt.scheduler, opt.scaler, *counts)
        state.global_step = self.evaluated_step = progress.global_step  # a checkpoint follows an evaluation
        state.history = list(progress.history)
        state.best_metric, state.best_epoch = progress.best_metric, progress.best_epoch
        self.best_metrics, self.best_step = progress.best_metrics, progress.best_step
        self.patience, self.stopped_early = progress.patience, progress.stopped_early
        self.nonfinite.skipped, self.nonfinite.in_row = progress.skipped_steps, progress.nonfinite_in_row
        state.precision_check, self.optimization = progress.precision_check, opt.after(progress.precision_check)
        state.should_stop = self.stopped_early
        if self.ctx.is_main and progress.best_step == progress.global_step and self.best_metrics:
            # The checkpoint holds the best model's weights; `model/` may not have been written after it.
            save_model(self.model, self.tokenizer, self.run.model)
        epoch, batch = progress.next_epoch, progress.next_batch
        logger.info("resuming at epoch %d, batch %d (step %d)", epoch + 1, batch, state.global_step)
        return epoch, batch

    def _metrics(self, status: Literal["running", "completed"], **final: Any) -> RunMetrics:
        """The run's metrics record: what it has evaluated so far, its precision, and `final` once completed."""
        return RunMetrics(
            status=status,
            history=tuple(self.state.history),
            config_fingerprint=self.config.fingerprint,
            dataset_fingerprint=self.dataset.fingerprint,
            validation_fingerprint=self.inputs.validation_fingerprint,
            precision=self.optimization.precision,
            precision_check=self.state.precision_check,
            **final,
        )

    def _finish(self, seen: int, seconds: float) -> TrainResult:
        if self.state.global_step != self.evaluated_step:  # stopped before a step: the weights as they are
            self._evaluate_and_checkpoint(self.params.num_epochs, 0)
        samples, throughput = self.ctx.all_reduce_sum([seen, seen / seconds if seconds else 0.0])
        metrics = self._metrics(
            "completed",
            best=self.best_metrics,
            best_epoch=self.state.best_epoch,
            best_step=self.best_step,
            stopped_early=self.stopped_early,
            tag_names=self.inputs.tag_names,
            train_samples_per_second=throughput,
            validation_overlap=self.inputs.overlap,
            world_size=self.ctx.world_size,
            truncated_words=self.train_split.truncated_words + self.validation_split.truncated_words,
            unlabelled_windows=self.unlabelled_windows,
            skipped_steps=self.nonfinite.skipped,
            load_report=self.dataset.report,
        )
        result = TrainResult(self.run.root, metrics)
        if self.ctx.is_main:
            self.run.write_metrics(metrics)
            shutil.rmtree(self.run.checkpoint, ignore_errors=True)
            best = self.state.best_metric or 0.0
            logger.info("trained %d windows (each once an epoch), %.1f per second", samples, throughput)
            logger.info("done: best %s=%.4f at epoch %s", self.params.metric_for_best, best, self.state.best_epoch)
        self.ctx.barrier()
        return result
