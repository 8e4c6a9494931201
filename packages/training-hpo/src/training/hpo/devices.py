"""Which GPU each trial process sees: the trials one sweep process runs at once take its GPUs round-robin.

GPUs are read without torch (`CUDA_VISIBLE_DEVICES`, else the NVIDIA driver); each trial process gets one of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from training.common.errors import ConfigError

NVIDIA_DRIVER = Path("/proc/driver/nvidia/gpus")
logger = logging.getLogger("training.hpo")


def visible_gpus() -> tuple[str, ...]:
    """The GPUs this process may use: `CUDA_VISIBLE_DEVICES` when set, else every GPU the NVIDIA driver lists."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return parse_gpus(given, "CUDA_VISIBLE_DEVICES", allow_none=True)
    if not NVIDIA_DRIVER.is_dir():
        return ()
    return tuple(str(index) for index in range(sum(1 for _ in NVIDIA_DRIVER.iterdir())))


def parse_gpus(text: str, source: str, *, allow_none: bool = False) -> tuple[str, ...]:
    """GPU ids from a comma-separated list such as `0,1` (`-1` or empty: none, where `allow_none`)."""
    gpus = tuple(part.strip() for part in text.split(","))
    if allow_none and (gpus in ((), ("",)) or "-1" in gpus):
        return ()
    if any(not gpu for gpu in gpus) or len(set(gpus)) != len(gpus):
        raise ConfigError(f"{source}: expected distinct GPU ids separated by commas such as 0,1, got {text!r}")
    return gpus


class DevicePool:
    """The GPUs lent to running trials: each trial takes the least used one and gives it back when it ends."""

    def __init__(self, gpus: Sequence[str], parallel: int) -> None:
        if gpus and parallel > len(gpus):
            logger.warning(
                "%d parallel trials share %d GPU(s) (%s): some GPUs run two trials or more at once",
                parallel,
                len(gpus),
                ",".join(gpus),
            )
        self._users = dict.fromkeys(gpus, 0)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lend(self) -> Iterator[str | None]:
        """A GPU id for one trial (None: no GPU, the trial runs where torch puts it)."""
        if not self._users:
            yield None
            return
        with self._lock:
            gpu = min(self._users, key=self._users.__getitem__)
            self._users[gpu] += 1
        try:
            yield gpu
        finally:
            with self._lock:
                self._users[gpu] -= 1
