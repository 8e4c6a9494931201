"""MLflow tracking of a sweep: one parent run per study (found again by its tags), a nested run per finished trial.

An Optuna callback of the sweep's process: trial processes never talk to MLflow, so a killed trial leaves no half run.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import optuna
from mlflow.entities import Metric, Param
from optuna.trial import FrozenTrial, TrialState

from training.execution.tracking import (
    KIND_TAG,
    STORAGE_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    experiment_id,
    find_runs,
    quiet_mlflow,
    storage_fingerprint,
)
from training.hpo.azure_trial import EPOCH_SUFFIX, FOLD_SUFFIX
from training.hpo.checkpoints import best_trial
from training.hpo.objective import fold_count
from training.hpo.sweep_settings import SweepSettings
from training.hpo.trial_record import TrialRecord

# A pruned trial was stopped on purpose: MLflow's KILLED, not FAILED.
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
RUNNING_MEAN_SUFFIX = "_cv_running_mean"
_MAX_TAG = 5000


class SweepTracker:
    """Finds (or creates) the study's parent run, logs each finished trial as a nested run; `end` ends the parent."""

    def __init__(self, client: Any, tracking_uri: str, study_name: str, record: SweepSettings) -> None:
        """`client`: `connect`ed to `tracking_uri`, which places a new experiment's artifacts (beside a SQLite file)."""
        self.client, self.study_name, self.record = client, study_name, record
        self.metric, self.max_epochs = record.hpo_config.metric, record.max_epochs
        self.experiment = experiment_id(self.client, study_name, tracking_uri)
        self.tags = {STUDY_TAG: study_name, STORAGE_TAG: storage_fingerprint(record.storage)}
        self.parent_run_id = self._parent_run()

    def _parent_run(self) -> str:
        """The study's parent run, reopened; created (with the sweep settings) when this store has none."""
        sweep = {**self.tags, KIND_TAG: "sweep"}
        found = find_runs(self.client, self.study_name, sweep)
        if found:
            self.client.update_run(found[0], status="RUNNING")
            return found[0]
        created = self.client.create_run(self.experiment, tags=sweep, run_name=self.study_name).info.run_id
        hpo = self.record.hpo_config
        settings = hpo.model_dump(include={"metric", "direction", "validation", "n_trials", "timeout_s"}) | {
            "folds": fold_count(hpo),
            "sampler": hpo.sampler.type,
            "pruner": hpo.pruner.type,
            "storage": self.record.storage,
        }
        params = [Param(key, str(value)) for key, value in settings.items()]
        self.client.log_batch(created, params=params)
        self.client.log_text(created, self.record.config.to_yaml(), "config.yaml")
        space = hpo.model_dump(mode="json")["search_space"]
        self.client.log_text(created, json.dumps(space, indent=2), "search_space.json")
        # Workers started at once may each have created one: all keep the oldest, the others are deleted.
        oldest = find_runs(self.client, self.study_name, sweep)[0]
        if oldest != created:
            self.client.delete_run(created)
        return oldest

    @quiet_mlflow()  # ending a run on an MLflow server prints its link on stdout
    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna's after-trial callback: the finished trial as a nested run, the best value so far on the parent."""
        status, record = RUN_STATUS.get(trial.state), TrialRecord.of(trial)
        if status is None or record.skipped:  # a trial refused by the budget never trained
            return
        tags = {
            **self.tags,
            KIND_TAG: "trial",
            TRIAL_TAG: str(trial.number),
            "mlflow.parentRunId": self.parent_run_id,
            "state": trial.state.name.lower(),
        }
        if record.fail_reason:
            tags["fail_reason"] = record.fail_reason[:_MAX_TAG]
        started = _ms(trial.datetime_start) or int(time.time() * 1000)
        run_id = self.client.create_run(
            self.experiment, start_time=started, tags=tags, run_name=f"trial-{trial.number}"
        ).info.run_id
        hyperparameters = record.hyperparameters or trial.params
        params = [Param(key, str(value)) for key, value in hyperparameters.items()]
        self.client.log_batch(run_id, metrics=self._metrics(trial, record, started), params=params)
        self.client.set_terminated(run_id, status=status, end_time=_ms(trial.datetime_complete))
        self._log_best(study)

    def _metrics(self, trial: FrozenTrial, record: TrialRecord, timestamp: int) -> list[Metric]:
        """Per-epoch values, the running CV mean after each fold, each fold's value, the objective and its CV std."""
        stride, metrics = self.max_epochs + 1, []
        for step, value in sorted(trial.intermediate_values.items()):
            fold, position = divmod(step, stride)
            if position < self.max_epochs:
                metrics.append(Metric(self.metric + EPOCH_SUFFIX, value, timestamp, fold * self.max_epochs + position))
            else:
                metrics.append(Metric(self.metric + RUNNING_MEAN_SUFFIX, value, timestamp, fold))
        for fold, value in enumerate(record.fold_values):
            metrics.append(Metric(self.metric + FOLD_SUFFIX, value, timestamp, fold))
        if trial.value is not None:
            metrics.append(Metric(self.metric, trial.value, timestamp, 0))
        for name, measured in (("cv_std", record.cv_std), ("trial_seconds", record.trial_seconds)):
            if measured is not None:
                metrics.append(Metric(name, measured, timestamp, 0))
        return metrics

    def _log_best(self, study: optuna.Study) -> None:
        """The best objective so far on the parent run, stepped by the number of finished trials."""
        best = best_trial(study)
        if best is None or best.value is None:  # no complete trial yet
            return
        done = len(study.get_trials(deepcopy=False, states=tuple(RUN_STATUS)))
        self.client.log_metric(self.parent_run_id, f"best_{self.metric}", best.value, step=done)
        self.client.set_tag(self.parent_run_id, "best_trial", str(best.number))

    @quiet_mlflow()
    def end(self, status: str) -> None:
        """Mark the parent run ended (another worker or a resume reopens it)."""
        self.client.set_terminated(self.parent_run_id, status=status, end_time=int(time.time() * 1000))


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None
