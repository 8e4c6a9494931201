"""Interrupted trials: a trial left RUNNING by a process that died on this host is failed and re-run.

A process is known by host, boot id, pid namespace and pid (containers share host names, pids repeat across
namespaces); other hosts' trials are left to the storage's heartbeat. `enqueue_trial(skip_if_exists=True)` is not
used: it also matches FAILED trials and would silently skip the re-run.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from training.common.file_lock import file_lock
from training.hpo.trial_record import TrialRecord, rerun_of

MAX_RETRIES = 3
# A trial records its owner within milliseconds of starting; one without an owner after this long was cut short.
UNOWNED_GRACE = timedelta(seconds=60)

logger = logging.getLogger("training.hpo")


def process_identity() -> dict[str, Any]:
    """Host, boot id, pid namespace, process id and process start time (which tells a reused pid apart); the
    parts the system does not tell are None."""
    pid = os.getpid()
    return {**machine_identity(), "pid": pid, "started": _start_time(pid)}


def machine_identity() -> dict[str, str | None]:
    """Where a pid means something: host name, boot id of the running kernel, pid namespace (Linux)."""
    return {
        "host": socket.gethostname(),
        "boot_id": _system("/proc/sys/kernel/random/boot_id"),
        "pid_namespace": _system("/proc/self/ns/pid", link=True),
    }


def recover_interrupted_trials(study: optuna.Study, lock_file: Path | None = None) -> list[int]:
    """Fail the RUNNING trials whose process died on this host and enqueue their parameters again (at most
    `MAX_RETRIES` times); returns the numbers failed. `lock_file` makes one process of this host re-queue a trial."""
    recovered = []
    with file_lock(lock_file):
        trials = study.get_trials(deepcopy=False)
        requeued = {rerun_of(trial) for trial in trials}
        for trial in trials:
            if not interrupted(trial):
                continue
            try:
                TrialRecord.write(optuna.Trial(study, trial._trial_id), fail_reason="its process died mid-trial")
                study.tell(trial.number, state=TrialState.FAIL)
            except (ValueError, UpdateFinishedTrialError):  # finished meanwhile by another process
                continue
            recovered.append(trial.number)
            if trial.number not in requeued:
                requeue(study, trial)
    return recovered


def requeue(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> None:
    """Queue an interrupted trial's parameters to run again (unless it has been re-run `MAX_RETRIES` times)."""
    retries = TrialRecord.of(trial).retries
    if trial.params and retries < MAX_RETRIES:
        rerun = TrialRecord(retry_of=trial.number, retries=retries + 1)
        study.enqueue_trial(trial.params, user_attrs=rerun.model_dump(include={"retry_of", "retries"}))
        logger.warning("trial %d was interrupted; it is queued again with the same parameters", trial.number)
    else:
        logger.warning("trial %d was interrupted; it is marked failed", trial.number)


def interrupted(trial: FrozenTrial) -> bool:
    """Whether `trial` is RUNNING in storage though its process died on this host (or never recorded an owner)."""
    if trial.state != TrialState.RUNNING:
        return False
    owner = TrialRecord.of(trial).owner
    if owner is None:
        start = trial.datetime_start
        return start is not None and datetime.now(timezone.utc) - start.astimezone(timezone.utc) > UNOWNED_GRACE
    here = machine_identity()
    # another host, kernel or container (records made before a part was recorded lack it: the host decides)
    if any(owner.get(key, value) != value for key, value in here.items()):
        return False
    return not alive(int(owner["pid"]), owner.get("started"))


def alive(pid: int, started: int | None = None) -> bool:
    """Whether process `pid` exists (and, given its start time, is the same process, not a reused pid)."""
    if sys.platform == "win32":  # signal 0 is CTRL_C_EVENT there: it would interrupt the process, not probe it
        return _windows_process_running(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return started is None or _start_time(pid) in (None, started)


def _windows_process_running(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE  # not the default int: a handle is pointer-sized
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists, another user's
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def machine_name() -> str:
    """This machine as one string: host name and boot id (a reboot counts as another machine)."""
    machine = machine_identity()
    return f"{machine['host']} (boot {machine['boot_id']})" if machine["boot_id"] else str(machine["host"])


def _system(path: str, *, link: bool = False) -> str | None:
    """A system file's text (or a link's target), None where the system has none."""
    try:
        return os.readlink(path) if link else Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])
