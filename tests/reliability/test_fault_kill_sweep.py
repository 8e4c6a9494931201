"""kill -9 of an HPO sweep in the middle of a trial and in the middle of a write to its storage, then resume.

Killed in a trial, the trial's own process ends too and the resume fails the trial and runs its parameters again.
Killed while it writes to the storage (holding the journal file's lock, or with SQLite's rollback journal open), the
storage still opens: SQLite rolls the write back, and Optuna frees the journal lock after its 30 s grace period. In
every case the finished trials are kept as they were, and the study ends with exactly its budget of complete trials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from training.config import BestConfig
from training.hpo import load_study
from training.hpo.checkpoints import best_trial_number

pytestmark = pytest.mark.slow
N_TRIALS = 12


def trial_in_progress(study_dir: Path, number: int) -> bool:
    """Trial `number` has started its first fold and not finished its second."""
    last = study_dir / "trials" / str(number) / "fold-1" / "metrics.json"
    done = last.is_file() and '"completed"' in last.read_text(encoding="utf-8", errors="replace")
    return (study_dir / "trials" / str(number) / "fold-0" / "fold.json").is_file() and not done


def writing(study_dir: Path, marker: str) -> bool:
    """The sweep is past its third trial and writes to its storage now (`marker` exists while it does)."""
    return (study_dir / "trials" / "3").is_dir() and os.path.lexists(study_dir / marker)


def process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def finished(study_dir: Path) -> dict[int, tuple[Any, ...]]:
    """The complete trials of the study: number -> (value, parameters, completion time)."""
    return {
        trial.number: (trial.value, trial.params, trial.datetime_complete)
        for trial in load_study(study_dir).trials
        if trial.state == TrialState.COMPLETE
    }


@pytest.mark.parametrize(
    ("moment", "storage", "isolation"),
    [
        ("trial", "journal", "subprocess"),
        ("study.journal.lock", "journal", "inprocess"),
        ("study.db-journal", "sqlite", "inprocess"),
    ],
    ids=["mid-trial-journal", "mid-write-journal", "mid-write-sqlite"],
)
def test_kill_9_then_resume_keeps_finished_trials_and_the_budget(
    moment: str,
    storage: str,
    isolation: str,
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    assert_readable: Callable[..., int],
    sweep_config: Path,
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """A sweep killed mid-trial or mid-storage-write resumes to its exact budget, finished trials unchanged."""
    study_dir = tmp_path / "study"
    arguments = ["--config-dir", sweep_config, "--hpo", "quick", "--study-dir", study_dir]
    arguments += ["--storage", "journal"] if storage == "journal" else []
    arguments += ["--inprocess"] if isolation == "inprocess" else []
    sweep = spawn(training_command("hpo", "run", *arguments), "sweep")
    if moment == "trial":
        sweep.kill_9_while(lambda: trial_in_progress(study_dir, 2), "trial 2 training")
        trial_pid = json.loads((study_dir / "trials" / "2" / "fold-0" / "fold.json").read_text())["pid"]
        deadline = time.monotonic() + 10
        while process_alive(trial_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(trial_pid), "the trial's process outlived the killed sweep"
    else:
        sweep.kill_9_while(lambda: writing(study_dir, moment), f"a storage write ({moment} present)")
        assert os.path.lexists(study_dir / moment), "the kill did not land inside a storage write"
    assert_readable(study_dir)
    before = finished(study_dir)
    assert before, "no trial had finished before the kill"

    started = time.monotonic()
    resumed = run_cli("hpo", "resume", "--study-dir", study_dir, *(["--inprocess"] if isolation == "inprocess" else []))
    assert resumed.returncode == 0, resumed.stderr
    record_figure("resume seconds", time.monotonic() - started)

    study = load_study(study_dir)
    assert [trial.number for trial in study.trials] == list(range(len(study.trials)))
    assert {trial.state for trial in study.trials} <= {TrialState.COMPLETE, TrialState.FAIL}
    complete = [trial for trial in study.trials if trial.state == TrialState.COMPLETE]
    assert len(complete) == N_TRIALS
    assert {number: finished(study_dir)[number] for number in before} == before
    for failed in (trial for trial in study.trials if trial.state == TrialState.FAIL):
        rerun = [trial for trial in complete if trial.user_attrs.get("retry_of") == failed.number]
        assert len(rerun) == 1 and rerun[0].params == failed.params
    if moment == "trial":
        assert study.trials[2].state == TrialState.FAIL
    record_figure("interrupted trials re-run", len(study.trials) - N_TRIALS)
    assert BestConfig.load(study_dir / "best_config.json").study.trial_number == best_trial_number(study)
    assert_readable(study_dir)


def test_ctrl_c_stops_parallel_trials_and_the_resume_reruns_them(
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    sweep_config: Path,
    tmp_path: Path,
) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) during two parallel trials: exit 130, no trial process left,
    the interrupted trials queued again, and the resume finishes the budget with their parameters."""
    study_dir = tmp_path / "study"
    arguments = ["--config-dir", sweep_config, "--hpo", "quick", "--study-dir", study_dir, "--parallel", "2"]
    sweep = spawn(training_command("hpo", "run", *arguments), "sweep")

    def running() -> list[int]:
        return [number for number in range(N_TRIALS) if trial_in_progress(study_dir, number)]

    pair: list[int] = []

    def two_running() -> bool:
        pair[:] = running()
        return len(pair) == 2

    sweep.wait_for(two_running, "two trials running at once")
    pids = [json.loads((study_dir / "trials" / str(n) / "fold-0" / "fold.json").read_text())["pid"] for n in pair]
    os.killpg(sweep.pid, signal.SIGINT)
    assert sweep.finish(timeout=60) == 130, sweep.output()[-3000:]
    assert "interrupted; state written so far is kept and resumable" in sweep.output()
    assert not any(process_alive(pid) for pid in pids), "a trial process outlived the interrupted sweep"

    interrupted = {trial.number: trial for trial in load_study(study_dir).trials if trial.state == TrialState.FAIL}
    assert interrupted, "no trial was running when Ctrl-C came"
    resumed = run_cli("hpo", "resume", "--study-dir", study_dir, "--parallel", "2")
    assert resumed.returncode == 0, resumed.stderr
    study = load_study(study_dir)
    assert sum(trial.state == TrialState.COMPLETE for trial in study.trials) == N_TRIALS
    for number, failed in interrupted.items():
        rerun = [trial for trial in study.trials if trial.user_attrs.get("retry_of") == number]
        assert len(rerun) == 1 and rerun[0].params == failed.params and rerun[0].state == TrialState.COMPLETE
