"""Freed memory kept for reuse in the toolkit's own processes (glibc's malloc).

glibc hands a freed block larger than its mmap threshold (which its dynamic rule raises to at most 32 MiB, and only
on freeing a block of at most that size) back to the system, and trims the top of its heap; the next block of that
size faults in every page again. A BERT vocabulary's word-embedding gradient (47 MB) is made anew at every step of a
CPU run (docs/benchmarks.md, "Freed memory on a CPU"). `keep_freed_memory` is called where a process of the toolkit
starts (the `training` command, the job runner, sweep trial and refit processes): never inside a library call in a
user's process, and never where the environment already tunes malloc.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap (a 250k x 768 fp32 embedding gradient is 0.77 GB)
TRIM_THRESHOLD = (1 << 31) - 1  # the top of the heap is kept up to 2 GiB (a C int: mallopt's argument)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def keep_freed_memory() -> bool:
    """Keep freed blocks of up to 1 GiB in malloc's heap for the rest of this process, where glibc's malloc serves it
    and the environment sets none of its thresholds (`MALLOC_*_`, `GLIBC_TUNABLES`); returns whether it did. This turns
    glibc's dynamic thresholds off for the process: call it only where the process is the toolkit's own."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(name in os.environ for name in _SETTINGS) or "glibc.malloc." in tunables:
        return False
    mallopt = _mallopt()
    if mallopt is None or not mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD):  # an older glibc refuses above 32 MiB
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's `mallopt`, or None where another C library (or none: Windows) serves this process."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):  # type: ignore[union-attr]
            return None
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (AttributeError, ValueError, OSError):  # Windows: no confstr; macOS: no such name; musl: EINVAL
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
