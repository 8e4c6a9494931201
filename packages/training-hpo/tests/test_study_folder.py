"""`StudyFolder`: the paths of a study folder."""

from __future__ import annotations

import inspect
from pathlib import Path

from training.hpo.study_folder import StudyFolder


def test_a_path_attribute_is_a_path_on_a_folder_and_its_descriptor_on_the_class(tmp_path: Path) -> None:
    assert StudyFolder(tmp_path).manifest == tmp_path / "study.json"
    descriptor = StudyFolder.manifest
    assert descriptor is StudyFolder.__dict__["manifest"] and descriptor.name == "study.json"
    assert dict(inspect.getmembers(StudyFolder))["manifest"] is descriptor
