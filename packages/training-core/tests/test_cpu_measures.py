"""`training.core.cpu_measures`: a measurement taken once per CPU, thread count and torch version and kept in the
cache folder, and a cache file that cannot be read or written."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from training.core import cpu_dropout, precision
from training.core.cpu_measures import FILE, CpuMeasures, measured


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "training" / FILE


def test_a_measurement_is_kept_for_this_cpu_and_thread_count(cache: Path) -> None:
    calls: list[float] = []

    def measure() -> float:
        calls.append(1.5 + len(calls))
        return calls[-1]

    assert measured("x", measure) == 1.5 and measured("x", measure) == 1.5 and len(calls) == 1
    assert measured("y", measure) == 2.5
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert measured("x", measure) == 3.5
    finally:
        torch.set_num_threads(threads)
    kept = CpuMeasures.model_validate_json(cache.read_text()).values
    assert len(kept) == 3 and sorted(kept.values()) == [1.5, 2.5, 3.5]
    assert all(f"{threads} threads; torch {torch.__version__}" in key for key in kept if kept[key] != 3.5)


def test_a_broken_or_unwritable_cache_is_measured_again(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert measured("x", lambda: 2.0) == 2.0
    assert CpuMeasures.model_validate_json(cache.read_text()).values  # rewritten whole
    cache.unlink()
    cache.mkdir()  # a folder where the file should be: nothing kept, nothing raised
    assert measured("x", lambda: 3.0) == 3.0 and measured("x", lambda: 4.0) == 4.0


@pytest.mark.skipif(sys.platform == "win32", reason="no file lock on Windows: there, measurements may repeat")
def test_processes_starting_together_measure_once_and_keep_every_measurement(cache: Path) -> None:
    calls: list[str] = []

    def measure(name: str) -> float:
        calls.append(name)
        time.sleep(0.2)  # long enough for the other threads to reach the cache file meanwhile
        return float(len(calls))

    names = ["x", "x", "x", "y"]
    with ThreadPoolExecutor(len(names)) as pool:
        values = list(pool.map(lambda name: measured(name, lambda: measure(name)), names))
    assert sorted(calls) == ["x", "y"]  # the lock: each measured once
    assert len(set(values[:3])) == 1  # every x alike
    assert len(CpuMeasures.model_validate_json(cache.read_text()).values) == 2  # neither writer lost the other's


@pytest.mark.parametrize("measure", [cpu_dropout._speedup, precision._bf16_speedup], ids=["dropout", "bf16"])
def test_a_measurement_leaves_the_random_state_as_reading_its_kept_value_does(
    cache: Path, measure: Callable[[], float]
) -> None:
    """Of two ranks starting together on a new machine, one measured and the other read its value. The dropout
    measure drew its input from the global generator: the ranks' dropout masks parted, and a seeded job's first run
    there differed from every later one."""
    torch.manual_seed(0)
    measured("x", measure)
    after_measuring = torch.rand(4)
    torch.manual_seed(0)
    measured("x", measure)  # kept
    assert torch.equal(torch.rand(4), after_measuring)
