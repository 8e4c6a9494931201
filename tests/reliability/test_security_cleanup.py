"""Cleanup deletes only inside its own root: `..` paths, absolute paths and symbolic links (as the target or anywhere
on the way) that lead out of a study folder or a run folder are refused, and what lies outside stays."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from training.common.errors import InputError
from training.hpo.study_folder import StudyFolder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the study and run folders, holding a file that must survive."""
    folder = tmp_path / "precious"
    (folder / "fold-0" / "model").mkdir(parents=True)
    (folder / "keep.txt").write_text("mine", encoding="utf-8")
    return folder


def intact(outside: Path) -> bool:
    return (outside / "keep.txt").read_text(encoding="utf-8") == "mine" and (outside / "fold-0" / "model").is_dir()


@pytest.mark.parametrize(
    ("trick", "message"),
    [
        ("dotdot", "lies outside the study folder"),
        ("absolute", "lies outside the study folder"),
        ("root", "refusing to delete the study folder itself"),
        ("link-as-target", "refusing to delete through the symbolic link"),
        ("link-on-the-way", "refusing to delete through the symbolic link"),
    ],
)
def test_study_cleanup_refuses_paths_out_of_the_study_folder(
    trick: str, message: str, outside: Path, tmp_path: Path
) -> None:
    """StudyFolder.remove (every deletion of a sweep goes through it) refuses each way out."""
    folder = StudyFolder(tmp_path / "study")
    trial = folder.trial(1)
    trial.mkdir(parents=True)
    if trick == "dotdot":
        target = folder.root / "trials" / ".." / ".." / "precious"
    elif trick == "absolute":
        target = outside / "fold-0" / "model"
    elif trick == "root":
        target = folder.root / "trials" / ".."
    elif trick == "link-as-target":
        target = trial / "fold-0"
        target.symlink_to(outside / "fold-0", target_is_directory=True)
    else:
        shutil.rmtree(trial)
        trial.symlink_to(outside, target_is_directory=True)
        target = trial / "fold-0" / "model"
    with pytest.raises(InputError, match=message):
        folder.remove(target)
    assert intact(outside) and folder.root.is_dir()


def test_a_run_folder_link_out_is_refused_on_restart(
    outside: Path,
    training_config: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    """`training train --restart` over a run whose checkpoint links out of it: exit 2 naming the link; outside kept."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint").symlink_to(outside, target_is_directory=True)
    completed = run_cli("train", "--config-dir", training_config, "--output", run, "--restart", "--quiet")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert f"{run / 'checkpoint'}: refusing to delete through a symbolic link in the run folder" in completed.stderr
    assert intact(outside)


def test_staging_leftovers_that_link_out_are_refused(
    outside: Path,
    training_config: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    """A planted `.model.x.tmp` link among the leftovers a resumed run deletes: exit 2 naming it; outside kept."""
    run = tmp_path / "run"
    run.mkdir()
    planted = run / ".model.x1y2.tmp"
    planted.symlink_to(outside, target_is_directory=True)
    completed = run_cli("train", "--config-dir", training_config, "--output", run, "--quiet")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert f"{planted}: refusing to delete through a symbolic link" in completed.stderr
    assert intact(outside)
