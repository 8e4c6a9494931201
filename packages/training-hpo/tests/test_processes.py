"""The trial and refit processes are the sweep's own: they keep large freed blocks for reuse (`keep_freed_memory`);
starting them leaves the caller's process as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROBE = textwrap.dedent(
    """
    import ctypes

    class MallInfo2(ctypes.Structure):
        names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        _fields_ = [(name, ctypes.c_size_t) for name in names.split()]

    def mapped(dataset=None, connection=None):
        '''Whether a 64 MiB block is mapped on its own (handed back to the system when freed).'''
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype, libc.malloc.restype = MallInfo2, ctypes.c_void_p
        libc.malloc.argtypes, libc.free.argtypes = [ctypes.c_size_t], [ctypes.c_void_p]
        before = libc.mallinfo2().hblkhd
        block = libc.malloc(64 << 20)
        grown = libc.mallinfo2().hblkhd - before
        libc.free(block)
        return grown >= 64 << 20
    """
)


def _glibc_version() -> tuple[int, int]:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""  # AttributeError on Windows, ValueError on macOS
    except (AttributeError, ValueError, OSError):
        return (0, 0)
    major, _, minor = version.removeprefix("glibc ").partition(".")
    return (int(major), int(minor.split(".")[0])) if version.startswith("glibc ") else (0, 0)


@pytest.mark.skipif(_glibc_version() < (2, 33), reason="malloc's thresholds are glibc's (mallinfo2: 2.33)")
def test_a_trial_process_keeps_freed_memory_and_its_caller_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    code = f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(tmp_path)!r})
        import probe
        from training.hpo.processes import call_in_process

        print(probe.mapped(), call_in_process("probe", probe.mapped, Path({str(tmp_path / "error.log")!r})))
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}
    command = [sys.executable, "-c", textwrap.dedent(code)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def test_starting_processes_leaves_the_callers_start_method_unchosen(tmp_path: Path) -> None:
    """CPython fixes `multiprocessing`'s default start method for good when it prepares a forkserver or a spawned
    process: after a sweep, the caller's own `set_start_method` failed with 'context has already been set'."""
    (tmp_path / "probe.py").write_text("def nothing(dataset, connection):\n    return None\n")
    code = f"""
        import multiprocessing, sys
        from pathlib import Path
        sys.path.insert(0, {str(tmp_path)!r})
        import probe
        from training.hpo.processes import call_in_process, start_trial_processes

        start_trial_processes("subprocess")
        print(multiprocessing.get_start_method(allow_none=True))
        call_in_process("probe", probe.nothing, Path({str(tmp_path / "error.log")!r}))
        print(multiprocessing.get_start_method(allow_none=True))
        multiprocessing.set_start_method("spawn")
        print(multiprocessing.get_start_method())
    """
    command = [sys.executable, "-c", textwrap.dedent(code)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "None", "spawn"]
