"""Which trial models a study keeps, and that cleaning never deletes outside the study folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from training.common.errors import InputError
from training.hpo.checkpoints import best_trial_number, clean_checkpoints
from training.hpo.study_folder import StudyFolder


@pytest.fixture
def copied(swept: tuple, tmp_path: Path) -> tuple[optuna.Study, StudyFolder]:
    """A copy of the swept study whose every trial has model and checkpoint folders again."""
    study, study_dir = swept
    root = tmp_path / "study"
    shutil.copytree(study_dir, root)
    for fold in root.glob("trials/*/fold-*"):
        for name in ("model", "checkpoint"):
            (fold / name).mkdir(exist_ok=True)
            (fold / name / "weights.bin").write_bytes(b"0")
    copy = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{root / 'study.db'}")
    return copy, StudyFolder(root)


def models(folder: StudyFolder) -> set[str]:
    return {str(path.relative_to(folder.trials)) for path in folder.trials.glob("*/fold-*/model")}


def test_keep_best_all_or_none(copied: tuple[optuna.Study, StudyFolder]) -> None:
    study, folder = copied
    best = best_trial_number(study)
    assert clean_checkpoints(study, folder, "all") == []
    assert len(models(folder)) == 6
    removed = clean_checkpoints(study, folder, "best")
    assert len(removed) == 2 * 2 * 2  # two other trials, two folds, model and checkpoint
    assert models(folder) == {f"{best}/fold-0/model", f"{best}/fold-1/model"}
    assert all((fold / "metrics.json").is_file() for fold in folder.trials.glob("*/fold-*"))
    clean_checkpoints(study, folder, "none")
    assert models(folder) == set()


def test_cleaning_refuses_a_link_out_of_the_study_folder(
    copied: tuple[optuna.Study, StudyFolder], tmp_path: Path
) -> None:
    study, folder = copied
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    other = next(trial.number for trial in study.trials if trial.number != best_trial_number(study))
    model = folder.fold(other, 0) / "model"
    shutil.rmtree(model)
    model.symlink_to(outside, target_is_directory=True)
    with pytest.raises(InputError, match=f"refusing to delete through the symbolic link {model}"):
        clean_checkpoints(study, folder, "best")
    assert (outside / "keep.txt").read_text() == "mine"

    trial_dir = folder.trial(other)
    shutil.rmtree(trial_dir)
    (outside / "fold-0" / "model").mkdir(parents=True)
    trial_dir.symlink_to(outside, target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        clean_checkpoints(study, folder, "best")
    assert (outside / "fold-0" / "model").is_dir()


def test_removal_stays_inside_the_study_folder(tmp_path: Path) -> None:
    folder = StudyFolder(tmp_path / "study")
    (folder.root / "trials").mkdir(parents=True)
    neighbour = tmp_path / "neighbour"
    neighbour.mkdir()
    with pytest.raises(InputError, match="lies outside the study folder"):
        folder.remove(folder.root / "trials" / ".." / ".." / "neighbour")
    with pytest.raises(InputError, match="lies outside the study folder"):
        folder.remove(neighbour)
    with pytest.raises(InputError, match="refusing to delete the study folder itself"):
        folder.remove(folder.root / "trials" / "..")
    assert neighbour.is_dir() and folder.root.is_dir()
    folder.remove(folder.root / "trials")
    assert not (folder.root / "trials").exists()


def test_ties_in_the_objective_go_to_the_lower_cv_std_then_the_earlier_trial() -> None:
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    study = optuna.create_study(direction="maximize")
    space = {"x": FloatDistribution(0, 1)}
    for std in (0.2, 0.1, 0.1):
        study.add_trial(create_trial(value=0.5, params={"x": std}, distributions=space, user_attrs={"cv_std": std}))
    study.add_trial(create_trial(value=0.4, params={"x": 0.0}, distributions=space, user_attrs={"cv_std": 0.0}))
    assert best_trial_number(study) == 1
