"""`StudyFolder`: the paths of a study folder, and its lock."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from training.common.errors import InputError
from training.hpo.study_folder import StudyFolder, StudyManifest


def test_a_path_attribute_is_a_path_on_a_folder_and_its_descriptor_on_the_class(tmp_path: Path) -> None:
    assert StudyFolder(tmp_path).manifest == tmp_path / "study.json"
    descriptor = StudyFolder.manifest
    assert descriptor is StudyFolder.__dict__["manifest"] and descriptor.name == "study.json"
    assert dict(inspect.getmembers(StudyFolder))["manifest"] is descriptor


def test_a_new_folder_whose_lock_is_held_by_a_refused_sweep_is_removed_again(tmp_path: Path) -> None:
    """A sweep refused while it held the lock of a new study folder left the folder (and the lock file) behind; an
    existing folder, or one written to meanwhile, is kept."""
    new = StudyFolder(tmp_path / "new" / "study")
    with pytest.raises(InputError, match=r"^refused$"), new.locked():
        raise InputError("refused")
    assert not (tmp_path / "new").exists()
    written = StudyFolder(tmp_path / "written")
    with pytest.raises(InputError), written.locked():
        written.write_manifest(StudyManifest(study_name="s", storage="journal"))
        raise InputError("refused")
    assert written.manifest.is_file()
    existing = StudyFolder(tmp_path / "existing")
    existing.root.mkdir()
    with pytest.raises(InputError), existing.locked():
        raise InputError("refused")
    assert existing.root.is_dir()
