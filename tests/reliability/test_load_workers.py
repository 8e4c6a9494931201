"""Four HPO workers on one study, on each storage (a journal file, SQLite, PostgreSQL): the study's trial budget is
met exactly, trial numbers are unique and contiguous, and no trial is lost (each counted trial finished its folds);
workers cleaning up the same trial folder at once do not trip over each other. Two sweeps of two study folders started
together on one storage make one study: the other sweep is refused.

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

from training.hpo import load_study, run_local_hpo_sweep
from training.hpo.study_folder import StudyFolder
from training.hpo.sweep_settings import SweepSettings

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


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["journal", "sqlite", "postgresql"])
def test_sweeps_of_two_folders_started_together_on_one_storage_make_one_study(
    storage: str,
    request: pytest.FixtureRequest,
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    sweep_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two `hpo run` of two new folders on one storage and study name, the second claiming the study after the first
    made it, before it recorded its sweep: the first sweeps, the second is refused in one line and leaves no folder."""
    shared = {"journal": str(tmp_path / "shared.journal"), "sqlite": f"sqlite:///{tmp_path / 'shared.db'}"}
    url = request.getfixturevalue("postgres_url") if storage == "postgresql" else shared[storage]
    first, second = tmp_path / "first", tmp_path / "second"
    command = training_command("hpo", "run", "--config-dir", sweep_config, "--hpo", "quick", "--n-trials", "1")
    joiners = []
    save = SweepSettings.save

    def made_while_the_second_claims(record: SweepSettings, study: Any) -> None:
        joiners.append(spawn([*command, "--study-dir", second, "--storage", url, "--inprocess"], "second"))
        joiners[0].wait_for((second / ".study.lock").exists, "the second sweep at its claim", timeout=300)
        time.sleep(2)  # it opens the storage and finds the study, which has no record yet (both saved theirs)
        save(record, study)

    monkeypatch.setattr(SweepSettings, "save", made_while_the_second_claims)
    hpo = sweep_config / "hpo" / "quick.yaml"
    run = {"config_dir": sweep_config, "n_trials": 1, "isolation": "inprocess", "storage": url}
    study = run_local_hpo_sweep(None, hpo, study_dir=first, **run)

    (joiner,) = joiners
    assert joiner.finish() == 2, joiner.output()[-3000:]
    errors = [line for line in joiner.output().splitlines() if line.startswith("training hpo run: error:")]
    assert len(errors) == 1 and "Traceback" not in joiner.output(), joiner.output()[-3000:]
    assert f"holds the study 'quick' of the study folder {first}, not this folder's" in errors[0]
    assert not second.exists()
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE]
    assert SweepSettings.load(study).study_dir == str(first)


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
