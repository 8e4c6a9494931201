"""Crashes and scale-out, with real processes: kill -9 in the middle of a trial, then resume; two workers, one study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from training.hpo import load_study, run_local_hpo_sweep
from training.hpo.budget import Budget

pytestmark = pytest.mark.slow


def hpo(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "training.cli", "hpo", *map(str, args)]


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)  # the kill must land before the trial's two short folds end


def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_kill_9_mid_trial_then_resume_keeps_finished_trials_and_reruns_the_cut_one(
    config_dir: Path, tmp_path: Path
) -> None:
    study_dir = tmp_path / "study"
    sweep = subprocess.Popen(
        hpo("run", "--config-dir", config_dir, "--hpo", "quick", "--study-dir", study_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    fold = study_dir / "trials" / "1" / "fold-0" / "fold.json"
    wait_for(fold, sweep)
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.communicate(timeout=30)
    before = load_study(study_dir)
    assert [trial.state for trial in before.trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    interrupted = before.trials[1]
    trial_process = json.loads(fold.read_text())["pid"]
    deadline = time.monotonic() + 10
    while running(trial_process) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(trial_process), "the trial process outlived the killed sweep"

    resumed = subprocess.run(hpo("resume", "--study-dir", study_dir), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    after = load_study(study_dir)
    states = [trial.state for trial in after.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert after.trials[0].datetime_complete == before.trials[0].datetime_complete
    assert after.trials[0].value == before.trials[0].value
    rerun = after.trials[2]
    assert rerun.user_attrs["retry_of"] == 1
    assert rerun.params == interrupted.params


def test_two_workers_share_one_budget_without_duplicates(config_dir: Path, tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    study = run_local_hpo_sweep(
        None,
        config_dir / "hpo" / "quick.yaml",
        config_dir=config_dir,
        study_dir=study_dir,
        n_trials=1,
        isolation="inprocess",
    )
    Budget(n_trials=6, timeout_s=None).record(study)
    workers = [
        subprocess.Popen(hpo("worker", "--study-dir", study_dir, "--inprocess"), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=180)
        assert worker.returncode == 0, stderr
    study = load_study(study_dir)
    counted = [trial for trial in study.trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == 6
    numbers = [trial.number for trial in study.trials]
    assert len(numbers) == len(set(numbers))
    for trial in study.trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or "skipped" in trial.user_attrs
    owners = {trial.user_attrs["owner"]["pid"] for trial in counted[1:]}
    assert len(owners) == 2, "both workers should have run trials"
    params = [tuple(sorted(trial.params.items())) for trial in counted]
    assert len(set(params)) == len(params)


def test_a_worker_on_another_host_is_refused_a_file_storage(config_dir: Path, tmp_path: Path) -> None:
    from training.hpo.sweep_settings import SweepSettings

    quick = config_dir / "hpo" / "quick.yaml"
    study = run_local_hpo_sweep(
        "tiny-bert", quick, config_dir=config_dir, study_dir=tmp_path, n_trials=1, isolation="inprocess"
    )
    elsewhere = SweepSettings.load(study).model_copy(update={"machine": "build-7 (boot 00000000)"})
    elsewhere.save(study)  # the study was started on another machine, on this shared folder
    refused = subprocess.run(hpo("worker", "--study-dir", tmp_path), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "is a file, and the study runs on build-7 (boot 00000000)" in line
    assert "use an RDB storage URL (postgresql://... or mysql://...)" in line and "--single-host" in line
    accepted = subprocess.run(
        hpo("worker", "--study-dir", tmp_path, "--single-host"), capture_output=True, text=True, timeout=120
    )
    assert accepted.returncode == 0, accepted.stderr
