"""The live view of a sweep on a terminal (rich): running and finished trials, the best, the time used and left;
`watching` picks a command's view (live, plain lines or JSON lines) and silences Optuna's per-trial log lines."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Literal, TextIO

import optuna
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from training.common.plural import counted
from training.hpo.events import EventSink, SweepEvent
from training.hpo.watch import JsonView, PlainView, RunningTrial, SweepState, clock, short_params

Mode = Literal["live", "plain", "json", "quiet"]
FINISHED_SHOWN = 12  # the latest finished trials in the table (the summary after the sweep: `cli.SHOWN_TRIALS`)


class LiveView:
    """A rich renderable of the sweep's state that is also the sink of its events (thread-safe)."""

    def __init__(self) -> None:
        self.state, self.lock = SweepState(), threading.RLock()

    @classmethod
    @contextlib.contextmanager
    def on(cls, stream: TextIO | None = None, console: Console | None = None) -> Iterator[LiveView]:
        """Show the view on `console` (or a console on `stream`), refreshed four times a second, while in use."""
        view = cls()
        with Live(view, console=console or Console(file=stream), refresh_per_second=4, transient=False):
            yield view

    def emit(self, event: SweepEvent) -> None:
        with self.lock:
            self.state.apply(event)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self.lock:
            yield self.render()

    def render(self, now: float | None = None) -> Group:
        """The view as it stands at `now` (default: the time of the call)."""
        now = now if now is not None else time.time()
        state = self.state
        metric = state.start.metric if state.start is not None else "value"
        parts: list[Table | Text] = [self._header(state, now)]
        if state.running:
            parts.append(self._running(state.running, metric, now))
        if state.finished:
            parts.append(self._finished(state, metric))
        best = state.best
        parts.append(
            Text.assemble(("best so far: ", "bold"), f"trial {best[0]}, {metric} {best[1]:.4f}")
            if best is not None
            else Text("best so far: none yet", style="dim")
        )
        return Group(*parts)

    @staticmethod
    def _header(state: SweepState, now: float) -> Text:
        start = state.start
        if start is None:
            return Text("starting the sweep...", style="dim")
        done = start.finished + len(state.finished)
        budget = f"{done}/{start.n_trials} trials" if start.n_trials is not None else counted(done, "trial")
        if start.timeout_s is not None:
            budget += f", time budget {clock(start.timeout_s)}"
        return Text.assemble(
            (f"study {start.study}", "bold"),
            f"  {start.direction} {start.metric}  |  {budget}  |  elapsed {clock(state.elapsed(now))}"
            f"  |  left ~{clock(state.time_left(now))}",
        )

    @staticmethod
    def _running(running: dict[int, RunningTrial], metric: str, now: float) -> Table:
        table = Table(title="running", title_justify="left", expand=False)
        for column in ("trial", "fold", "epoch", "steps", "", "loss", f"last {metric}", "time", "parameters"):
            table.add_column(column, justify="left" if column in ("parameters", "") else "right")
        for trial in sorted(running.values(), key=lambda trial: trial.number):
            step = trial.progress
            table.add_row(
                str(trial.number),
                f"{step.fold + 1}/{step.folds}" if step else "-",
                f"{step.epoch}/{step.epochs}" if step else "-",
                f"{step.step}/{step.steps}" if step else "-",
                ProgressBar(total=max(step.steps, 1), completed=step.step, width=20) if step else "",
                f"{step.loss:.4f}" if step and step.loss is not None else "-",
                f"{trial.last_value:.4f}" if trial.last_value is not None else "-",
                clock(now - trial.started),
                Text(short_params(trial.params)),  # Text: values and reasons are printed as they are, not as markup
            )
        return table

    @staticmethod
    def _finished(state: SweepState, metric: str) -> Table:
        shown = state.finished[-FINISHED_SHOWN:]
        hidden = len(state.finished) - len(shown)
        title = "finished" + (f" (latest {len(shown)} of {len(state.finished)})" if hidden else "")
        table = Table(title=title, title_justify="left")
        for column in ("trial", "state", metric, "cv std", "time", "parameters", "note"):
            table.add_column(column, justify="left" if column in ("state", "parameters", "note") else "right")
        best = state.best
        for event in shown:
            style = "bold green" if best is not None and event.trial == best[0] else None
            table.add_row(
                str(event.trial),
                event.state,
                f"{event.value:.4f}" if event.value is not None else "-",
                f"{event.cv_std:.4f}" if event.cv_std is not None else "-",
                clock(event.seconds),
                Text(short_params(event.params)),
                Text(event.reason or ""),
                style=style,
            )
        return table


@contextlib.contextmanager
def watching(mode: Mode, stream: TextIO) -> Iterator[EventSink | None]:
    """A view of `mode` on `stream` for the duration of a sweep (none when quiet), with Optuna's per-trial log lines
    silenced."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The view has a line saying why a trial failed: Optuna's warning (with the traceback, which the trial's error.log
    # keeps) and our own would say it again.
    failures = [logging.getLogger(name) for name in ("optuna.study._optimize", "training.hpo.failures")]
    levels = [logger.level for logger in failures]
    for logger in failures:
        logger.setLevel(logging.ERROR)
    try:
        if mode == "live":
            with LiveView.on(stream) as view:
                yield view
        else:
            yield None if mode == "quiet" else JsonView(stream) if mode == "json" else PlainView(stream)
    finally:
        optuna.logging.set_verbosity(verbosity)
        for logger, level in zip(failures, levels, strict=True):
            logger.setLevel(level)
