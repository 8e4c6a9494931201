"""Trials that fail, hosts that die, hosts that must not share a file: each with real processes and storages.

- A trial process killed with -9 (as the kernel's out-of-memory killer does) is one FAIL trial with its reason; the
  sweep finishes its budget. Trials that fail in a row stop the sweep with one line.
- A worker in another pid namespace (another container of the same host name, or another host) killed mid-trial on
  PostgreSQL: the survivor cannot judge its pid, so Optuna's heartbeat finds the trial stale, and it is re-run once.
- A worker on a host with another name is refused a SQLite study in a shared folder, in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from training.hpo import load_study
from training.hpo.recovery import machine_identity

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]
HEARTBEAT_YAML = "heartbeat_interval: 1\ngrace_period: 3\n"


def namespaces_work(*flags: str) -> bool:
    """Whether this machine lets us start a process in new namespaces (root, or user namespaces allowed)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode == 0


def test_a_killed_trial_process_is_one_failed_trial(
    training_command: Callable[..., list[str]],
    spawn: Callable[..., Any],
    sweep_config: Path,
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """kill -9 of a trial process: that trial is FAIL with its reason in the table, the sweep meets its budget."""
    study_dir = tmp_path / "study"
    run = training_command(
        "hpo", "run", "--config-dir", sweep_config, "--hpo", "quick", "--study-dir", study_dir, "--n-trials", 3
    )
    sweep = spawn(run, "sweep")
    record = study_dir / "trials" / "0" / "fold-0" / "fold.json"
    sweep.wait_for(record.is_file, "trial 0's first fold")
    os.kill(json.loads(record.read_text(encoding="utf-8"))["pid"], signal.SIGKILL)
    assert sweep.finish() == 0, sweep.output()[-3000:]
    study = load_study(study_dir)
    states = [trial.state for trial in study.trials]
    assert states == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert "killed by signal SIGKILL" in study.trials[0].user_attrs["fail_reason"]
    assert "killed by signal SIGKILL" in sweep.output()
    record_figure("complete trials", states.count(TrialState.COMPLETE))


def test_trials_failing_in_a_row_stop_the_sweep_in_one_line(
    run_cli: Callable[..., subprocess.CompletedProcess[str]], sweep_config: Path, tmp_path: Path
) -> None:
    """Every trial failing (its features cannot be written: the cache path lies inside a file, the user's input):
    the sweep stops after hpo.max_failed_trials, exit 2."""
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    (study_dir / "cache").write_text("a file where the feature cache belongs\n")
    result = run_cli("hpo", "run", "--config-dir", sweep_config, "--hpo", "quick", "--study-dir", study_dir)
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("training hpo run: error:")]
    stopped = "the sweep stopped: 3 trials failed in a row (hpo.max_failed_trials 3)"
    assert line.startswith(f"training hpo run: error: {stopped}")
    assert [trial.state for trial in load_study(study_dir).trials] == [TrialState.FAIL] * 3


@pytest.mark.skipif(not namespaces_work("--pid", "--fork"), reason="cannot start a process in a new pid namespace")
def test_a_dead_worker_in_another_pid_namespace_is_found_by_the_heartbeat(
    postgres_url: str,
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    sweep_config: Path,
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """Two workers on PostgreSQL, one (in its own pid namespace) killed mid-trial: the heartbeat fails its trial,
    the other worker re-runs it once and meets the budget exactly."""
    from training.hpo import run_local_hpo_sweep
    from training.hpo.budget import Budget

    n_trials = 10
    hpo = tmp_path / "heartbeat.yaml"
    hpo.write_text((sweep_config / "hpo" / "quick.yaml").read_text() + HEARTBEAT_YAML, encoding="utf-8")
    study = run_local_hpo_sweep(
        None, hpo, config_dir=sweep_config, study_dir=tmp_path / "study", n_trials=1, isolation="inprocess",
        storage=postgres_url,
    )  # fmt: skip
    Budget(n_trials=n_trials, timeout_s=None).record(study)
    name = study.study_name
    worker = training_command("hpo", "worker", "--storage", postgres_url, "--study-name", name, "--inprocess")
    here = machine_identity()["pid_namespace"]

    watched = load_study(storage=postgres_url, study_name=name)  # one storage: each holds a pooled connection

    def doomed_trial() -> int | None:
        running = watched.get_trials(states=(TrialState.RUNNING,))
        theirs = (t for t in running if t.user_attrs.get("owner", {}).get("pid_namespace") != here)
        # Mid-trial: all its parameters sampled (recorded once the last one is; `params` fills one at a time).
        return next((t.number for t in theirs if t.user_attrs.get("hyperparameters")), None)

    doomed = spawn(["unshare", "--pid", "--fork", "--kill-child", *worker], "doomed")
    doomed.wait_for(lambda: doomed_trial() is not None, "a trial of the worker in its own pid namespace", poll=0.05)
    survivor = spawn(worker, "survivor")
    doomed.kill_9()
    killed = doomed_trial()
    started = time.monotonic()
    assert killed is not None
    assert survivor.finish() == 0, survivor.output()[-3000:]
    record_figure("seconds from the kill to the end of the survivor", round(time.monotonic() - started, 1))

    study = load_study(storage=postgres_url, study_name=study.study_name)
    complete = [trial for trial in study.trials if trial.state == TrialState.COMPLETE]
    assert len(complete) == n_trials
    assert study.trials[killed].state == TrialState.FAIL
    reruns = [trial for trial in study.trials if trial.system_attrs.get("failed_trial") == killed]
    assert len(reruns) == 1 and reruns[0].state == TrialState.COMPLETE
    assert reruns[0].params == study.trials[killed].params
    assert not [trial for trial in study.trials if trial.state == TrialState.RUNNING]


@pytest.mark.skipif(not namespaces_work("--uts"), reason="cannot start a process with its own host name")
def test_a_second_host_is_refused_a_sqlite_study(
    started_study: Callable[..., Any], training_command: Callable[..., list[str]], env: dict[str, str], tmp_path: Path
) -> None:
    """`hpo worker` on a host of another name, on a SQLite study in a shared folder: exit 2, one line saying to use
    an RDB URL or --single-host."""
    study_dir = tmp_path / "study"
    started_study(study_dir, 2)
    worker = " ".join(map(str, training_command("hpo", "worker", "--study-dir", study_dir, "--inprocess")))
    other_host = ["unshare", "--uts", "sh", "-c", f"hostname other-host && exec {worker}"]
    result = subprocess.run(other_host, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "is a file, and the study runs on" in line and "not on other-host" in line
    assert "use an RDB storage URL" in line and "--single-host" in line
