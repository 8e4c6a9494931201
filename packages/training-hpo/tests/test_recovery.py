"""Which interrupted trials a process may judge: only those of a process on its own kernel and pid namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from training.hpo.recovery import OWNER, process_identity, recover_interrupted_trials


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="pid namespaces are Linux only")
def test_a_dead_pid_is_judged_only_in_its_own_pid_namespace_and_boot() -> None:
    study = optuna.create_study()
    here = process_identity()
    owners = [
        here,  # this container: judged
        {**here, "pid_namespace": "pid:[1]"},  # another container with the same host name: left alone
        {**here, "boot_id": "00000000-0000-0000-0000-000000000000"},  # another machine of that name: left alone
    ]
    for owner in owners:
        study.ask().set_user_attr(OWNER, {**owner, "pid": dead_pid(), "started": None})
    assert recover_interrupted_trials(study) == [0]
    assert [trial.state for trial in study.trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
