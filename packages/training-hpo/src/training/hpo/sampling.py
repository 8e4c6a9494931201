"""How one sweep process explores: its sampler (seeded), its pruner, and the CPU threads of each trial."""

from __future__ import annotations

import os
import socket

import optuna

from training.common.fingerprint import fingerprint
from training.config.schema import HPOConfig
from training.hpo.search_space import SearchSpace


def trial_threads(parallel: int) -> int | None:
    """CPU threads for each of `parallel` trials running at once (None: one trial, torch's own default)."""
    if parallel == 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // parallel)


def process_seed(seed: int, existing_trials: int, worker: bool) -> int:
    """The configured seed for a fresh sweep; a distinct, reproducible one for a resume; a unique one per worker."""
    if existing_trials == 0 and not worker:
        return seed
    parts = [seed, existing_trials, *([socket.gethostname(), os.getpid()] if worker else [])]
    return int(fingerprint(parts)[:8], 16)


def sampler(hpo: HPOConfig, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    if hpo.sampler.type == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if hpo.sampler.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: running trials count as bad guesses, so parallel workers spread out.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def pruner(hpo: HPOConfig, steps: int) -> optuna.pruners.BasePruner:
    """The pruner over a trial's `steps` intermediate steps; warmup steps are the first epochs of fold 0."""
    warmup = hpo.pruner.warmup_steps
    if hpo.pruner.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=hpo.pruner.startup_trials, n_warmup_steps=warmup)
    if hpo.pruner.type == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup), max_resource=steps)
    return optuna.pruners.NopPruner()
