"""`keep_freed_memory`: a process of the toolkit keeps large freed blocks in malloc's heap, unless told otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# In a fresh process: whether a 64 MiB block (above glibc's largest dynamic mmap threshold, 32 MiB) is mapped on its
# own, which hands it back to the system when freed, before and after `keep_freed_memory`; and after it, whether the
# heap keeps a freed block at its top instead of trimming it.
PROBE = textwrap.dedent(
    """
    import ctypes, json
    from training.common.malloc import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        _fields_ = [(name, ctypes.c_size_t) for name in names.split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype, libc.malloc.restype = MallInfo2, ctypes.c_void_p
    libc.malloc.argtypes, libc.free.argtypes = [ctypes.c_size_t], [ctypes.c_void_p]

    def mapped(size):
        before = libc.mallinfo2().hblkhd
        block = libc.malloc(size)
        grown = libc.mallinfo2().hblkhd - before
        libc.free(block)
        return grown >= size

    def heap_kept(size):
        block = libc.malloc(size)
        arena = libc.mallinfo2().arena
        libc.free(block)
        return libc.mallinfo2().arena >= arena

    before = mapped(64 << 20)
    kept = keep_freed_memory()
    after = [mapped(64 << 20), mapped(512 << 20), heap_kept(64 << 20)]
    print(json.dumps({"before": before, "kept": kept, "after": after}))
    """
)


def _glibc_with_mallinfo2() -> bool:
    confstr = getattr(os, "confstr", None)
    try:
        version = (confstr("CS_GNU_LIBC_VERSION") or "") if confstr else ""
    except (ValueError, OSError):
        return False
    major, _, minor = version.removeprefix("glibc ").partition(".")
    return version.startswith("glibc ") and (int(major), int(minor.split(".")[0])) >= (2, 33)


pytestmark = pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="malloc's thresholds are glibc's (mallinfo2: 2.33)")


def _probe(**environment: str) -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}
    command = [sys.executable, "-c", PROBE]
    done = subprocess.run(command, env={**env, **environment}, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_large_freed_blocks_stay_in_the_heap_for_the_rest_of_the_process() -> None:
    assert _probe() == {"before": True, "kept": True, "after": [False, False, True]}


def test_other_tunables_of_the_environment_leave_it_on() -> None:
    assert _probe(GLIBC_TUNABLES="glibc.malloc.arena_max=2")["after"] == [False, False, True]


@pytest.mark.parametrize(
    "environment",
    [
        {"MALLOC_MMAP_THRESHOLD_": "65536"},
        {"MALLOC_TRIM_THRESHOLD_": "0"},
        {"MALLOC_TOP_PAD_": "131072"},
        {"MALLOC_MMAP_MAX_": "65536"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
    ],
)
def test_malloc_settings_of_the_environment_win(environment: dict[str, str]) -> None:
    assert _probe(**environment) == {"before": True, "kept": False, "after": [True, True, True]}
