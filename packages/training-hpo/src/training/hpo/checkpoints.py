"""Which trial models a study keeps: the best trial's (`best`), every trial's (`all`) or none (`none`).

Only `model/` (and `checkpoint/`, which trials wrote before they stopped writing one) of finished trials are
deleted; logs, configs and metrics stay for the report.
Everything goes through `StudyFolder.remove`, which never deletes outside the study folder or through a link.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from training.hpo.study_folder import StudyFolder
from training.hpo.trial_record import TrialRecord

Keep = Literal["best", "all", "none"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def best_trial(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> FrozenTrial | None:
    """The best complete trial of `trials` (default: the study's), or None; ties go to the lower CV std, then the
    earlier trial."""
    complete = [
        trial
        for trial in (study.get_trials(deepcopy=False) if trials is None else trials)
        if trial.state == TrialState.COMPLETE and trial.value is not None
    ]
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0

    def rank(trial: FrozenTrial) -> tuple[float, float, int]:
        std = TrialRecord.of(trial).cv_std
        return sign * float(trial.value or 0.0), math.inf if std is None else float(std), trial.number

    return min(complete, key=rank, default=None)


def best_trial_number(study: optuna.Study) -> int | None:
    """The best complete trial's number, or None before any trial completed."""
    best = best_trial(study)
    return best.number if best is not None else None


def clean_checkpoints(study: optuna.Study, folder: StudyFolder, keep: Keep) -> list[Path]:
    """Delete the model folders of finished trials that `keep` does not keep; returns what was deleted. The best is
    chosen from the same list that is cleaned, so workers finishing meanwhile cannot race it."""
    if keep == "all":
        return []
    trials = study.get_trials(deepcopy=False)
    best = best_trial(study, trials) if keep == "best" else None
    removed = []
    for trial in trials:
        if trial.state not in FINISHED or (best is not None and trial.number == best.number):
            continue
        for fold in sorted(folder.trial(trial.number).glob("fold-*")):
            for name in ("model", "checkpoint"):
                target = fold / name
                if target.exists() or target.is_symlink():
                    folder.remove(target)
                    removed.append(target)
    return removed
