"""kill -9 of a training run in the middle of an epoch and in the middle of a checkpoint write, then resume.

After the kill the run folder holds only whole files (a half-written checkpoint stays in a hidden staging folder, which
the resumed run removes); the resumed run continues from its last checkpoint, and since a CPU resume is exact, its
metrics history equals that of the same run uninterrupted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from training.config import build_training_config
from training.execution.job_spec import JobSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    history: Callable[[Path], list[dict]],
    training_config: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> list[dict]:
    """The metrics history of the run, uninterrupted."""
    run = tmp_path_factory.mktemp("reference") / "run"
    completed = run_cli("train", "--config-dir", training_config, "--output", run, "--quiet")
    assert completed.returncode == 0, completed.stderr
    return history(run)


@pytest.fixture
def assert_resumed_exactly(
    history: Callable[[Path], list[dict]], assert_readable: Callable[..., int], reference: list[dict]
) -> Callable[[Path, subprocess.CompletedProcess[str]], None]:
    """`check(run, completed)`: the resume succeeded from a checkpoint, to the reference history, leaving no staging."""

    def check(run: Path, completed: subprocess.CompletedProcess[str]) -> None:
        assert completed.returncode == 0, completed.stderr
        assert "resuming at epoch" in (run / "train.log").read_text(encoding="utf-8")
        assert history(run) == reference
        hidden = [path.name for path in run.iterdir() if path.name.startswith(".") and path.name != ".writer.lock"]
        assert not hidden, "staging left behind"
        assert not (run / "checkpoint").exists()
        assert_readable(run, staging=True)

    return check


def checkpoint_half_written(run: Path) -> bool:
    """A checkpoint exists and the next one is being written: its staging folder already holds files."""
    try:
        return (run / "checkpoint").is_dir() and any(any(staging.iterdir()) for staging in run.glob(".checkpoint.*"))
    except FileNotFoundError:  # the staging folder was swapped in while we looked
        return False


def saved_progress(run: Path) -> dict[str, Any]:
    return json.loads((run / "checkpoint" / "trainer_state.json").read_text(encoding="utf-8"))


def test_kill_9_mid_epoch_then_resume(
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    history: Callable[[Path], list[dict]],
    assert_readable: Callable[..., int],
    assert_resumed_exactly: Callable[[Path, subprocess.CompletedProcess[str]], None],
    training_config: Path,
    reference: list[dict],
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """`training train` killed mid-epoch resumes from its last checkpoint to the uninterrupted run's history."""
    run = tmp_path / "run"
    child = spawn(training_command("train", "--config-dir", training_config, "--output", run, "--quiet"), "train")
    child.kill_9_while(lambda: len(history(run)) == 2, "the second evaluation (step 10 of the first epoch)")
    progress = saved_progress(run)
    assert (progress["next_epoch"], progress["next_batch"]) == (0, 10), "not killed in the middle of epoch 1"
    assert history(run) == reference[:2]
    record_figure("files read back after the kill", assert_readable(run))

    assert_resumed_exactly(run, run_cli("train", "--config-dir", training_config, "--output", run, "--quiet"))
    record_figure("evaluations equal to the uninterrupted run", len(reference))


def test_kill_9_mid_checkpoint_write_then_resume(
    spawn: Callable[..., Any],
    env: dict[str, str],
    history: Callable[[Path], list[dict]],
    assert_readable: Callable[..., int],
    assert_resumed_exactly: Callable[[Path, subprocess.CompletedProcess[str]], None],
    training_config: Path,
    reference: list[dict],
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """The job runner killed while writing a checkpoint keeps the previous one whole and resumes to the same history."""
    run = tmp_path / "run"
    config = build_training_config(None, training_config)
    job = JobSpec(job_id="reliability", config=config, data_path=config.data.path, output_dir=str(run))
    runner = [sys.executable, "-m", "training.execution.runner", str(job.save(tmp_path / "job.json"))]
    child = spawn(runner, "runner")
    child.kill_9_while(lambda: checkpoint_half_written(run), "a checkpoint written while an earlier one exists")
    (staging,) = run.glob(".checkpoint.*")
    assert any(staging.iterdir()), "the kill did not land inside the checkpoint write"
    step = saved_progress(run)["global_step"]
    assert step % 5 == 0 and history(run) == reference[: step // 5]
    record_figure("killed while writing the checkpoint after step", step + 5)
    assert_readable(run)

    assert_resumed_exactly(run, subprocess.run(runner, capture_output=True, text=True, env=env, timeout=300))
