"""kill -9 of one rank of a two-process torchrun job: torchrun stops the other rank and fails; run again, the job
resumes from rank 0's last checkpoint, every rank restoring its own random state, to the history of a job that was
never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from training.config import build_training_config
from training.execution.backends import runner_command
from training.execution.job_spec import JobSpec

pytestmark = pytest.mark.slow


def ranks(launcher: int) -> dict[int, int]:
    """RANK -> pid of the processes torchrun (`launcher`) started."""
    children = []
    for task in Path(f"/proc/{launcher}/task").iterdir():
        children += (task / "children").read_text().split()
    found = {}
    for child in children:
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        rank = next((item[5:] for item in environ if item.startswith(b"RANK=")), None)
        if rank is not None:
            found[int(rank)] = int(child)
    return found


def job(training_config: Path, folder: Path, name: str) -> list[str]:
    """The torchrun command of a two-process job training into `folder / name`."""
    config = build_training_config(None, training_config)
    spec = JobSpec(job_id=name, config=config, data_path=config.data.path, output_dir=str(folder / name))
    return runner_command(spec.save(folder / f"{name}.json"), nproc_per_node=2)


def test_kill_9_of_one_rank_then_resume(
    spawn: Callable[..., Any],
    env: dict[str, str],
    history: Callable[[Path], list[dict]],
    assert_readable: Callable[..., int],
    training_config: Path,
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """Rank 1 killed: the job fails at once, keeps rank 0's checkpoint and resumes to the uninterrupted history."""
    reference = subprocess.run(
        job(training_config, tmp_path, "reference"), capture_output=True, text=True, env=env, timeout=300
    )
    assert reference.returncode == 0, reference.stderr[-3000:]

    run = tmp_path / "killed"
    command = job(training_config, tmp_path, "killed")
    launcher = spawn(command, "torchrun")
    launcher.wait_for(lambda: len(history(run)) == 2, "the second evaluation")
    pids = ranks(launcher.pid)
    assert sorted(pids) == [0, 1]
    os.kill(pids[1], signal.SIGKILL)
    assert launcher.finish(timeout=120) == 1
    assert "Signal 9 (SIGKILL) received by PID" in launcher.output()
    record_figure("evaluations kept from before the kill", len(history(run)))
    assert_readable(run)

    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at epoch" in (run / "train.log").read_text(encoding="utf-8")
    assert history(run) == history(tmp_path / "reference")
    assert not (run / "checkpoint").exists()
    assert_readable(run, staging=True)
