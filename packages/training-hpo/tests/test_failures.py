"""A failed trial is a failed trial, not a failed sweep: each kind of failure, with real trial processes."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import TrialState

from training.config import HPOConfig
from training.core.run_folder import RunFolder
from training.hpo import load_study, run_local_hpo_sweep
from training.hpo.failures import SweepStopped
from training.hpo.report import trials_table


def kill_first_trial_process(study_dir: Path, done: threading.Event) -> None:
    """kill -9 the process of trial 0 as soon as it has started its first fold."""
    record = study_dir / "trials" / "0" / "fold-0" / "fold.json"
    while not done.is_set():
        try:
            os.kill(json.loads(record.read_text(encoding="utf-8"))["pid"], signal.SIGKILL)
            return
        except (OSError, ValueError):
            time.sleep(0.01)


@pytest.mark.slow
def test_a_killed_trial_process_fails_its_trial_and_the_sweep_goes_on(
    quick_settings: Callable[..., HPOConfig], config_dir: Path, tmp_path: Path
) -> None:
    done = threading.Event()
    killer = threading.Thread(target=kill_first_trial_process, args=(tmp_path, done))
    killer.start()
    try:
        study = run_local_hpo_sweep("tiny-bert", quick_settings("killed"), config_dir=config_dir, study_dir=tmp_path)
    finally:
        done.set()
        killer.join()
    assert [trial.state for trial in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    reason = study.trials[0].user_attrs["fail_reason"]
    assert "trial 0: its process ended without a result: killed by signal SIGKILL (the system may" in reason
    assert "\n" not in reason
    table = trials_table(study)
    assert "SIGKILL" in table.splitlines()[1] and "fail reason" in table.splitlines()[0]
    assert (tmp_path / "best_config.json").is_file()


def test_a_nan_learning_rate_fails_its_trial_only(
    quick_settings: Callable[..., HPOConfig], config_dir: Path, tmp_path: Path
) -> None:
    run = {"config_dir": config_dir, "study_dir": tmp_path, "isolation": "inprocess", "storage": "journal"}
    study = run_local_hpo_sweep("tiny-bert", quick_settings("nan", n_trials=1), **run)
    study.enqueue_trial({"training.learning_rate": math.nan})
    study = run_local_hpo_sweep("tiny-bert", quick_settings("nan", n_trials=1), n_trials=2, **run)
    states = [trial.state for trial in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].user_attrs["fail_reason"] == "ValueError: `nan` is invalid value."


@pytest.mark.parametrize("isolation", ["subprocess", "inprocess"])
def test_failures_in_a_row_stop_the_sweep_with_one_line(
    quick_settings: Callable[..., HPOConfig], config_dir: Path, tmp_path: Path, isolation: str
) -> None:
    (tmp_path / "cache").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache").write_text("not a folder: every trial process fails writing its features\n")
    hpo = quick_settings("broken", n_trials=5, max_failed_trials=2)
    with pytest.raises(SweepStopped) as stopped:
        run_local_hpo_sweep("tiny-bert", hpo, config_dir=config_dir, study_dir=tmp_path, isolation=isolation)
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("the sweep stopped: 2 trials failed in a row (hpo.max_failed_trials 2); last reason:")
    study = load_study(tmp_path)
    assert [trial.state for trial in study.trials] == [TrialState.FAIL] * 2
    cache = tmp_path / "cache"
    for trial in study.trials:  # an input error says it all in one line (an unexpected one points to its traceback)
        reason = trial.user_attrs["fail_reason"]
        assert reason.endswith(f"lies inside the file {cache}; expected the path of a file to write")


@pytest.fixture
def memory_for_two_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A GPU that holds micro-batches of at most 2 rows: a larger one raises torch's CUDA out-of-memory error, as the
    caching allocator does (these machines have no GPU). Returns the micro-batch sizes that trained."""
    import torch

    from training.core import optimization

    trained: list[int] = []
    backward_group = optimization.backward_group

    def on_a_small_gpu(state: object, batches: list[dict[str, torch.Tensor]], *rest: object) -> object:
        rows = max(len(batch["input_ids"]) for batch in batches)
        if rows > 2:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {rows * 64} MiB")
        trained.append(rows)
        return backward_group(state, batches, *rest)

    monkeypatch.setattr(optimization, "backward_group", on_a_small_gpu)
    return trained


@pytest.mark.parametrize("retry", [True, False])
def test_a_cuda_out_of_memory_trial_is_retried_once_at_half_batch_size(
    quick_settings: Callable[..., HPOConfig],
    config_dir: Path,
    tmp_path: Path,
    memory_for_two_rows: list[int],
    retry: bool,
) -> None:
    space = {"learning_rate": {"type": "fixed", "value": 5e-3}, "batch_size": {"type": "fixed", "value": 4}}
    space |= {"num_epochs": {"type": "fixed", "value": 1}}
    hpo = quick_settings("oom", n_trials=1, oom_retry=retry, max_failed_trials=1, search_space=space)
    run = {"config_dir": config_dir, "study_dir": tmp_path, "isolation": "inprocess", "storage": "journal"}
    if not retry:
        with pytest.raises(SweepStopped, match="1 trial failed in a row"):
            run_local_hpo_sweep("tiny-bert", hpo, **run)
        (trial,) = load_study(tmp_path).trials
        assert trial.state == TrialState.FAIL and not memory_for_two_rows and "oom_retry" not in trial.user_attrs
        reason = trial.user_attrs["fail_reason"]
        assert re.fullmatch(r"trial 0: CUDA out of memory \(CUDA out of memory\. Tried to allocate \d+ MiB\)", reason)
        return
    (trial,) = run_local_hpo_sweep("tiny-bert", hpo, **run).trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["oom_retry"] == {"training.batch_size": 2, "training.gradient_accumulation_steps": 2}
    assert memory_for_two_rows and max(memory_for_two_rows) == 2
    retried = RunFolder(tmp_path / "trials" / "0" / "fold-0").read_config()
    assert retried is not None
    assert (retried.training.batch_size, retried.training.gradient_accumulation_steps) == (2, 2)


def test_an_error_whose_traceback_cannot_be_written_is_still_reported_in_one_line(tmp_path: Path) -> None:
    from training.hpo.processes import _unexpected

    (tmp_path / "trial").write_text("a file where the trial's folder would be\n")
    try:
        raise ValueError("boom")
    except ValueError as error:
        failure = _unexpected("trial 3", error, tmp_path / "trial" / "error.log")
    assert str(failure).startswith("trial 3 failed: ValueError('boom') (its traceback could not be written: ")
    assert "\n" not in str(failure)


def test_an_error_that_cannot_be_pickled_reaches_the_parent_as_a_training_error(tmp_path: Path) -> None:
    import multiprocessing

    from training.common.errors import TrainingError
    from training.hpo.processes import _send_outcome

    class LocalError(OSError):  # a class defined in a function cannot be pickled
        pass

    ours, theirs = multiprocessing.Pipe()
    try:
        raise LocalError("disk gone")
    except LocalError as error:
        _send_outcome(theirs, "refit", error, tmp_path / "error.log", (OSError,))
    kind, sent = ours.recv()
    assert kind == "error" and type(sent) is TrainingError
    assert str(sent) == f"refit failed: LocalError('disk gone') (traceback in {tmp_path / 'error.log'})"
    assert "LocalError: disk gone" in (tmp_path / "error.log").read_text(encoding="utf-8")
