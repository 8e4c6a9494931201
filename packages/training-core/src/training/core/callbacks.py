"""Progress and control hooks of `train_model`: the CLI draws bars with them, HPO reports and prunes."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.core.run_metrics import Evaluation, HistoryEntry, PrecisionCheck


@dataclass
class TrainerState:
    """Where training stands; callbacks read it and may set `should_stop`: the run ends once the weights trained since
    its last evaluation are evaluated (under torchrun, set in `on_step_end`, the ranks agree a step later: one more
    step trains, and `on_step_end` is called once more)."""

    epoch: int = 0
    global_step: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    num_epochs: int = 0
    loss: float | None = None
    learning_rate: float | None = None  # the rate the last step applied (the schedule's next one is the step after's)
    best_metric: float | None = None
    best_epoch: int | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    should_stop: bool = False
    precision_check: PrecisionCheck | None = None  # `precision: auto`'s bf16 check, once made (or taken: `train_model`)
    rank: int = 0  # of this process among `world_size` under torchrun
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the one process (rank 0) that writes the run's files."""
        return self.rank == 0


class Callback:
    """Base class: override the hooks you need. Raising from a hook stops training (e.g. a pruned trial). Under
    torchrun every rank calls the hooks: one that writes a file or prints should do so only where `state.is_main`."""

    def on_train_begin(self, state: TrainerState) -> None:
        """Training is about to start (or resume) with `state.total_steps` optimizer steps."""

    def on_step_end(self, state: TrainerState) -> None:
        """One optimizer step finished; `state.loss` is its training loss."""

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        """An evaluation finished on the validation split (`evaluation.score(name)` reads one metric)."""

    def on_train_end(self, state: TrainerState) -> None:
        """Training finished (completed or stopped early)."""
