"""A full disk (a small tmpfs mounted for the test): writes fail with a clear error and earlier results stay readable.

Mounting needs root (or CAP_SYS_ADMIN); elsewhere these tests are skipped and say so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from training.common.atomic import atomic_write_json, staging_leftovers


def mount_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True, timeout=30
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a {size} tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB file system: room for a tiny BERT's model and one checkpoint, not for a second checkpoint."""
    yield from mount_tmpfs(tmp_path / "disk", "3m")


def test_an_atomic_write_that_fills_the_disk_keeps_the_old_file(small_disk: Path) -> None:
    """atomic_write_json of a value larger than the disk raises ENOSPC; the old file is intact, no temp file left."""
    target = small_disk / "results.json"
    atomic_write_json(target, {"entity_f1": 0.91})
    with pytest.raises(OSError) as caught:
        atomic_write_json(target, {"padding": "x" * 4 * 2**20})
    assert caught.value.errno == errno.ENOSPC
    assert json.loads(target.read_text(encoding="utf-8")) == {"entity_f1": 0.91}
    assert staging_leftovers(target) == []
    assert [path.name for path in small_disk.iterdir()] == ["results.json"]


@pytest.mark.slow
def test_training_into_a_full_disk_fails_with_one_line_and_keeps_its_results(
    small_disk: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    history: Callable[[Path], list[dict]],
    assert_readable: Callable[..., int],
    training_config: Path,
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """`training train` that fills the disk exits 1 with one line naming the folder; what it wrote before reads back."""
    run = small_disk / "run"
    failed = run_cli("train", "--config-dir", training_config, "--output", run, "--quiet")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith(f"training train: error: {run}/")
    assert "cannot write the " in line and "MiB free on its disk" in line
    record_figure("error", line.split(f"{small_disk}/")[1].split(" (")[0])
    assert json.loads((run / "metrics.json").read_text(encoding="utf-8"))["status"] == "running"
    kept = history(run)
    assert kept, "no evaluation was recorded before the disk filled"
    record_figure("evaluations kept", len(kept))
    assert assert_readable(run) >= 5  # config, metrics, model and checkpoint files
    assert not [path.name for path in run.iterdir() if path.name.startswith(".") and path.name != ".writer.lock"]

    moved = tmp_path / "run"  # space found elsewhere: the run continues from its checkpoint
    shutil.copytree(run, moved)
    resumed = run_cli("train", "--config-dir", training_config, "--output", moved, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch" in (moved / "train.log").read_text(encoding="utf-8")
    assert history(moved)[: len(kept)] == kept


@pytest.fixture
def study_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB file system: room for a study of one trial."""
    yield from mount_tmpfs(tmp_path / "disk", "16m")


@pytest.mark.parametrize("budget", [[], ["--n-trials", "4"]], ids=["its-budget", "a-new-budget"])
def test_a_sweep_resumed_on_a_full_disk_stops_in_one_line_naming_its_storage(
    budget: list[str],
    study_disk: Path,
    started_study: Callable[..., Any],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """`training hpo resume` with no room for the next trial: exit 1, one line naming the storage and the database's
    reason (a new budget was an internal error quoting Optuna's "invalid data in the commit"); the study keeps its
    trial."""
    study_dir = study_disk / "study"
    started_study(study_dir, n_trials=3)
    filler = os.open(study_disk / "filler", os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):  # ENOSPC: the disk is full
        while True:
            os.write(filler, bytes(4096))
    os.close(filler)

    failed = run_cli("hpo", "resume", "--study-dir", study_dir, *budget, "--quiet")
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        f"training hpo resume: error: storage 'sqlite:///{study_dir}/study.db': cannot record the sweep "
        "(OperationalError: database or disk is full)"
    )
    (study_disk / "filler").unlink()
    trials = optuna.load_study(study_name="quick", storage=f"sqlite:///{study_dir}/study.db").get_trials()
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE]
