"""Checkpoints: a saved state restores as it was; a damaged progress record is refused, naming the checkpoint."""

import json
import re

import pytest
import torch

from training.common.errors import InputError
from training.core.checkpoint import STATE_FILE, Progress, load_checkpoint, rng_state, save_checkpoint
from training.core.run_metrics import HistoryEntry, PrecisionCheck


def _training_state() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    return model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def test_a_checkpoint_restores_its_progress_record(tmp_path):
    model, optimizer, scheduler = _training_state()
    scores = dict.fromkeys(("entity_precision", "entity_recall", "macro_precision", "macro_recall", "macro_f1"), 0.5)
    entry = HistoryEntry(epoch=1, step=3, entity_f1=0.5, token_accuracy=0.9, support=4, **scores)
    progress = Progress(next_epoch=1, global_step=3, best_metric=0.5, history=(entry,))
    save_checkpoint(tmp_path / "checkpoint", model, optimizer, scheduler, None, progress, [rng_state()])

    assert load_checkpoint(tmp_path / "checkpoint", model, optimizer, scheduler, None) == progress


def test_a_precision_switch_is_kept_and_a_checkpoint_from_before_the_check_loads(tmp_path):
    model, optimizer, scheduler = _training_state()
    folder = tmp_path / "checkpoint"
    check = PrecisionCheck(bf16_f1=0.5, fp32_f1=0.6, switched=True)
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(precision_check=check), [rng_state()])
    assert load_checkpoint(folder, model, optimizer, scheduler, None).precision_check == check

    (folder / STATE_FILE).write_text('{"next_epoch": 1, "global_step": 3, "nonfinite_in_row": 0}')  # older shape
    assert load_checkpoint(folder, model, optimizer, scheduler, None) == Progress(next_epoch=1, global_step=3)


def test_a_checkpoint_of_another_process_count_is_refused(tmp_path):
    model, optimizer, scheduler = _training_state()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(world_size=2), [rng_state(), rng_state()])
    assert load_checkpoint(folder, model, optimizer, scheduler, None, rank=1, world_size=2).world_size == 2

    expected = f"{folder}: a checkpoint of 2 process(es), resumed with 1; resume it with the same count"
    with pytest.raises(InputError, match=f"^{re.escape(expected)}"):
        load_checkpoint(folder, model, optimizer, scheduler, None)


def test_a_checkpoint_of_other_steps_per_epoch_is_refused(tmp_path):
    # Padding the last round of a torchrun epoch added a step to it: an older checkpoint resumed on the new count and
    # shifted the schedule. One of several processes that did not record its count cannot be told apart.
    model, optimizer, scheduler = _training_state()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(steps_per_epoch=3), [rng_state()])
    assert load_checkpoint(folder, model, optimizer, scheduler, None, steps_per_epoch=3).steps_per_epoch == 3

    expected = f"{folder}: a checkpoint of 3 optimizer steps per epoch, resumed with 4; delete the folder"
    with pytest.raises(InputError, match=f"^{re.escape(expected)}"):
        load_checkpoint(folder, model, optimizer, scheduler, None, steps_per_epoch=4)
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(world_size=2), [rng_state(), rng_state()])
    assert load_checkpoint(folder, model, optimizer, scheduler, None, rank=1, world_size=2).world_size == 2
    with pytest.raises(InputError, match="did not record its optimizer steps per epoch, resumed with 4"):
        load_checkpoint(folder, model, optimizer, scheduler, None, rank=1, world_size=2, steps_per_epoch=4)
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(world_size=1), [rng_state()])
    assert load_checkpoint(folder, model, optimizer, scheduler, None, steps_per_epoch=4).steps_per_epoch is None


@pytest.mark.parametrize(
    ("record", "batches_per_step"),
    [
        ({"next_epoch": 2, "global_step": 7, "skipped_steps": 1, "world_size": 2}, 1),  # 2 epochs of 4 steps
        ({"next_epoch": 2, "next_batch": 4, "global_step": 10, "world_size": 2}, 2),  # then 2 steps of 2 batches
        ({"next_epoch": 2, "global_step": 8}, 1),  # recorded neither its processes nor its steps
    ],
)
def test_a_checkpoint_of_several_processes_without_its_steps_resumes_when_its_counts_agree(
    tmp_path, record, batches_per_step
):
    """A torchrun checkpoint of a release that did not record its steps per epoch was refused even when the steps its
    finished epochs took were those of the resumed run."""
    model, optimizer, scheduler = _training_state()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(), [rng_state(), rng_state()])
    (folder / STATE_FILE).write_text(json.dumps(record))  # as that release wrote it
    resume = {"rank": 1, "world_size": 2, "batches_per_step": batches_per_step}

    assert load_checkpoint(folder, model, optimizer, scheduler, None, steps_per_epoch=4, **resume).global_step > 0
    expected = f"{folder}: a checkpoint of 4 optimizer steps per epoch, resumed with 5; delete the folder"
    with pytest.raises(InputError, match=f"^{re.escape(expected)}"):
        load_checkpoint(folder, model, optimizer, scheduler, None, steps_per_epoch=5, **resume)
    (folder / STATE_FILE).write_text(json.dumps({**record, "global_step": record["global_step"] + 1}))  # no count fits
    with pytest.raises(InputError, match="did not record its optimizer steps per epoch, resumed with 4"):
        load_checkpoint(folder, model, optimizer, scheduler, None, steps_per_epoch=4, **resume)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"global_step": 3', "not a readable checkpoint progress record"),
        ('{"global_step": "three"}', "global_step: expected a valid integer"),
        ('{"global_step": 3, "epochs_left": 1}', "epochs_left: unknown key"),
    ],
)
def test_a_damaged_progress_record_is_an_input_error_naming_the_checkpoint(tmp_path, content, problem):
    model, optimizer, scheduler = _training_state()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(), [rng_state()])
    (folder / STATE_FILE).write_text(content)

    expected = f"{folder}: corrupt or incomplete checkpoint (ConfigError: {folder / STATE_FILE}: {problem}"
    with pytest.raises(InputError, match=f"^{re.escape(expected)}") as raised:
        load_checkpoint(folder, model, optimizer, scheduler, None)
    assert str(raised.value).endswith("delete the folder to restart the run from scratch")


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt"])
@pytest.mark.parametrize("kept", [0.0, 0.5])
def test_a_truncated_weights_or_optimizer_file_is_an_input_error_naming_the_checkpoint(tmp_path, name, kept):
    # An empty optimizer.pt (its write cut short) ended the run as an internal EOFError
    model, optimizer, scheduler = _training_state()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, scheduler, None, Progress(), [rng_state()])
    damaged = folder / name
    damaged.write_bytes(damaged.read_bytes()[: int(damaged.stat().st_size * kept)])

    with pytest.raises(InputError, match=f"^{re.escape(f'{folder}: corrupt or incomplete checkpoint (')}") as raised:
        load_checkpoint(folder, model, optimizer, scheduler, None)
    assert str(raised.value).endswith("delete the folder to restart the run from scratch")
