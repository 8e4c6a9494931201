"""`ProgressBar` on a stream that is not a terminal: one plain line per evaluation, nothing more."""

from __future__ import annotations

import io

from training.cli.progress import ProgressBar
from training.core.callbacks import TrainerState
from training.core.run_metrics import Evaluation


def scores(f1: float) -> Evaluation:
    """An evaluation whose entity F1 is `f1` (the other scores do not matter here)."""
    names = ("entity_precision", "entity_recall", "macro_precision", "macro_recall", "macro_f1", "token_accuracy")
    return Evaluation(entity_f1=f1, support=1, **dict.fromkeys(names, 0.0))


def test_a_log_gets_one_plain_line_per_evaluation() -> None:
    log = io.StringIO()
    bar = ProgressBar("entity_f1", stream=log)
    state = TrainerState(epoch=0, global_step=0, total_steps=8, steps_per_epoch=4, num_epochs=2)
    bar.on_train_begin(state)
    for step in range(1, 9):
        state.global_step, state.epoch, state.loss = step, (step - 1) // 4, 1.0 / step
        bar.on_step_end(state)
        if step % 4 == 0:
            bar.on_evaluate(state, scores(step / 10))
    bar.on_train_end(state)
    assert log.getvalue().splitlines() == [
        "epoch 1/2 step 4/8: train loss 0.2500, entity_f1 0.4000",
        "epoch 2/2 step 8/8: train loss 0.1250, entity_f1 0.8000",
    ]


def test_a_disabled_bar_writes_nothing() -> None:
    log = io.StringIO()
    bar = ProgressBar("entity_f1", enabled=False, stream=log)
    state = TrainerState(total_steps=1, num_epochs=1)
    bar.on_train_begin(state)
    bar.on_evaluate(state, scores(0.5))
    assert log.getvalue() == ""
