"""Which interrupted trials a process may judge: only those of a process on its own kernel and pid namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from training.hpo.recovery import process_identity, recover_interrupted_trials
from training.hpo.trial_record import TrialRecord


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
        TrialRecord.write(study.ask(), owner={**owner, "pid": dead_pid(), "started": None})
    assert recover_interrupted_trials(study) == [0]
    assert [trial.state for trial in study.trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    # the trial table showed '-' as the reason of a trial failed here
    assert [TrialRecord.of(trial).fail_reason for trial in study.trials] == ["its process died mid-trial", None, None]


def test_a_queued_re_run_is_taken_by_one_thread_only_on_sqlite(tmp_path: Path) -> None:
    """SQLite ignores SELECT ... FOR UPDATE: without the storage's lock, two threads asking at once could both take
    one queued trial and run it twice (the second then fails with 'Cannot tell a COMPLETE trial')."""
    import threading

    from training.hpo.storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="queue", storage=storage)

    def take(trial_id: int, start: threading.Barrier, taken: list[bool]) -> None:
        start.wait()
        taken.append(storage.set_trial_state_values(trial_id, TrialState.RUNNING))

    for round_number in range(6):
        study.enqueue_trial({"x": float(round_number)})
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]
        start, taken = threading.Barrier(2), []
        threads = [threading.Thread(target=take, args=(waiting._trial_id, start, taken)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(taken) == [False, True], f"round {round_number}: {taken}"
        study.tell(waiting.number, 0.0)
