"""The CPU cores this process may run on: what its threads and processes are sized by."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may use: its affinity where the system tells it (a container's or a taskset's share of
    the machine), else the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
