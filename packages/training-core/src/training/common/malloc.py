"""glibc's malloc told to keep freed blocks for reuse, in the processes the toolkit starts to train (core README)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

_MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB from the heap (a 250k x 768 fp32 embedding gradient is 0.77 GB)
_TRIM_THRESHOLD = (1 << 31) - 1  # the top of the heap kept up to 2 GiB (a C int: mallopt's argument)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
# The user's own settings of the same thresholds, as environment variables and as glibc tunables: they win.
_ENVIRONMENT_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_TUNABLES = tuple(f"glibc.malloc.{name}" for name in ("mmap_threshold", "trim_threshold", "top_pad", "mmap_max"))


def keep_freed_memory() -> bool:
    """Keep freed blocks of up to 1 GiB in malloc's heap for the rest of this process, instead of handing those above
    32 MiB back to the system for the next step to fault in again (a BERT vocabulary's 47 MB embedding gradient, made
    anew every step); returns whether it did. Nothing where another C library serves the process, where an older
    glibc refuses, or where the environment sets any of these thresholds. It turns glibc's dynamic thresholds off for
    good: call it only at the start of a process of the toolkit's own."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(name in os.environ for name in _ENVIRONMENT_VARIABLES) or any(name in tunables for name in _TUNABLES):
        return False
    mallopt = _mallopt()
    if mallopt is None or not mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD):  # an older glibc refuses above 32 MiB
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's `mallopt`, or None where another C library (or none: Windows) serves this process."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (AttributeError, ValueError, OSError):  # Windows: no confstr; macOS: no such name; musl: EINVAL
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
