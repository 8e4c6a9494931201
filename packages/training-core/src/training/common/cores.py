"""The CPU cores this process may run on: what its threads and processes are sized by."""

from __future__ import annotations

import os

from training.common.errors import ConfigError

# Processes of one run (DDP ranks, parallel trials) a core is shared by at most: each loads torch and a model (hundreds
# of MiB) and more of them only wait on each other; beyond, a count is a slip (`--parallel 10000`) no machine holds.
PROCESSES_PER_CORE = 4


def usable_cores() -> int:
    """The cores this process may use: its affinity where the system tells it (a container's or a taskset's share of
    the machine), else the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_process_count(count: int, source: str) -> None:
    """Refuse (a `ConfigError` naming `source`, where the count was given) more processes of one run at once than
    this machine holds."""
    cores = usable_cores()
    if count > cores * PROCESSES_PER_CORE:
        raise ConfigError(
            f"{source}: {count} processes at once; expected at most {cores * PROCESSES_PER_CORE} on this machine "
            f"({PROCESSES_PER_CORE} for each of its {cores} CPU cores)"
        )
