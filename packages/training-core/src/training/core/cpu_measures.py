"""Measurements of this CPU that decide how runs compute (`precision: auto`'s bf16, the CPU dropout), kept in the
cache folder: every run on one machine, thread count and torch version decides alike, so a seed repeats a run even
where a measurement lies near its threshold, and only the first run pays for it."""

from __future__ import annotations

import contextlib
import functools
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from training.common.atomic import atomic_write_text
from training.common.cache import cache_folder
from training.common.errors import ConfigError, InputError
from training.common.file_lock import file_lock
from training.config.validation import read_record

FILE = "cpu-measures.json"


class CpuMeasures(BaseModel):
    """What the cache folder's `cpu-measures.json` holds: each measurement by what it measured and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    values: dict[str, float] = {}


def measured(name: str, measure: Callable[[], float]) -> float:
    """`measure()` for this CPU, thread count and torch version: as kept in the cache folder, else measured now and
    kept, under a lock that other processes wait on meanwhile (so `measure` must not call `measured`); the global
    random state is left as it was."""
    path = cache_folder(FILE)
    key = f"{name}; {_cpu_name()}; {torch.get_num_threads()} threads; torch {torch.__version__}"
    lock = contextlib.ExitStack()
    with contextlib.suppress(OSError):  # a cache folder that cannot be written: measured without the lock
        lock.enter_context(file_lock(path.with_name(FILE + ".lock")))
    with lock:  # processes starting together: one measures, the others wait and read its value
        try:
            kept = read_record(CpuMeasures, path, "CPU measures file").values if path.exists() else {}
        except ConfigError:  # unreadable or of another shape: measured anew and rewritten
            kept = {}
        if key in kept:
            return kept[key]
        with torch.random.fork_rng(devices=[]):  # a seeded run draws alike whether it measured or read the value
            value = measure()
        with contextlib.suppress(OSError, InputError):  # a cache that cannot be written: measured again next time
            atomic_write_text(path, CpuMeasures(values={**kept, key: value}).model_dump_json(indent=2) + "\n")
    return value


def fastest_seconds(run: Callable[[], object]) -> float:
    """The fastest of three calls of `run`, in seconds (the first warms the kernels up)."""
    fastest = math.inf
    for _ in range(3):
        start = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


@functools.cache
def _cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else the platform's word for it."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()
