"""`SweepWorker`: one process's part of a study: ask, run trials in isolation, report, keep the budget, clean up."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

import optuna
from optuna.trial import FrozenTrial

from data.loaders import Dataset
from training.common.cores import check_process_count
from training.common.errors import TrainingError
from training.config.schema import TrainingConfig
from training.hpo.best_config import extract_best_config_from_study
from training.hpo.budget import Budget
from training.hpo.checkpoints import best_trial_number, clean_checkpoints
from training.hpo.devices import DevicePool, visible_gpus
from training.hpo.events import EventSink, TrialStarted, sweep_finished, sweep_started, trial_finished
from training.hpo.failures import FailureStreak, OutOfMemory, TrialFailed, one_line
from training.hpo.objective import CVOutcome, OptunaReporter, TrialSpec, fold_count
from training.hpo.processes import Isolation, TrialData
from training.hpo.recovery import process_identity, recover_interrupted_trials, requeue
from training.hpo.sampling import pruner, sampler, trial_threads
from training.hpo.search_space import create_search_space
from training.hpo.storage import open_storage, recording_to
from training.hpo.study_folder import StudyFolder
from training.hpo.sweep_settings import SweepSettings
from training.hpo.trial_record import TrialRecord, first_precision_check
from training.hpo.trial_runner import run_trial

if TYPE_CHECKING:
    from training.config.hpo_schema import HPOConfig
    from training.hpo.mlflow_tracking import SweepTracker

logger = logging.getLogger("training.hpo")


def check_parallel(hpo: HPOConfig) -> HPOConfig:
    """`hpo`, unless it runs more trial processes at once (`parallel_trials`, no more than `n_trials`) than this
    machine holds: a time budget alone bounds none."""
    jobs = min(hpo.parallel_trials, hpo.n_trials or hpo.parallel_trials)
    check_process_count(jobs, f"sweep settings: parallel_trials {hpo.parallel_trials} (--parallel)")
    return hpo


class BudgetReached(Exception):
    """A trial started after the study's budget was used up (by another worker); it is failed untrained."""


class SweepWorker:
    """Runs `parallel` trial processes at once on shares of the cores, one GPU of `gpus` each (round-robin); a failed
    trial is marked FAIL and the sweep goes on, until `max_failed_trials` fail in a row."""

    def __init__(
        self,
        location: str,
        study: optuna.Study,
        record: SweepSettings,
        folder: StudyFolder,
        dataset: Dataset,
        isolation: Isolation,
        parallel: int,
        gpus: Sequence[str] | None = None,
        tracking: Callable[[str, SweepSettings], SweepTracker] | None = None,
        events: EventSink | None = None,
    ) -> None:
        self.location, self.record, self.folder = location, record, folder
        self.data, self.isolation = TrialData(dataset), isolation
        self.events = events
        self.parallel = parallel
        self.devices = DevicePool(visible_gpus() if gpus is None else gpus, parallel)
        self.hpo = record.hpo_config
        self.streak = FailureStreak(self.hpo.max_failed_trials)
        self.stopped = False
        self.space = create_search_space(self.hpo, recorded=True)
        self.base = record.config
        self.study = optuna.load_study(
            study_name=study.study_name,
            storage=open_storage(location, (self.hpo.heartbeat_interval, self.hpo.grace_period), write=True),
            sampler=sampler(self.hpo, self.space),
            pruner=pruner(self.hpo, fold_count(self.hpo) * (record.max_epochs + 1)),
        )
        self.tracker = tracking(study.study_name, record) if tracking is not None else None

    def run(self) -> optuna.Study:
        try:
            with recording_to(self.location):
                self._optimize()
        except BaseException:
            if self.tracker is not None:
                self.tracker.end("KILLED")
            raise
        if self.tracker is not None:
            self.tracker.end("FAILED" if self.stopped else "FINISHED")
        if self.events is not None:
            self.events.emit(sweep_finished(self.study))
        clean_checkpoints(self.study, self.folder, self.hpo.keep_checkpoints)
        if best_trial_number(self.study) is not None:
            extract_best_config_from_study(self.study, study_dir=self.folder.root)
        if self.stopped:
            raise self.streak.error()
        return self.study

    def _optimize(self) -> None:
        """Queue this host's interrupted trials again, then run trials until the budget or the failure streak ends."""
        recover_interrupted_trials(self.study, self.folder.recovery_lock)
        callbacks = [self._after_trial, *([self.tracker] if self.tracker is not None else [])]
        budget = Budget.of(self.study)
        trials = self.study.get_trials(deepcopy=False)
        # No more trials at once than the budget has left (each thread asks for one, and those over it fail
        # untrained); the cores are shared among those that run.
        left = budget.trials_left(trials)
        jobs = self.parallel if left is None else max(1, min(self.parallel, left))
        # checked again here: the budget an earlier `hpo resume --n-trials` raised may leave more than the settings' one
        check_process_count(jobs, f"sweep settings: parallel_trials {self.parallel} (--parallel)")
        self.threads = trial_threads(jobs)
        if self.events is not None:
            self.events.emit(sweep_started(self.study, trials, self.hpo, budget, jobs))
        if not budget.exhausted(trials):
            self.study.optimize(self._objective, n_jobs=jobs, callbacks=callbacks, catch=(BudgetReached, TrialFailed))

    def _objective(self, trial: optuna.Trial) -> float:
        if not Budget.of(trial.study).admits(trial.study.get_trials(deepcopy=False), trial.number):
            trial.study.stop()
            TrialRecord.write(trial, skipped="the study's budget was used up before this trial started")
            raise BudgetReached(f"trial {trial.number} started after the study's budget was used up")
        TrialRecord.write(trial, owner=process_identity())
        with self.devices.lend() as device:
            TrialRecord.write(trial, device=f"cuda:{device}" if device is not None else "default")
            started = time.perf_counter()
            try:
                params = self.space.suggest(trial)
                TrialRecord.write(trial, hyperparameters=params)
                if self.events is not None:
                    self.events.emit(TrialStarted(trial=trial.number, params=params))
                outcome = self._run(trial, self.base.with_values(params), device)
            except KeyboardInterrupt:
                requeue(trial.study, trial)
                raise
            except Exception as error:  # any failure of one trial: recorded, and the sweep goes on
                self._failed(trial, one_line(error), getattr(error, "exit_code", TrainingError.exit_code))
        TrialRecord.write(trial, **outcome.to_attrs(), trial_seconds=time.perf_counter() - started)
        if outcome.pruned_at is None and not math.isfinite(outcome.mean):  # e.g. a loss that became NaN
            reason = f"the objective {self.hpo.metric} is {outcome.mean} (fold values {outcome.values})"
            self._failed(trial, reason, TrainingError.exit_code)
        self.streak.succeeded()
        if outcome.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at step {outcome.pruned_at} (fold {len(outcome.folds)})")
        return outcome.mean

    def _run(self, trial: optuna.Trial, config: TrainingConfig, device: str | None) -> CVOutcome:
        """Cross-validate `config`; on CUDA out-of-memory, once more at half the batch size (when `oom_retry`)."""
        try:
            return self._cross_validate(trial, config, device)
        except OutOfMemory as error:
            if not self.hpo.oom_retry:
                raise
            training = config.training
            smaller = {
                "training.batch_size": max(1, training.batch_size // 2),
                "training.gradient_accumulation_steps": training.gradient_accumulation_steps * 2,
            }
            logger.warning("%s; retrying once with %s", error, smaller)
            TrialRecord.write(trial, oom_retry=smaller)
        return self._cross_validate(trial, config.with_values(smaller), device)

    def _cross_validate(self, trial: optuna.Trial, config: TrainingConfig, device: str | None) -> CVOutcome:
        """Run the trial on `config`, reporting to Optuna, and to the watchers when there are any."""
        spec = TrialSpec(
            number=trial.number,
            config=config,
            metric=self.hpo.metric,
            splits_path=str(self.folder.splits) if self.hpo.validation == "kfold" else None,
            trial_dir=str(self.folder.trial(trial.number)),
            cache_dir=str(self.folder.cache),
            max_epochs=self.record.max_epochs,
            threads=self.threads,
            device=device,
            precision_check=first_precision_check(trial.study.get_trials(deepcopy=False), like=trial),
        )
        reporter = OptunaReporter(trial, self.events, self.record.max_epochs)
        progress = self.events.emit if self.events is not None else None
        return run_trial(spec, self.data, reporter, self.isolation, progress)

    def _failed(self, trial: optuna.Trial, reason: str, exit_code: int) -> NoReturn:
        """Record why `trial` failed and fail it; after too many failures in a row, stop the sweep."""
        TrialRecord.write(trial, fail_reason=reason)
        if self.streak.failed(trial.number, reason, exit_code):
            self.stopped = True
            trial.study.stop()
        raise TrialFailed(reason)

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.events is not None:
            self.events.emit(trial_finished(study, trial, self.record.max_epochs))
        clean_checkpoints(study, self.folder, self.hpo.keep_checkpoints)
        recover_interrupted_trials(study, self.folder.recovery_lock)
        if Budget.of(study).exhausted(study.get_trials(deepcopy=False)):
            study.stop()
