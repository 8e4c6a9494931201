"""One GPU per trial: parallel trials take the visible GPUs round-robin (device lists given on CPU machines)."""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import TrialState

from training.common.errors import ConfigError
from training.config import HPOConfig
from training.hpo import run_local_hpo_sweep
from training.hpo.devices import DevicePool, parse_gpus, visible_gpus


def devices_seen(study_dir: Path, number: int) -> set[str | None]:
    """The CUDA_VISIBLE_DEVICES each fold process of trial `number` ran with."""
    return {
        json.loads(path.read_text())["cuda_visible_devices"]
        for path in (study_dir / "trials" / str(number)).glob("fold-*/fold.json")
    }


def files_written(study_dir: Path, number: int) -> tuple[float, float]:
    """When trial `number`'s process wrote its first and last file: inside the time it held its GPU (the study's
    own start and end times also cover the sweep's bookkeeping before and after the GPU is lent)."""
    times = [path.stat().st_mtime for path in (study_dir / "trials" / str(number)).rglob("*") if path.is_file()]
    return min(times), max(times)


def test_parallel_trials_each_get_their_own_gpu(
    quick_settings: Callable[..., HPOConfig], config_dir: Path, tmp_path: Path
) -> None:
    hpo = quick_settings("gpus", n_trials=4, parallel_trials=2, storage="journal")
    study = run_local_hpo_sweep("tiny-bert", hpo, config_dir=config_dir, study_dir=tmp_path, gpus=("3", "5"))
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 4
    for trial in study.trials:
        gpu = trial.user_attrs["device"].removeprefix("cuda:")
        assert gpu in ("3", "5") and devices_seen(tmp_path, trial.number) == {gpu}
    spans = {trial.number: files_written(tmp_path, trial.number) for trial in study.trials}
    overlapping = [
        (a, b)
        for a, b in itertools.combinations(study.trials, 2)
        if spans[a.number][0] < spans[b.number][1] and spans[b.number][0] < spans[a.number][1]
    ]
    assert overlapping, "no trials ran at once"
    for a, b in overlapping:
        assert a.user_attrs["device"] != b.user_attrs["device"]


def test_more_parallel_trials_than_gpus_share_them_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="training.hpo"):
        pool = DevicePool(["0"], parallel=2)
    assert "2 parallel trials share 1 GPU(s) (0)" in caplog.text
    with pool.lend() as first, pool.lend() as second:
        assert first == second == "0"
    pool = DevicePool(["0", "1"], parallel=3)
    with pool.lend() as a, pool.lend() as b, pool.lend() as c:
        assert (a, b, c) == ("0", "1", "0")
    with DevicePool([], parallel=2).lend() as none:
        assert none is None


def test_visible_gpus_come_from_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 7")
    assert visible_gpus() == ("2", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == ()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == ()


def test_a_bad_gpu_list_is_refused() -> None:
    assert parse_gpus("0,1", "--gpus") == ("0", "1")
    for bad in ("0,,1", "1,1", ""):
        with pytest.raises(ConfigError, match="--gpus: expected distinct GPU ids separated by commas"):
            parse_gpus(bad, "--gpus")


def test_hpo_worker_gpus_is_checked_at_the_command_line(tmp_path: Path) -> None:
    worker = [sys.executable, "-m", "training.cli", "hpo", "worker", "--study-dir", str(tmp_path), "--gpus", "0,0"]
    result = subprocess.run(worker, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "training hpo worker: error: --gpus: expected distinct GPU ids separated by commas such as 0,1, got '0,0'"
    ]
