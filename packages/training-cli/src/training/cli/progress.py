"""Progress bars for epochs and steps, drawn from `train_model`'s callbacks."""

from __future__ import annotations

from typing import Any

from training.core.callbacks import Callback, TrainerState


class ProgressBar(Callback):
    """A rich progress bar over optimizer steps, with the latest loss and validation metric."""

    def __init__(self, metric: str, enabled: bool = True) -> None:
        self.metric, self.enabled = metric, enabled
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(self, state: TrainerState) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} {task.fields[metric]}"),
            TimeRemainingColumn(),
            transient=False,
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

    def on_evaluate(self, state: TrainerState, metrics: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, metric=f"| {self.metric} {metrics[self.metric]:.4f}")

    def on_train_end(self, state: TrainerState) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
