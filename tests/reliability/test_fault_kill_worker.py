"""kill -9 of one of two HPO workers sharing a study: the other finds the dead worker's trial, fails it, runs its
parameters again and finishes the study's budget; the study ends with exactly its budget of complete trials."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from training.hpo import load_study

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]
N_TRIALS = 12


def running_trial_of(study_dir: Path, pid: int) -> int | None:
    """The trial that process `pid` is training now (first fold started, second not finished), if any."""
    for fold in study_dir.glob("trials/*/fold-0/fold.json"):
        try:
            owner = json.loads(fold.read_text(encoding="utf-8"))["pid"]
        except (OSError, ValueError):
            continue
        last = fold.parent.parent / "fold-1" / "metrics.json"
        done = last.is_file() and '"completed"' in last.read_text(encoding="utf-8", errors="replace")
        if owner == pid and not done:
            return int(fold.parent.parent.name)
    return None


def test_kill_9_of_one_worker_leaves_the_other_to_finish(
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    assert_readable: Callable[..., int],
    started_study: Callable[..., Any],
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """One of two workers killed mid-trial: its trial is failed and re-run by another, the budget met exactly."""
    study_dir = tmp_path / "study"
    started_study(study_dir, N_TRIALS)
    worker = training_command("hpo", "worker", "--study-dir", study_dir, "--inprocess")
    doomed, survivor = spawn(worker, "doomed"), spawn(worker, "survivor")
    doomed.kill_9_while(lambda: running_trial_of(study_dir, doomed.pid) is not None, "a trial of the doomed worker")
    killed = running_trial_of(study_dir, doomed.pid)
    assert survivor.finish() == 0, survivor.output()[-3000:]
    left = [trial.number for trial in load_study(study_dir).trials if trial.state == TrialState.RUNNING]
    record_figure("trials the survivor left running", len(left))
    # Only if the survivor filled the budget before the kill is the dead worker's trial left for a resume to find.
    resumed = run_cli("hpo", "resume", "--study-dir", study_dir, "--inprocess")
    assert resumed.returncode == 0, resumed.stderr

    study = load_study(study_dir)
    assert [trial.number for trial in study.trials] == list(range(len(study.trials)))
    complete = [trial for trial in study.trials if trial.state == TrialState.COMPLETE]
    assert len(complete) == N_TRIALS
    victim = study.trials[killed]
    assert victim.state == TrialState.FAIL and victim.user_attrs["owner"]["pid"] == doomed.pid
    (rerun,) = [trial for trial in complete if trial.user_attrs.get("retry_of") == killed]
    assert rerun.params == victim.params and rerun.user_attrs["owner"]["pid"] != doomed.pid
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE or trial.number == killed or "skipped" in trial.user_attrs
    assert_readable(study_dir)
    owners = [trial.user_attrs["owner"]["pid"] for trial in complete]
    record_figure("complete trials by the survivor", owners.count(survivor.pid))
