"""TensorBoard event files of a run (`tracking.tensorboard: true`): train loss, learning rate and validation metrics
per optimizer step in `RUN/tensorboard/`, so a run is watched where teams already look (`tensorboard --logdir`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.common.optional import require
from training.config.schema import TrackingConfig
from training.core.callbacks import Callback, TrainerState
from training.core.run_metrics import Evaluation

TENSORBOARD_DIR = "tensorboard"


class TensorBoardCallback(Callback):
    """Writes `train/loss`, `train/learning_rate` each step and `validation/<metric>` each evaluation."""

    def __init__(self, log_dir: str | Path) -> None:
        require("tensorboard", "tracking.tensorboard")  # torch's SummaryWriter needs it; say so before training
        self.log_dir = Path(log_dir)
        self.writer: Any = None

    def on_train_begin(self, state: TrainerState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=state.global_step or None)

    def on_step_end(self, state: TrainerState) -> None:
        if state.loss is not None:
            self.writer.add_scalar("train/loss", state.loss, state.global_step)
        if state.learning_rate is not None:
            self.writer.add_scalar("train/learning_rate", state.learning_rate, state.global_step)

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        for name, value in evaluation.scalars().items():
            self.writer.add_scalar(f"validation/{name}", float(value), state.global_step)
        self.writer.flush()

    def on_train_end(self, state: TrainerState) -> None:
        self.writer.close()  # opened in `on_train_begin`, which `train_model` always calls first


def tracking_callbacks(tracking: TrackingConfig, run_dir: Path, is_main: bool) -> list[Callback]:
    """The callbacks a run's `tracking` section asks for; only the main process of a DDP run writes."""
    if not (tracking.tensorboard and is_main):
        return []
    return [TensorBoardCallback(run_dir / TENSORBOARD_DIR)]
