"""The budget of a whole study (trials and active time), shared by every process and host working on it.

Active time is the union of the trials' run times (a crash's downtime does not count, side-by-side workers count
once). A trial that starts over budget fails before it trains (`MaxTrialsCallback` would overshoot).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict

from training.config.validation import validate
from training.hpo.trial_record import rerun_of

BUDGET = "budget"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
AHEAD = (TrialState.RUNNING, TrialState.WAITING)


class Budget(BaseModel):
    """At most `n_trials` trials and `timeout_s` seconds of active time (None: no limit)."""

    model_config = ConfigDict(frozen=True)

    n_trials: int | None = None
    timeout_s: float | None = None

    @classmethod
    def of(cls, study: optuna.Study) -> Budget:
        """The budget recorded in the study (every worker reads the same one); an invalid one is a `ConfigError`."""
        attrs, source = study.user_attrs, f"study {study.study_name!r}: user attribute {BUDGET!r}"
        return validate(cls, attrs[BUDGET], source) if BUDGET in attrs else cls()  # a study made before budgets

    def record(self, study: optuna.Study) -> None:
        study.set_user_attr(BUDGET, self.model_dump(mode="json"))

    def exhausted(self, trials: Sequence[FrozenTrial]) -> bool:
        """No new trial may start: the trials are used up, or time is."""
        return self.trials_left(trials) == 0 or self._timed_out(trials)

    def trials_left(self, trials: Sequence[FrozenTrial]) -> int | None:
        """Trials that may still start (None: no limit): complete, pruned and running trials (but not those queued
        again) fill the budget."""
        if self.n_trials is None:
            return None
        requeued = _requeued(trials)
        used = sum(trial.state in COUNTED or _holds(trial, (TrialState.RUNNING,), requeued) for trial in trials)
        return max(0, self.n_trials - used)

    def admits(self, trials: Sequence[FrozenTrial], number: int) -> bool:
        """Whether the running trial `number` fits: running and queued trials numbered before it come first, and
        time is judged at its start.

        Numbers, not start times, give the order: storage numbers a trial when it commits it, so every trial
        numbered before this one is already visible to it (a start time is taken before the commit, so two workers
        could each see the other as later, and both start). A re-queued trial, numbered when queued, holds its place
        while it waits, and takes its original's.
        """
        start = next((trial.datetime_start for trial in trials if trial.number == number), None)
        requeued = _requeued(trials)
        ahead = [trial for trial in trials if trial.number < number]
        used = sum(trial.state in COUNTED for trial in trials) + sum(_holds(trial, AHEAD, requeued) for trial in ahead)
        others = [trial for trial in trials if trial.number != number]
        return not (self._full(used) or self._timed_out(others, until=start))

    def _full(self, used: int) -> bool:
        return self.n_trials is not None and used >= self.n_trials

    def _timed_out(self, trials: Sequence[FrozenTrial], until: datetime | None = None) -> bool:
        return self.timeout_s is not None and active_seconds(trials, until) >= self.timeout_s


def _requeued(trials: Sequence[FrozenTrial]) -> set[int]:
    """Trials queued again: an interrupted trial is queued again before it is failed, and its re-run may start
    meanwhile; the original's place is the re-run's."""
    return {origin for trial in trials if (origin := rerun_of(trial)) is not None}


def _holds(trial: FrozenTrial, states: tuple[TrialState, ...], requeued: set[int]) -> bool:
    """Whether an unfinished trial holds a place in the budget: in one of `states`, and not queued again."""
    return trial.state in states and trial.number not in requeued


def utc(moment: datetime | None) -> datetime | None:
    """`moment` in UTC; Optuna records naive local times, which a change of clock or time zone (DST) would skew."""
    return None if moment is None else moment.astimezone(timezone.utc)


def active_seconds(trials: Sequence[FrozenTrial], until: datetime | None = None) -> float:
    """Seconds during which at least one trial of the study was running, up to `until` (default: now); failed
    trials end at an unknown time and do not count."""
    intervals = []
    until = utc(until)
    for trial in trials:
        start = utc(trial.datetime_start)
        if start is None or trial.state not in (*COUNTED, TrialState.RUNNING) or (until and start >= until):
            continue
        end = utc(trial.datetime_complete) or datetime.now(timezone.utc)
        intervals.append((start, min(end, until) if until else end))
    total, covered = 0.0, None  # covered: the end of the time counted so far
    for start, end in sorted(intervals):
        start = max(start, covered) if covered is not None else start
        if end > start:
            total += (end - start).total_seconds()
            covered = end
    return total
