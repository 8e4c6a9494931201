"""Which trial models a study keeps: the best trial's (`best`), every trial's (`all`) or none (`none`).

Only `model/` and `checkpoint/` of finished trials are deleted; logs, configs and metrics stay for the report.
Everything goes through `StudyFolder.remove`, which never deletes outside the study folder or through a link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import optuna
from optuna.trial import TrialState

from training.hpo.study_folder import StudyFolder

Keep = Literal["best", "all", "none"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def best_trial_number(study: optuna.Study) -> int | None:
    """The best complete trial's number, or None before any trial completed."""
    try:
        return study.best_trial.number
    except ValueError:
        return None


def clean_checkpoints(study: optuna.Study, folder: StudyFolder, keep: Keep) -> list[Path]:
    """Delete the model folders of finished trials that `keep` does not keep; returns what was deleted.

    Safe while other workers run: a trial that is not the best now can never become the best later.
    """
    if keep == "all":
        return []
    best = best_trial_number(study) if keep == "best" else None
    removed = []
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        if trial.number == best:
            continue
        for fold in sorted(folder.trial(trial.number).glob("fold-*")):
            for name in ("model", "checkpoint"):
                target = fold / name
                if target.exists() or target.is_symlink():
                    folder.remove(target)
                    removed.append(target)
    return removed
