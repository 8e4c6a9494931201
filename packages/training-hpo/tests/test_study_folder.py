"""`StudyFolder`: the paths of a study folder, and its lock."""

from __future__ import annotations

import inspect
import sys
import threading
import time
from pathlib import Path

import pytest

from training.common.errors import InputError
from training.common.file_lock import file_lock
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


def test_a_sweep_waiting_on_a_refused_sweeps_new_folder_holds_the_lock_of_the_folder_made_anew(tmp_path: Path) -> None:
    """The refused sweep removed its new folder after letting its lock go: a waiter that took the lock meanwhile held
    it on the removed file, and a later sweep locked the file made anew and went on beside it."""
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the waiter runs as soon as it wakes, as a process of its own would
    try:
        probed = _waiters_probes(tmp_path, rounds=100)
    finally:
        sys.setswitchinterval(switching)
    assert probed == ["held"] * 100


def _waiters_probes(tmp_path: Path, rounds: int) -> list[str]:
    probed: list[str] = []
    for round in range(rounds):
        folder = StudyFolder(tmp_path / str(round) / "study")
        refused = threading.Event()

        def waiter(folder: StudyFolder = folder, refused: threading.Event = refused) -> None:
            with folder.locked():
                refused.wait(10)  # the refused sweep has cleaned up
                try:
                    with file_lock(folder.lock, wait=False):
                        probed.append("another locked the folder beside this one")
                except BlockingIOError:
                    probed.append("held")

        thread = threading.Thread(target=waiter)
        with pytest.raises(InputError), folder.locked():
            thread.start()
            time.sleep(0.01)  # the waiter has opened the lock file and waits for it
            raise InputError("refused")
        refused.set()
        thread.join(10)
    return probed
