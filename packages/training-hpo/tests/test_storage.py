"""Study storage: where the default SQLite database of a study folder lies."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from training.hpo.storage import open_storage, storage_location
from training.hpo.study_folder import StudyFolder


@pytest.mark.parametrize("name", ["runs%202026", "why? not", "a#b [1] é"])
def test_the_default_database_lies_in_the_study_folder_whatever_its_name(tmp_path: Path, name: str) -> None:
    folder = StudyFolder(tmp_path / name / "study")
    location = storage_location(None, folder)
    optuna.create_study(study_name="s", storage=open_storage(location))
    assert folder.database.is_file()
    assert [path.name for path in tmp_path.iterdir()] == [name]
    assert optuna.load_study(study_name="s", storage=open_storage(location)).study_name == "s"
