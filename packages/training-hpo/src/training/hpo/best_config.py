"""`extract_best_config_from_study`: the best trial as a typed `BestConfig`, saved as `best_config.json`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from training.common.atomic import check_folder
from training.common.errors import InputError, expect_instance
from training.common.file_lock import file_lock
from training.config.best import BestConfig, StudyRef
from training.hpo.checkpoints import best_trial
from training.hpo.storage import study_location
from training.hpo.study_folder import StudyFolder
from training.hpo.sweep_settings import SweepSettings
from training.hpo.trial_record import TrialRecord


def extract_best_config_from_study(
    study: optuna.Study, *, study_dir: str | os.PathLike[str] | None = None
) -> BestConfig:
    """The best complete trial: base config, hyperparameters, epochs to refit, CV mean and spread, provenance; also
    written to `<study_dir>/best_config.json` (default: the study's own folder)."""
    # a study folder or name raised an AttributeError ('user_attrs')
    expect_instance(study, optuna.Study, "study", "an optuna.Study (load_study(study_dir) opens a study folder)")
    record = SweepSettings.load(study)
    folder = StudyFolder((Path(study_dir) if study_dir is not None else Path(record.study_dir)).resolve())
    first = best_trial(study)
    if first is None:
        raise InputError(f"study {study.study_name!r} has no complete trial yet, so no best configuration")
    check_folder(folder.root, "a study folder")  # both before the folder is touched
    with file_lock(folder.lock):  # workers ending together: the last to write read the study last
        best = _best_config(study, best_trial(study) or first, record, folder)  # `or`: complete trials stay complete
        best.save(folder.best_config)
    return best


def _best_config(study: optuna.Study, trial: FrozenTrial, record: SweepSettings, folder: StudyFolder) -> BestConfig:
    attrs, maximize = TrialRecord.of(trial), study.direction == StudyDirection.MAXIMIZE
    storage = record.storage
    if folder.manifest.is_file():  # a moved or copied folder's own study.db, not the one where the sweep began
        opened = study_location(folder.root)[0]
        storage = opened if opened != folder.read_manifest().storage else storage
    return BestConfig(
        config=record.config,
        hyperparameters=attrs.hyperparameters,
        num_epochs=refit_epochs(attrs.fold_best_epochs),
        study=StudyRef(
            metric=record.hpo_config.metric,
            direction="maximize" if maximize else "minimize",
            objective=float(trial.value),
            cv_std=attrs.cv_std or 0.0,
            fold_values=attrs.fold_values,
            trial_number=trial.number,
            study_name=study.study_name,
            storage=storage,
            dataset_fingerprint=record.dataset_fingerprint,
        ),
        data_path=record.data_path,
        splits_path=str(folder.splits) if record.hpo_config.validation == "kfold" else None,
        checkpoint=best_fold_model(folder.trial(trial.number), attrs.fold_values, maximize),
    )


def refit_epochs(fold_best_epochs: Sequence[int | None]) -> int | None:
    """The epochs a refit trains: the mean over folds of the epoch each fold was best at, rounded (at least 1)."""
    epochs = [epoch for epoch in fold_best_epochs if epoch is not None]
    return max(1, round(sum(epochs) / len(epochs))) if epochs else None


def best_fold_model(trial_dir: Path, fold_values: Sequence[float], maximize: bool) -> str | None:
    """The model folder of the trial's best fold (the first of equals), where it was kept."""
    if not fold_values:
        return None
    best = (max if maximize else min)(range(len(fold_values)), key=fold_values.__getitem__)
    model = trial_dir / f"fold-{best}" / "model"
    return str(model) if model.is_dir() else None
