"""Progress bars for epochs and steps, drawn from `train_model`'s callbacks; in a log (not a terminal), one plain
line per evaluation instead, as `training hpo run` prints one per event."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from training.core.callbacks import Callback, TrainerState
from training.core.run_metrics import Evaluation


class ProgressBar(Callback):
    """A rich progress bar over optimizer steps, with the latest loss and validation metric; on a `stream` that is
    not a terminal, one line per evaluation."""

    def __init__(self, metric: str, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.metric, self.enabled, self.stream = metric, enabled, stream or sys.stdout
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(self, state: TrainerState) -> None:
        if not self.enabled or not self.stream.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} {task.fields[metric]}"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train",
            total=state.total_steps,
            completed=state.global_step,
            epoch=state.epoch + 1,
            epochs=state.num_epochs,
            loss="-",
            metric="",
        )

    def on_step_end(self, state: TrainerState) -> None:
        if self._progress is not None:
            loss = f"{state.loss:.4f}" if state.loss is not None else "-"
            self._progress.update(self._task, completed=state.global_step, epoch=state.epoch + 1, loss=loss)

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        if self._progress is not None:
            self._progress.update(self._task, metric=f"| {self.metric} {evaluation.score(self.metric):.4f}")
        elif self.enabled:  # a log: one line per evaluation
            loss = f"{state.loss:.4f}" if state.loss is not None else "-"
            self.stream.write(
                f"epoch {state.epoch + 1}/{state.num_epochs} step {state.global_step}/{state.total_steps}: "
                f"train loss {loss}, {self.metric} {evaluation.score(self.metric):.4f}\n"
            )
            self.stream.flush()

    def on_train_end(self, state: TrainerState) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
