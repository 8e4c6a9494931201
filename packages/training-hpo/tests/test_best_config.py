"""`extract_best_config_from_study` run by several workers of one study at their ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from training.common.errors import InputError
from training.config import BestConfig, HPOConfig, TrainingConfig
from training.hpo import extract_best_config_from_study
from training.hpo.storage import open_storage, storage_location
from training.hpo.study_folder import StudyFolder
from training.hpo.sweep_settings import SweepSettings

EXTRACT = """
import sys
from pathlib import Path
import optuna
from training.hpo import extract_best_config_from_study
from training.hpo.storage import open_storage
study = optuna.load_study(study_name="ends", storage=open_storage(sys.argv[1]))
Path(sys.argv[2] + ".ready").touch()
while not Path(sys.argv[2]).exists():
    extract_best_config_from_study(study, study_dir=sys.argv[3])
"""


def test_a_worker_ending_with_an_older_view_never_writes_over_a_newer_best_config(
    tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig], tmp_path: Path
) -> None:
    # A worker that read the trials, then wrote best_config.json after another worker had written the newer best
    # (its last trial), left the older best on disk.
    folder = StudyFolder(tmp_path / "study")
    location = storage_location("journal", folder)  # a SQLite read paused by SIGSTOP would lock out the writes
    study = optuna.create_study(study_name="ends", storage=open_storage(location), direction="maximize")
    SweepSettings(
        config=tiny_config,
        config_fingerprint=tiny_config.fingerprint,
        hpo_config=quick_settings("ends"),
        dataset_fingerprint="0" * 64,
        data_path=None,
        study_dir=str(folder.root),
        storage=location,
        max_epochs=1,
    ).save(study)
    study.tell(study.ask(), 0.1)
    for attempt in range(8):
        stop = tmp_path / f"stop-{attempt}"
        other = subprocess.Popen([sys.executable, "-c", EXTRACT, location, str(stop), str(folder.root)])
        while not Path(f"{stop}.ready").exists():
            assert other.poll() is None
            time.sleep(0.05)
        time.sleep(0.2 + 0.037 * attempt)  # somewhere in one of its extractions
        os.kill(other.pid, signal.SIGSTOP)
        study.tell(study.ask(), 0.2 + attempt / 10)  # the newest best, which the paused worker has not read
        mine = threading.Thread(target=extract_best_config_from_study, args=(study,), kwargs={"study_dir": folder.root})
        mine.start()
        mine.join(timeout=1)
        stop.touch()
        os.kill(other.pid, signal.SIGCONT)
        mine.join()
        assert other.wait(timeout=60) == 0
        assert BestConfig.load(folder.best_config).study.trial_number == attempt + 1, attempt


def test_a_study_without_a_best_or_a_file_for_a_folder_is_refused_before_anything_is_written(
    tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig], tmp_path: Path
) -> None:
    study = optuna.create_study(study_name="none", direction="maximize")
    SweepSettings(
        config=tiny_config,
        config_fingerprint=tiny_config.fingerprint,
        hpo_config=quick_settings("none"),
        dataset_fingerprint="0" * 64,
        data_path=None,
        study_dir=str(tmp_path / "study"),
        storage="sqlite:///:memory:",
        max_epochs=1,
    ).save(study)
    with pytest.raises(InputError, match=r"^study 'none' has no complete trial yet, so no best configuration$"):
        extract_best_config_from_study(study)
    assert not list(tmp_path.iterdir())
    study.tell(study.ask(), 0.5)
    (tmp_path / "notes.txt").write_text("a file\n")
    with pytest.raises(InputError, match=f"^{tmp_path / 'notes.txt'}: is a file; expected a study folder$"):
        extract_best_config_from_study(study, study_dir=tmp_path / "notes.txt")
