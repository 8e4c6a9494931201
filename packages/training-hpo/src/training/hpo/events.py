"""What a sweep tells its watchers while it runs: typed, frozen events, and the `EventSink` that receives them.

The sweep's process emits starts, ends and epoch values; a trial's process sends its step progress over its report
pipe. The best so far is read from the storage, so it counts other workers' trials too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from training.config.hpo_schema import HPOConfig
from training.hpo.budget import Budget
from training.hpo.checkpoints import best_trial
from training.hpo.trial_record import TrialRecord


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time: float = Field(default_factory=time.time, description="seconds since the epoch, when it happened")


class SweepStarted(_Event):
    """This process starts working on a study; `finished` trials were already done before it."""

    kind: Literal["sweep_started"] = "sweep_started"
    study: str
    metric: str
    direction: Literal["minimize", "maximize"]
    n_trials: int | None
    timeout_s: float | None
    parallel: int
    finished: int


class TrialStarted(_Event):
    """A trial got its parameters and starts training its first fold."""

    kind: Literal["trial_started"] = "trial_started"
    trial: int
    params: dict[str, Any]


class TrialProgress(_Event):
    """Optimizer steps done in one fold of a trial (from the trial's process, a few times a second at most)."""

    kind: Literal["progress"] = "progress"
    trial: int
    fold: int
    folds: int
    epoch: int = Field(description="1-based epoch being trained")
    epochs: int
    step: int
    steps: int
    loss: float | None


class EpochDone(_Event):
    """An epoch of a fold was validated: `value` of the sweep's metric (what the pruner sees)."""

    kind: Literal["epoch_done"] = "epoch_done"
    trial: int
    fold: int
    epoch: int = Field(description="1-based")
    value: float


class FoldDone(_Event):
    """A fold finished; `mean` is the running mean of the trial's finished folds."""

    kind: Literal["fold_done"] = "fold_done"
    trial: int
    fold: int
    mean: float


class TrialFinished(_Event):
    """A trial ended (complete, pruned or failed), with the study's best trial so far."""

    kind: Literal["trial_finished"] = "trial_finished"
    trial: int
    state: Literal["complete", "pruned", "fail"]
    value: float | None
    cv_std: float | None
    params: dict[str, Any]
    reason: str | None = None
    seconds: float | None = None
    best_trial: int | None = None
    best_value: float | None = None


class SweepFinished(_Event):
    """This process stopped working on the study (budget used, or too many failures)."""

    kind: Literal["sweep_finished"] = "sweep_finished"
    study: str
    complete: int
    pruned: int
    failed: int
    running: int = 0  # trials of other processes, or of one that died a moment ago (recovered after a grace period)
    best_trial: int | None
    best_value: float | None


SweepEvent = Annotated[
    SweepStarted | TrialStarted | TrialProgress | EpochDone | FoldDone | TrialFinished | SweepFinished,
    Field(discriminator="kind"),
]
EVENTS: TypeAdapter[SweepEvent] = TypeAdapter(SweepEvent)


def parse_event(line: str) -> SweepEvent:
    """One event back from its JSON line (as `--json` prints them)."""
    return EVENTS.validate_json(line)


class EventSink(Protocol):
    """Receives a sweep's events; called from the threads that run parallel trials, so it must be thread-safe."""

    def emit(self, event: SweepEvent) -> None: ...


def sweep_started(
    study: optuna.Study, trials: Sequence[FrozenTrial], hpo: HPOConfig, budget: Budget, parallel: int
) -> SweepStarted:
    """The event of this process starting on `study` (whose trials so far are `trials`)."""
    return SweepStarted(
        study=study.study_name,
        metric=hpo.metric,
        direction=hpo.direction,
        n_trials=budget.n_trials,
        timeout_s=budget.timeout_s,
        parallel=parallel,
        finished=sum(trial.state.is_finished() for trial in trials),
    )


def trial_finished(study: optuna.Study, trial: FrozenTrial, max_epochs: int) -> TrialFinished:
    """The event of a finished trial, read from the study (with its best trial so far)."""
    record = TrialRecord.of(trial)
    state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(trial.state, "fail")
    reason = record.fail_reason or record.skipped
    if state == "pruned" and trial.last_step is not None:
        fold, epoch = divmod(trial.last_step, max_epochs + 1)
        reason = f"pruned after fold {fold}" if epoch == max_epochs else f"pruned at fold {fold}, epoch {epoch + 1}"
    return TrialFinished(
        trial=trial.number,
        state=state,
        value=trial.value,
        cv_std=record.cv_std,
        params=record.hyperparameters or trial.params,
        reason=reason,
        seconds=record.trial_seconds,
        **_best(study),
    )


def sweep_finished(study: optuna.Study) -> SweepFinished:
    """The event of this process's end of work, with the study's counts and best trial."""
    trials = study.get_trials(deepcopy=False)
    return SweepFinished(
        study=study.study_name,
        complete=sum(trial.state == TrialState.COMPLETE for trial in trials),
        pruned=sum(trial.state == TrialState.PRUNED for trial in trials),
        failed=sum(trial.state == TrialState.FAIL for trial in trials),
        running=sum(trial.state == TrialState.RUNNING for trial in trials),
        **_best(study, trials),
    )


def _best(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> dict[str, Any]:
    """The study's best trial so far, as the fields of an event."""
    best = best_trial(study, trials)
    return {"best_trial": best.number if best else None, "best_value": best.value if best else None}
