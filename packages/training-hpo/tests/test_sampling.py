"""The sweep's sampler: seeded per trial, so reruns repeat and processes sharing a study draw apart."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

from training.config import HPOConfig
from training.hpo import create_search_space
from training.hpo.recovery import requeue
from training.hpo.sampling import TrialSeededSampler, sampler
from training.hpo.trial_record import rerun_of

SPACE = {
    "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
    "batch_size": {"type": "choice", "values": [4, 8, 16, 32]},
}


# One sweep process asking a trial: after `ready` (a folder) holds a file of each of `processes`, when given.
DRAW = """
import json, pathlib, sys, time
import optuna
from training.config import HPOConfig
from training.hpo import create_search_space
from training.hpo.sampling import sampler

storage, kind, space, ready, processes = sys.argv[1:]
hpo = HPOConfig.model_validate({"name": "s", "sampler": {"type": kind, "seed": 7}, "search_space": json.loads(space)})
search = create_search_space(hpo)
study = optuna.load_study(study_name="s", storage=storage, sampler=sampler(hpo, search))
if int(processes):
    folder = pathlib.Path(ready)
    (folder / str(time.monotonic_ns())).touch()
    while len(list(folder.iterdir())) < int(processes):
        time.sleep(0.01)
trial = study.ask()
params = search.suggest(trial)
study.tell(trial, 1.0)
print(json.dumps([trial.number, params]))
"""


def draw(storage: str, kind: str, ready: Path | None = None, processes: int = 0) -> subprocess.Popen[str]:
    """A process that asks one trial of the study as a sweep process does (`processes` of them: each asks once all
    have loaded the study)."""
    arguments = [storage, kind, json.dumps(SPACE), str(ready), str(processes)]
    return subprocess.Popen([sys.executable, "-c", DRAW, *arguments], stdout=subprocess.PIPE, text=True)


def drawn(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    number, params = json.loads(out)
    return number, params


def storage(path: Path) -> str:
    optuna.create_study(study_name="s", storage=f"sqlite:///{path}")
    return f"sqlite:///{path}"


@pytest.mark.parametrize("kind", ["tpe", "random"])
def test_processes_that_join_a_study_together_draw_what_one_process_draws(tmp_path: Path, kind: str) -> None:
    """Two processes that load one study before either asks drew the same parameters (both seeded the sampler by
    the trials they saw); each trial now draws with its own number, as a process alone draws it."""
    alone = storage(tmp_path / "alone.db")
    one = [drawn(draw(alone, kind))[1], drawn(draw(alone, kind))[1]]
    assert one[0] != one[1]

    together = storage(tmp_path / "together.db")
    (tmp_path / "ready").mkdir()
    processes = [draw(together, kind, tmp_path / "ready", 2) for _ in range(2)]
    results = sorted(map(drawn, processes), key=lambda result: result[0])
    assert results[0][1] != results[1][1]
    assert [params for _, params in results] == one


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


def objective_of(space: Any) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        return sum(float(value) for value in space.suggest(trial).values())

    return objective


def cut_and_queue_again(study: optuna.Study, space: Any, how: str) -> int:
    """Start a trial, fail it as an interrupted one is failed, and queue it again as recovery (`requeue`) or Optuna's
    heartbeat (`RetryFailedTrialCallback`) does; its number."""
    cut = study.ask()
    space.suggest(cut)
    study.tell(cut, state=TrialState.FAIL)
    frozen = study.trials[cut.number]
    requeue(study, frozen) if how == "recovery" else RetryFailedTrialCallback(max_retry=1)(study, frozen)
    return cut.number


@pytest.mark.parametrize("how", ["recovery", "heartbeat"])
@pytest.mark.parametrize("kind", ["tpe", "random"])
def test_a_sweep_resumed_after_an_interruption_draws_the_trials_of_one_run_through(kind: str, how: str) -> None:
    """An interrupted trial's re-run took the next number, and every later trial drew with the seed of a number one
    further on: the resumed sweep tried other parameters than the same sweep run without the interruption."""
    hpo = HPOConfig.model_validate({"name": "s", "sampler": {"type": kind, "seed": 7}, "search_space": SPACE})
    space = create_search_space(hpo)
    through = optuna.create_study(sampler=sampler(hpo, space))
    through.optimize(objective_of(space), n_trials=14)  # TPE's own draws start after its 10 random ones
    resumed = optuna.create_study(sampler=sampler(hpo, space))
    resumed.optimize(objective_of(space), n_trials=11)
    cut_and_queue_again(resumed, space, how)
    resumed.optimize(objective_of(space), n_trials=3)
    completed = [trial.params for trial in resumed.trials if trial.state == TrialState.COMPLETE]
    assert len({tuple(params.values()) for params in completed}) > 10
    assert completed == [trial.params for trial in through.trials]


def test_new_trials_draw_apart_and_a_re_run_as_the_trial_it_runs_again() -> None:
    """Under the hyperband pruner a trial's study shows its bracket's trials only: counting re-runs there gave two new
    trials one seed (the same parameters); a re-run drew with the seed of the next new trial."""
    hpo = HPOConfig.model_validate({"name": "s", "sampler": {"type": "random", "seed": 7}, "search_space": SPACE})
    space = create_search_space(hpo)
    seeds: dict[int, int] = {}

    class Recording(optuna.samplers.RandomSampler):
        """Notes the seed each trial's sampler was made with."""

        def __init__(self, seed: int) -> None:
            super().__init__(seed=seed)
            self.made_with = seed

        def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            seeds[trial.number] = self.made_with

    pruner = optuna.pruners.HyperbandPruner(1, 9)
    study = optuna.create_study(sampler=TrialSeededSampler(Recording, 7), pruner=pruner)
    study.optimize(objective_of(space), n_trials=5)
    cut = cut_and_queue_again(study, space, "recovery")
    study.optimize(objective_of(space), n_trials=12)
    reruns = {trial.number: rerun_of(trial) for trial in study.trials if rerun_of(trial) is not None}
    assert list(reruns.values()) == [cut] and seeds[next(iter(reruns))] == seeds[cut]
    new = [seeds[trial.number] for trial in study.trials if trial.number not in reruns]
    assert len(new) == 17 and len(set(new)) == 17
