"""The sweep's sampler: seeded per trial, so reruns repeat and processes sharing a study draw apart."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import optuna
import pytest

from training.config import HPOConfig
from training.hpo import create_search_space
from training.hpo.sampling import sampler

SPACE = {
    "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
    "batch_size": {"type": "choice", "values": [4, 8, 16, 32]},
}


def settings(kind: str) -> HPOConfig:
    return HPOConfig.model_validate({"name": "s", "sampler": {"type": kind, "seed": 7}, "search_space": SPACE})


def draw(storage: str, kind: str, barrier: Any = None) -> tuple[int, dict[str, Any]]:
    """Ask one trial of the study as a sweep process does (a `barrier`: after every process has loaded the study)."""
    hpo = settings(kind)
    space = create_search_space(hpo)
    study = optuna.load_study(study_name="s", storage=storage, sampler=sampler(hpo, space))
    if barrier is not None:
        barrier.wait()
    trial = study.ask()
    params = space.suggest(trial)
    study.tell(trial, 1.0)
    return trial.number, params


def storage(path: Path) -> str:
    optuna.create_study(study_name="s", storage=f"sqlite:///{path}")
    return f"sqlite:///{path}"


@pytest.mark.parametrize("kind", ["tpe", "random"])
def test_processes_that_join_a_study_together_draw_what_one_process_draws(tmp_path: Path, kind: str) -> None:
    """Two processes that load one study before either asks drew the same parameters (both seeded the sampler by
    the trials they saw); each trial now draws with its own number, as a process alone draws it."""
    alone = storage(tmp_path / "alone.db")
    drawn = [draw(alone, kind)[1], draw(alone, kind)[1]]
    assert drawn[0] != drawn[1]

    together = storage(tmp_path / "together.db")
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(2)
    with context.Pool(2) as pool:
        results = sorted(pool.starmap(draw, [(together, kind, barrier)] * 2), key=lambda result: result[0])
    assert results[0][1] != results[1][1]
    assert [params for _, params in results] == drawn
