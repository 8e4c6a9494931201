"""The k-fold objective of one trial: train each fold, report each epoch, average the folds.

It never touches the study: a `Reporter` carries each value to the process that talks to Optuna and answers whether
to prune. A fold has `max_epochs + 1` steps (`fold * (max_epochs + 1) + epoch`, then the running CV mean), so steps
compare across trials even when epochs are tuned; a trial is never pruned once its last fold has trained.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna
from pydantic import BaseModel, ConfigDict

from data.loaders import Dataset
from training.common.atomic import atomic_write_json
from training.common.errors import TrainingError
from training.config.hpo_schema import HPOConfig
from training.config.schema import TrainingConfig
from training.core.callbacks import Callback, TrainerState
from training.core.cv_utils import KFoldSplits
from training.core.run_metrics import Evaluation, PrecisionCheck
from training.hpo.events import EpochDone, EventSink, FoldDone, TrialProgress
from training.hpo.search_space import SearchSpace

_PROGRESS_EVERY_S = 0.5  # a trial's step progress is sent at most this often (and at each epoch's end)


def max_epochs(space: SearchSpace, config: TrainingConfig) -> int:
    """The most epochs a trial of `space` can train: the stride of intermediate steps from one fold to the next."""
    return max(space.upper_bound("training.num_epochs") or 0, config.training.num_epochs)


def fold_count(hpo: HPOConfig) -> int:
    """Folds each trial trains: `k_folds`, or one on the fixed validation split."""
    return hpo.k_folds if hpo.validation == "kfold" else 1


class Reporter(Protocol):
    """Receives an intermediate value; returns True when the trial should be pruned."""

    def report(self, step: int, value: float) -> bool: ...


Progress = Callable[[TrialProgress], None]  # receives a trial's step progress


class TrialSpec(BaseModel):
    """Everything a trial's process needs, besides the dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    config: TrainingConfig
    metric: str
    splits_path: str | None  # None: no folds, train on `train` and score on the dataset's fixed `validation` split
    trial_dir: str
    cache_dir: str
    max_epochs: int
    threads: int | None = None
    device: str | None = None  # CUDA_VISIBLE_DEVICES of the trial process (None: inherited)
    backbone_folder: str | None = None  # where the local backbone's files lie, when elsewhere (an Azure trial's mount)
    precision_check: PrecisionCheck | None = None  # an earlier trial's `precision: auto` check, for this one to take


@dataclass(frozen=True)
class FoldResult:
    """One fold: its best value of the metric, the epoch it was reached and the seconds its training took."""

    fold: int
    value: float
    best_epoch: int | None
    seconds: float


@dataclass(frozen=True)
class CVOutcome:
    """A trial's finished folds, the step it was pruned at (None: not pruned), the pruned fold's time, peak memory."""

    folds: tuple[FoldResult, ...]
    pruned_at: int | None = None
    pruned_fold_seconds: float = 0.0
    peak_rss_mb: float | None = None
    precision_check: PrecisionCheck | None = None

    @property
    def values(self) -> list[float]:
        return [fold.value for fold in self.folds]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.folds else math.nan

    @property
    def std(self) -> float:
        """NaN without folds or with a non-finite fold (where `pstdev` raises an AttributeError, not a NaN)."""
        values = self.values
        return statistics.pstdev(values) if values and all(map(math.isfinite, values)) else math.nan

    @property
    def train_seconds(self) -> float:
        return sum(fold.seconds for fold in self.folds) + self.pruned_fold_seconds

    def to_attrs(self) -> dict[str, Any]:
        """The trial user attributes recording this outcome."""
        return {
            "fold_values": self.values,
            "fold_best_epochs": [fold.best_epoch for fold in self.folds],
            "cv_mean": self.mean if self.folds else None,
            "cv_std": self.std if self.folds else None,
            "train_seconds": self.train_seconds,
            "fold_seconds": [fold.seconds for fold in self.folds],
            "peak_rss_mb": self.peak_rss_mb,
            "precision_check": self.precision_check,
        }


class OptunaReporter:
    """Reports to an Optuna trial and tells `events` each epoch's value and each fold's end."""

    def __init__(self, trial: optuna.Trial, events: EventSink | None = None, max_epochs: int = 0) -> None:
        self.trial, self.events, self.stride = trial, events, max_epochs + 1

    def report(self, step: int, value: float) -> bool:
        self.trial.report(value, step)
        if self.events is not None:
            fold, epoch = divmod(step, self.stride)
            number = self.trial.number
            last = epoch == self.stride - 1  # the fold's own step: the running CV mean (see the module doc)
            self.events.emit(
                FoldDone(trial=number, fold=fold, mean=value)
                if last
                else EpochDone(trial=number, fold=fold, epoch=epoch + 1, value=value)
            )
        return self.trial.should_prune()


class _StepProgress(Callback):
    """Sends a fold's step progress: at the start, at most every `_PROGRESS_EVERY_S`, at each epoch's last step."""

    def __init__(self, progress: Progress, trial: int, fold: int, folds: int) -> None:
        self.progress, self.trial, self.fold, self.folds = progress, trial, fold, folds
        self.sent = 0.0

    def on_train_begin(self, state: TrainerState) -> None:
        self._send(state)

    def on_step_end(self, state: TrainerState) -> None:
        epoch_end = state.steps_per_epoch > 0 and state.global_step % state.steps_per_epoch == 0
        if epoch_end or time.monotonic() - self.sent >= _PROGRESS_EVERY_S:
            self._send(state)

    def _send(self, state: TrainerState) -> None:
        self.sent = time.monotonic()
        self.progress(
            TrialProgress(
                trial=self.trial,
                fold=self.fold,
                folds=self.folds,
                epoch=min(state.epoch + 1, max(state.num_epochs, 1)),
                epochs=state.num_epochs,
                step=state.global_step,
                steps=state.total_steps,
                loss=state.loss,
            )
        )


class _ReportEpochs(Callback):
    """Reports each epoch of one fold and stops training on prune, except at the last fold's last epoch."""

    def __init__(
        self, reporter: Reporter, metric: str, fold: int, max_epochs: int, final_epoch: int | None = None
    ) -> None:
        self.reporter, self.metric, self.fold = reporter, metric, fold
        self.offset, self.final_epoch = fold * (max_epochs + 1), final_epoch
        self.last_step: int | None = None
        self.precision_check: PrecisionCheck | None = None  # the run's, as it stood at its last evaluation

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        self.precision_check = state.precision_check
        step = self.offset + state.epoch
        if step == self.last_step:  # evaluations every eval_steps: the first of each epoch is reported
            return
        self.last_step = step
        prune = self.reporter.report(step, evaluation.score(self.metric))
        if prune and state.epoch != self.final_epoch:
            raise optuna.TrialPruned(f"pruned at fold {self.fold}, epoch {state.epoch + 1}")


def cross_validate(
    spec: TrialSpec, dataset: Dataset, reporter: Reporter, progress: Progress | None = None
) -> CVOutcome:
    """Train every fold (or the one fixed split) in `<trial_dir>/fold-<k>`; stop at the first prune."""
    import torch  # here, not at import: the sweep's own process never trains (trial processes preload these)

    from training.core.trainer import train_model

    # `given`: the check each fold's run takes (the study's, else fold 0's own); `made`: the one the trial's runs made
    # or took, for its record (None where no run checked: `auto` in fp32 on this machine, a precision given)
    config, given, made = spec.config, spec.precision_check, None
    parts = _folds(spec.splits_path, dataset)
    folds: list[FoldResult] = []
    for index, (fold_data, fold_record) in enumerate(parts):
        output = Path(spec.trial_dir) / f"fold-{index}"
        process = {"pid": os.getpid(), "threads": torch.get_num_threads()}
        gpus = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        atomic_write_json(output / "fold.json", {"fold": index, **process, **gpus, **fold_record})
        last = index == len(parts) - 1
        final_epoch = config.training.num_epochs - 1 if last else None
        callback = _ReportEpochs(reporter, spec.metric, index, spec.max_epochs, final_epoch)
        steps = [] if progress is None else [_StepProgress(progress, spec.number, index, len(parts))]
        started = time.perf_counter()
        try:
            result = train_model(
                config,
                fold_data,
                output,
                callbacks=[callback, *steps],
                resume=False,
                cache_dir=spec.cache_dir,
                resumable=False,  # a trial is never resumed: a crashed one trains again from the start
                backbone_folder=spec.backbone_folder,
                precision_check=given,
            )
        except optuna.TrialPruned:
            result = None
        seconds, made = time.perf_counter() - started, made or callback.precision_check
        if result is None:
            return CVOutcome(tuple(folds), callback.last_step, seconds, peak_rss_mb(), precision_check=made)
        given = given or made
        if result.metrics.best is None:
            raise TrainingError(f"trial {spec.number}, fold {index}: the run recorded no evaluation to score")
        value = result.metrics.best.score(spec.metric)
        folds.append(FoldResult(index, value, result.metrics.best_epoch, seconds))
        end_step = index * (spec.max_epochs + 1) + spec.max_epochs
        running_mean = statistics.fmean(fold.value for fold in folds)
        if reporter.report(end_step, running_mean) and not last:
            return CVOutcome(tuple(folds), end_step, 0.0, peak_rss_mb(), precision_check=made)
    return CVOutcome(tuple(folds), peak_rss_mb=peak_rss_mb(), precision_check=made)


def _folds(splits_path: str | None, dataset: Dataset) -> list[tuple[Dataset, dict[str, Any]]]:
    """Each fold's data and what `fold.json` records of it: the k folds, or the dataset's own train/validation."""
    if splits_path is None:
        fixed = Dataset({"train": dataset["train"], "validation": dataset["validation"]}, labels=dataset.labels)
        return [(fixed, {"validation": "split", "dataset_fingerprint": dataset.fingerprint})]
    splits = KFoldSplits.load(splits_path, dataset)
    return [
        (
            splits.fold_dataset(dataset, index),
            {
                "splits": splits_path,
                "dataset_fingerprint": splits.dataset_fingerprint,
                "train_indices": list(fold.train_indices),
                "validation_indices": list(fold.validation_indices),
            },
        )
        for index, fold in enumerate(splits.folds)
    ]


def peak_rss_mb() -> float | None:
    """The peak resident memory of this process in MiB, where the system reports it."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
