"""How a sweep is watched without a terminal: plain lines (a log, CI) or JSON lines (`--json`); and `SweepState`,
which folds the events into what a person wants to see (running trials, finished ones, the best, the time left)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from training.common.plural import counted
from training.hpo.events import (
    EpochDone,
    FoldDone,
    SweepEvent,
    SweepFinished,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
)


def short_params(params: dict[str, Any]) -> str:
    """`learning_rate=0.00371 batch_size=8`: parameters without their section, floats to 3 digits."""
    return " ".join(
        f"{key.rsplit('.', 1)[-1]}={f'{value:.3g}' if isinstance(value, float) else value}"
        for key, value in params.items()
    )


def clock(seconds: float | None) -> str:
    """`1:02:03` or `2:03`; `?` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class RunningTrial:
    """Where a running trial stands, from its latest events."""

    number: int
    params: dict[str, Any]
    started: float
    progress: TrialProgress | None = None
    last_value: float | None = None

    @property
    def fraction(self) -> float:
        """The share of the trial trained so far (folds and steps; 0 before its first step)."""
        step = self.progress
        if step is None or step.steps <= 0 or step.folds <= 0:
            return 0.0
        return (step.fold + step.step / step.steps) / step.folds


@dataclass
class SweepState:
    """What the events have told so far about the study this process works on."""

    start: SweepStarted | None = None
    running: dict[int, RunningTrial] = field(default_factory=dict)
    finished: list[TrialFinished] = field(default_factory=list)
    end: SweepFinished | None = None
    began: float = field(default_factory=time.time)

    def apply(self, event: SweepEvent) -> None:
        if isinstance(event, SweepStarted):
            self.start, self.began = event, event.time
        elif isinstance(event, TrialStarted):
            self.running[event.trial] = RunningTrial(event.trial, event.params, event.time)
        elif isinstance(event, TrialProgress) and event.trial in self.running:
            self.running[event.trial].progress = event
        elif isinstance(event, EpochDone) and event.trial in self.running:
            self.running[event.trial].last_value = event.value
        elif isinstance(event, TrialFinished):
            self.running.pop(event.trial, None)
            self.finished.append(event)
        elif isinstance(event, SweepFinished):
            self.end = event

    @property
    def best(self) -> tuple[int, float] | None:
        """(trial, value) of the study's best trial, as the latest finished trial told it."""
        last = next((event for event in reversed(self.finished) if event.best_trial is not None), None)
        if last is None or last.best_trial is None or last.best_value is None:
            return None
        return last.best_trial, last.best_value

    def elapsed(self, now: float | None = None) -> float:
        return (now if now is not None else time.time()) - self.began

    def time_left(self, now: float | None = None) -> float | None:
        """Seconds left: the trials to run at the mean trial time (`parallel` at once), capped by the time budget."""
        if self.start is None:
            return None
        now = now if now is not None else time.time()
        by_time = None if self.start.timeout_s is None else max(0.0, self.start.timeout_s - self.elapsed(now))
        if self.start.n_trials is None:
            return by_time
        per_trial = self._trial_seconds(now)
        if per_trial is None:
            return by_time
        left = max(0, self.start.n_trials - self.start.finished - len(self.finished) - len(self.running))
        busy = sum(per_trial * (1 - trial.fraction) for trial in self.running.values())
        by_trials = (busy + left * per_trial) / max(1, min(self.start.parallel, left + len(self.running)))
        return by_trials if by_time is None else min(by_trials, by_time)

    def _trial_seconds(self, now: float) -> float | None:
        """The mean time of a trial: of the finished ones, else projected from the most advanced running one."""
        seconds = [event.seconds for event in self.finished if event.seconds is not None and event.state == "complete"]
        if seconds:
            return sum(seconds) / len(seconds)
        ahead = max(self.running.values(), key=lambda trial: trial.fraction, default=None)
        if ahead is None or ahead.fraction < 0.02:
            return None
        return (now - ahead.started) / ahead.fraction


def describe(event: SweepEvent, metric: str) -> str | None:
    """The one plain line of an event (None for step progress, which a log does not need)."""
    if isinstance(event, SweepStarted):
        parts = [counted(event.n_trials, "trial")] if event.n_trials is not None else []
        if event.timeout_s is not None:
            parts.append(f"{clock(event.timeout_s)} of training")
        budget = " and ".join(parts)
        return (
            f"study {event.study}: {event.direction} {event.metric}; budget {budget or 'none'}; "
            f"{counted(event.finished, 'trial')} finished before; {event.parallel} at a time"
        )
    if isinstance(event, TrialStarted):
        return f"trial {event.trial} started: {short_params(event.params)}"
    if isinstance(event, EpochDone):
        return f"trial {event.trial} fold {event.fold} epoch {event.epoch}: {metric} {event.value:.4f}"
    if isinstance(event, FoldDone):
        return f"trial {event.trial} fold {event.fold} done: mean {metric} of its folds so far {event.mean:.4f}"
    if isinstance(event, TrialFinished):
        took = f" in {clock(event.seconds)}" if event.seconds is not None else ""
        if event.state == "complete" and event.value is not None:
            std = f" (cv std {event.cv_std:.4f})" if event.cv_std is not None else ""
            outcome = f"complete: {metric} {event.value:.4f}{std}{took}"
        else:
            outcome = f"{'failed' if event.state == 'fail' else event.state}{took}: {event.reason or 'no reason given'}"
        best = f"trial {event.best_trial} ({event.best_value:.4f})" if event.best_value is not None else "none yet"
        return f"trial {event.trial} {outcome}; best so far: {best}"
    if isinstance(event, SweepFinished):
        best = (
            f"best trial {event.best_trial}: {metric} {event.best_value:.4f}"
            if event.best_value is not None
            else "no complete trial"
        )
        running = f", {event.running} running elsewhere or cut short" if event.running else ""
        counts = f"{event.complete} complete, {event.pruned} pruned, {event.failed} failed{running}"
        return f"sweep stopped: {counts}; {best}"
    return None


class PlainView:
    """One line per event on `stream`, prefixed with the time since the sweep started (for logs and CI)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.state, self.lock = stream, SweepState(), threading.Lock()

    def emit(self, event: SweepEvent) -> None:
        with self.lock:
            self.state.apply(event)
            metric = self.state.start.metric if self.state.start is not None else "value"
            line = describe(event, metric)
            if line is not None:
                self.stream.write(f"[{clock(self.state.elapsed(event.time)):>7}] {line}\n")
                self.stream.flush()


class JsonView:
    """One event record per line on `stream` (`training.hpo.events.parse_event` reads them back)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.lock = stream, threading.Lock()

    def emit(self, event: SweepEvent) -> None:
        with self.lock:
            self.stream.write(event.model_dump_json() + "\n")
            self.stream.flush()
