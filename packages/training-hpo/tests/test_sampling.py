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


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_grid_sweep_visits_every_point_once(seed: int) -> None:
    """A grid sampler of each trial's own seed ordered the grid its own way while trial n took point n: some points
    ran twice, others never (5 of 8 with seed 7), and the study stopped as if the grid were done."""
    grid = {"learning_rate": {"type": "choice", "values": [1e-5, 1e-4]}, "batch_size": SPACE["batch_size"]}
    hpo = HPOConfig.model_validate({"name": "g", "sampler": {"type": "grid", "seed": seed}, "search_space": grid})
    space = create_search_space(hpo)
    study = optuna.create_study(sampler=sampler(hpo, space))
    study.optimize(lambda trial: len(space.suggest(trial)), n_trials=12)
    assert sorted(tuple(trial.params.values()) for trial in study.trials) == sorted(
        (rate, size) for rate in (1e-5, 1e-4) for size in (4, 8, 16, 32)
    )
