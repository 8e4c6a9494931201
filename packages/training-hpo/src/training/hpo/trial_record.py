"""`TrialRecord`: what a trial stores in the study (its Optuna user attributes), written as it goes, read by all."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict

from training.config.validation import validate
from training.core.run_metrics import PrecisionCheck

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class TrialRecord(BaseModel):
    """A trial's parameters, where it ran, its folds and times, why it failed or was skipped, and recovery's owner
    and re-run fields; each is written when it becomes known."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    owner: dict[str, Any] | None = None
    retry_of: int | None = None
    retries: int = 0
    hyperparameters: dict[str, Any] = {}
    device: str | None = None
    oom_retry: dict[str, int] | None = None
    fold_values: tuple[float, ...] = ()
    fold_best_epochs: tuple[int | None, ...] = ()
    fold_seconds: tuple[float, ...] = ()
    cv_mean: float | None = None
    cv_std: float | None = None
    train_seconds: float = 0.0
    trial_seconds: float | None = None
    peak_rss_mb: float | None = None
    precision_check: PrecisionCheck | None = None  # `precision: auto`'s bf16 check, made or taken by the trial's runs
    fail_reason: str | None = None
    skipped: str | None = None

    @property
    def on_cuda(self) -> bool:
        """Whether the trial ran on a CUDA GPU (`device` "cuda:N"; "default" or unknown: not)."""
        return (self.device or "").startswith("cuda")

    @classmethod
    def of(cls, trial: FrozenTrial | optuna.Trial) -> TrialRecord:
        """The record of `trial` so far; attributes this record's writer did not write (a journal file edited by hand)
        are a `ConfigError` naming the trial and the attribute."""
        return validate(cls, trial.user_attrs, f"trial {trial.number}: user attributes")

    @classmethod
    def write(cls, trial: optuna.Trial, **fields: Any) -> None:
        """Validate `fields` as part of the record and store them on the trial."""
        unknown = set(fields) - set(cls.model_fields)
        if unknown:
            raise TypeError(f"TrialRecord has no field {', '.join(sorted(unknown))}")
        for key, value in cls.model_validate(fields).model_dump(mode="json", include=set(fields)).items():
            trial.set_user_attr(key, value)


def rerun_of(trial: FrozenTrial) -> int | None:
    """The number of the interrupted trial that `trial` runs again (queued by recovery, or by Optuna's heartbeat as
    its `failed_trial`), None for a new trial."""
    retry_of = TrialRecord.of(trial).retry_of
    failed = trial.system_attrs.get("failed_trial")
    return retry_of if retry_of is not None else failed if isinstance(failed, int) else None


def first_precision_check(trials: list[FrozenTrial], like: FrozenTrial | optuna.Trial) -> PrecisionCheck | None:
    """The bf16 check of the lowest-numbered finished trial that recorded one with the same `model.*` parameters and
    kind of device (CUDA or not) as `like`: a trial of the same model and data takes its decision instead of scoring an
    evaluation in fp32 again."""
    record = TrialRecord.of(like)
    model = {name: value for name, value in record.hyperparameters.items() if name.startswith("model.")}
    for trial in trials:
        other = TrialRecord.of(trial)
        same = all(other.hyperparameters.get(name) == value for name, value in model.items())
        alike = trial.state in _FINISHED and same and other.on_cuda == record.on_cuda
        if alike and other.precision_check is not None:
            return other.precision_check
    return None
