"""`kept_for_reuse`: while a run trains on the CPU, malloc keeps large freed blocks in its heap; after, it does not."""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from data.loaders import load_dataset
from training.config.schema import TrainingConfig
from training.core.callbacks import Callback, TrainerState
from training.core.cpu_memory import kept_for_reuse
from training.core.trainer import train_model

BLOCK = 64 << 20  # above glibc's largest dynamic mmap threshold (32 MiB): mapped on its own unless kept


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _glibc_with_mallinfo2() -> ctypes.CDLL | None:
    confstr = getattr(os, "confstr", None)
    try:
        if confstr is None or not confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2  # glibc 2.33 and later
    except (ValueError, OSError, AttributeError):
        return None
    return libc


LIBC = _glibc_with_mallinfo2()
pytestmark = pytest.mark.skipif(LIBC is None, reason="malloc's thresholds are glibc's (mallinfo2: 2.33 and later)")


def _mapped_on_its_own(size: int) -> bool:
    """Whether malloc maps a fresh `size`-byte tensor on its own (a block handed back to the system when freed)."""
    assert LIBC is not None
    before = LIBC.mallinfo2().hblkhd
    block = torch.ones(size // 4)
    mapped = LIBC.mallinfo2().hblkhd - before >= size
    del block
    return mapped


def _resident() -> int:
    """This process's resident memory in bytes."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _kept_then_handed_back(leave: Callable[[], None]) -> None:
    """Entered: a large block comes from the heap and stays resident once freed; after `leave()` it is handed back."""
    assert not _mapped_on_its_own(BLOCK)
    block = torch.ones(BLOCK // 4)
    del block
    kept = _resident()
    assert not _mapped_on_its_own(BLOCK)  # the freed block serves the next one
    leave()
    assert kept - _resident() >= BLOCK // 2


def test_large_blocks_stay_in_the_heap_while_training_on_a_cpu_and_are_handed_back_after() -> None:
    with contextlib.ExitStack() as stack:
        stack.enter_context(kept_for_reuse(torch.device("cpu")))
        _kept_then_handed_back(stack.close)
    assert _mapped_on_its_own(4 * BLOCK)  # no longer kept: above 32 MiB, a block of its own again


def test_other_devices_leave_malloc_as_it_is() -> None:
    with kept_for_reuse(torch.device("meta")):  # as for a GPU: the host's blocks are small
        assert _mapped_on_its_own(4 * BLOCK)


def test_the_last_of_overlapping_runs_hands_the_memory_back() -> None:
    second_in, first_left, second_may_leave, second_left = (threading.Event() for _ in range(4))

    def second_run() -> None:
        with kept_for_reuse(torch.device("cpu")):
            second_in.set()
            first_left.wait(30)
            second_may_leave.wait(30)
        second_left.set()

    thread = threading.Thread(target=second_run)
    with kept_for_reuse(torch.device("cpu")):
        thread.start()
        assert second_in.wait(30)
    first_left.set()  # the second run is still in: blocks stay kept

    def leave() -> None:
        second_may_leave.set()
        assert second_left.wait(30)

    _kept_then_handed_back(leave)
    thread.join(30)


def test_train_model_keeps_freed_memory_while_it_trains_on_a_cpu(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    seen: list[bool] = []

    class Probe(Callback):
        def on_step_end(self, state: TrainerState) -> None:
            seen.append(_mapped_on_its_own(BLOCK))

    dataset = load_dataset(tiny_config.data.path, labels=tiny_config.data.labels)
    train_model(tiny_config.with_values({"training.num_epochs": 1}), dataset, tmp_path / "run", callbacks=[Probe()])
    assert seen and not any(seen)
    assert _mapped_on_its_own(4 * BLOCK)
