"""Freed memory kept for reuse while a model trains on a CPU.

glibc's malloc hands a freed block of more than its mmap threshold (at most 32 MiB, such as a BERT vocabulary's word
embedding gradient, 47 MB, made anew every step) back to the system, and trims the top of its heap; the next step's
block of that size faults in every page again, which the kernel zeroes first. A MiniLM step took about 18,000 page
faults; kept in malloc's heap it takes almost none and trains 4-7% faster (docs/benchmarks.md, "Freed memory on a
CPU"). While `kept_for_reuse` is entered, malloc keeps blocks of up to 1 GiB in its heap and trims nothing; on leaving,
it goes to the thresholds its own dynamic rule reaches (32 and 64 MiB) and hands the kept memory back. Peak memory is
the same: the step's blocks are reused, not added. Elsewhere than glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_TRIM_THRESHOLD, _MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_KEPT = {_MMAP_THRESHOLD: 1 << 30, _TRIM_THRESHOLD: (1 << 31) - 1}
_DYNAMIC_CEILING = {_MMAP_THRESHOLD: 32 << 20, _TRIM_THRESHOLD: 64 << 20}  # glibc's DEFAULT_MMAP_THRESHOLD_MAX, twice
_lock = threading.Lock()
_entered = 0  # runs training in this process (threads) right now: the first sets, the last restores


@contextmanager
def kept_for_reuse(device: torch.device) -> Iterator[None]:
    """Keep freed memory in malloc's heap while this is entered, on a CPU `device` with glibc (else nothing)."""
    libc = _glibc() if device.type == "cpu" else None
    if libc is None:
        yield
        return
    global _entered
    with _lock:
        _entered += 1
        if _entered == 1:
            _set(libc, _KEPT)
    try:
        yield
    finally:
        with _lock:
            _entered -= 1
            if _entered == 0:
                _set(libc, _DYNAMIC_CEILING)
                libc.malloc_trim(0)


def _set(libc: ctypes.CDLL, values: dict[int, int]) -> None:
    for parameter, value in values.items():
        libc.mallopt(parameter, value)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):  # type: ignore[union-attr]
            return None
        return ctypes.CDLL("libc.so.6")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or no such name (macOS, musl)
        return None
