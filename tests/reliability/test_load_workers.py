"""Four HPO workers on one study, on each storage (a journal file, SQLite, PostgreSQL): the study's trial budget is
met exactly, trial numbers are unique and contiguous, and no trial is lost (each counted trial finished its folds);
workers cleaning up the same trial folder at once do not trip over each other.

Trials are cheap on purpose (the tiny BERT, 36 short documents, one epoch per fold, run in the worker's process):
what is under load here is the storage and the budget logic, not training.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from training.hpo import load_study
from training.hpo.study_folder import StudyFolder

pytestmark = pytest.mark.usefixtures("single_thread")
WORKERS = 4
N_TRIALS = 24


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["journal", "sqlite", "postgresql"])
def test_four_workers_meet_the_budget_exactly(
    storage: str,
    request: pytest.FixtureRequest,
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    assert_readable: Callable[..., int],
    started_study: Callable[..., Any],
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """4 workers on one study: exactly the budget of trials counted, numbers unique, none lost or left running."""
    url = request.getfixturevalue("postgres_url") if storage == "postgresql" else {"journal": "journal"}.get(storage)
    study_dir = tmp_path / "study"
    started_study(study_dir, N_TRIALS, storage=url)
    given = ["--storage", url] if storage == "postgresql" else []
    worker = training_command("hpo", "worker", "--study-dir", study_dir, *given, "--inprocess")
    started = time.monotonic()
    workers = [spawn(worker, f"worker-{index}") for index in range(WORKERS)]
    for child in workers:
        assert child.finish(timeout=400) == 0, child.output()[-3000:]
    record_figure("seconds", time.monotonic() - started)

    trials = load_study(study_dir, storage=url if storage == "postgresql" else None).trials
    assert [trial.number for trial in trials] == list(range(len(trials)))
    counted = [trial for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == N_TRIALS
    skipped = [trial for trial in trials if trial not in counted]
    assert all(trial.state == TrialState.FAIL and "skipped" in trial.user_attrs for trial in skipped)
    record_figure("trials started over budget and skipped", len(skipped))
    for trial in counted:
        assert (study_dir / "trials" / str(trial.number) / "fold-1" / "metrics.json").is_file()
    owners = {trial.user_attrs["owner"]["pid"] for trial in counted[1:]}
    assert owners <= {child.pid for child in workers}
    assert len(owners) >= 2, "the load was not shared"
    record_figure("workers that ran trials", len(owners))
    assert_readable(study_dir)


def clean(folder: StudyFolder, path: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
    """One worker's cleanup: delete `path` as soon as every worker is ready, recording any error."""
    start.wait(timeout=30)
    try:
        folder.remove(path)
    except BaseException as error:
        errors.append(error)


def test_workers_cleaning_one_folder_at_once_all_succeed(tmp_path: Path) -> None:
    """Four workers deleting the same trial model at the same moment: each returns, the folder is gone."""
    folder = StudyFolder(tmp_path / "study")
    model = folder.fold(1, 0) / "model"
    errors: list[BaseException] = []
    for _ in range(5):
        model.mkdir(parents=True)
        for index in range(300):
            (model / f"shard-{index}.bin").write_bytes(b"0")
        start = threading.Barrier(WORKERS)
        threads = [threading.Thread(target=clean, args=(folder, model, start, errors)) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors and not model.exists()
    assert [path.name for path in folder.fold(1, 0).iterdir()] == []
