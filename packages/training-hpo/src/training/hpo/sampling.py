"""How one sweep process explores: its sampler (seeded per trial), its pruner, and the CPU threads of each trial."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from training.common.cores import usable_cores
from training.common.fingerprint import fingerprint
from training.config.hpo_schema import HPOConfig
from training.hpo.search_space import SearchSpace
from training.hpo.trial_record import rerun_of


def trial_threads(parallel: int) -> int | None:
    """CPU threads for each of `parallel` trials running at once (None: one trial, torch's own default)."""
    if parallel == 1:
        return None
    return max(1, usable_cores() // parallel)


class TrialSeededSampler(BaseSampler):
    """Draws the n-th new trial (re-runs of interrupted ones not counted) with a sampler of its own seeded by
    (seed, n), and a re-run as the trial it runs again: a rerun of a sweep draws the same trials, a resumed one too,
    and processes sharing a study draw apart, whatever they saw when they started (storage numbers each trial once)."""

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self._samplers: dict[int, BaseSampler] = {}  # of the trials running in this process (threads: one each)

    def _of(self, study: optuna.Study, trial: FrozenTrial) -> BaseSampler:
        if trial.number not in self._samplers:
            draw = _draw(study, trial.number)
            self._samplers[trial.number] = self._make(int(fingerprint([self._seed, draw])[:8], 16))
        return self._samplers[trial.number]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._of(study, trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._of(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._of(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._of(study, trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        own = self._samplers.pop(trial.number, None)
        if own is not None:  # None: a trial another process drew, finished here (recovery fails it)
            own.after_trial(study, trial, state, values)


def _draw(study: optuna.Study, number: int) -> int:
    """Which new trial `number` is (0 first; re-runs not counted), a re-run counting as the trial it runs again."""
    # The storage's list, not `study.get_trials()`: under the hyperband pruner `study` shows one bracket's trials.
    trials = {trial.number: trial for trial in study._storage.get_all_trials(study._study_id, deepcopy=False)}
    while number in trials and (origin := rerun_of(trials[number])) is not None:
        number = origin
    return number - sum(rerun_of(trial) is not None for trial in trials.values() if trial.number < number)


def sampler(hpo: HPOConfig, space: SearchSpace) -> BaseSampler:
    """The sweep's sampler, seeded per trial from `hpo.sampler.seed` (`TrialSeededSampler`); a grid one sampler for
    all: its seed orders the grid, and trial n takes point n of that order (processes sharing a study draw apart)."""
    if hpo.sampler.type == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=hpo.sampler.seed)
    return TrialSeededSampler(functools.partial(_trial_sampler, hpo.sampler.type), hpo.sampler.seed)


def _trial_sampler(kind: str, seed: int) -> BaseSampler:
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: running trials count as bad guesses, so parallel workers spread out. Optuna before 5.0 calls it
    # experimental, a warning on every sweep's output that is ours to heed, not the user's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def pruner(hpo: HPOConfig, steps: int) -> optuna.pruners.BasePruner:
    """The pruner over a trial's `steps` intermediate steps; warmup steps are the first epochs of fold 0."""
    warmup = hpo.pruner.warmup_steps
    if hpo.pruner.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=hpo.pruner.startup_trials, n_warmup_steps=warmup)
    if hpo.pruner.type == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup), max_resource=steps)
    return optuna.pruners.NopPruner()
