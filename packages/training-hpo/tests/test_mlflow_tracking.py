"""MLflow tracking of a sweep: one parent run per study (found again on resume), a nested run per trial with its
parameters, per-epoch and per-fold values, state and fail reason; the final run linked to both. A local store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from training.common.errors import ConfigError
from training.config import HPOConfig, TrainingConfig
from training.hpo.failures import TrialFailed
from training.hpo.sweep_settings import SweepSettings

mlflow = pytest.importorskip("mlflow", reason='sweep tracking needs pip install "training-hpo[mlflow]"')

from training.execution.tracking import CONFIG_SETTING, connect  # noqa: E402
from training.hpo.mlflow_tracking import SweepTracker  # noqa: E402  (after the skip: it imports mlflow)

# Two folds of at most 2 epochs: intermediate steps 0, 1 (fold 0 epochs), 2 (mean after fold 0), 3, 4, 5.
REPORTS = ((0, 0.2), (1, 0.4), (2, 0.4), (3, 0.3), (4, 0.6), (5, 0.5))


def sweep_record(config: TrainingConfig, hpo: HPOConfig, storage: str) -> SweepSettings:
    return SweepSettings(
        config=config,
        config_fingerprint=config.fingerprint,
        hpo_config=hpo,
        dataset_fingerprint="0" * 64,
        data_path=None,
        study_dir="/studies/tracked",
        storage=storage,
        max_epochs=2,
    )


def objective(trial: optuna.Trial) -> float:
    """Trial 0 completes, trial 1 is pruned after one epoch, trial 2 fails: as the sweep's objective records them."""
    learning_rate = trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True)
    trial.set_user_attr("hyperparameters", {"training.learning_rate": learning_rate})
    if trial.number == 1:
        trial.report(0.1, 0)
        raise optuna.TrialPruned("pruned at step 0")
    if trial.number == 2:
        trial.set_user_attr("fail_reason", "trial 2: CUDA out of memory")
        raise TrialFailed("trial 2: CUDA out of memory")
    for step, value in REPORTS:
        trial.report(value, step)
    trial.set_user_attr("fold_values", [0.4, 0.6])
    trial.set_user_attr("cv_std", 0.1)
    return 0.5


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh local MLflow store (SQLite; artifacts beside it)."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def record(tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig]) -> SweepSettings:
    return sweep_record(tiny_config, quick_settings("tracked"), "sqlite:////studies/tracked/study.db")


def tracker_of(store: str, record: SweepSettings) -> SweepTracker:
    return SweepTracker(connect(store, CONFIG_SETTING), store, "tracked", record)


def history(client: mlflow.MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((metric.step, pytest.approx(metric.value)) for metric in client.get_metric_history(run_id, key))


@pytest.mark.slow
def test_trials_become_nested_runs_under_one_parent_run_per_study(store: str, record: SweepSettings) -> None:
    tracker = tracker_of(store, record)
    study = optuna.create_study(study_name="tracked", direction="maximize")

    study.optimize(objective, n_trials=3, callbacks=[tracker], catch=(TrialFailed,))
    tracker.end("FINISHED")

    client = mlflow.MlflowClient(tracking_uri=store)
    parent = client.get_run(tracker.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "tracked"
    assert parent.data.tags["training.kind"] == "sweep" and parent.data.tags["training.study"] == "tracked"
    assert parent.data.params["metric"] == "entity_f1" and parent.data.params["folds"] == "2"
    assert parent.data.tags["best_trial"] == "0" and parent.data.metrics["best_entity_f1"] == 0.5
    runs = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", order_by=["run_name"]
    )
    assert [(run.info.run_name, run.info.status) for run in runs] == [
        ("trial-0", "FINISHED"),
        ("trial-1", "KILLED"),
        ("trial-2", "FAILED"),
    ]
    complete, pruned, failed = runs
    assert float(complete.data.params["training.learning_rate"]) == study.trials[0].params["learning_rate"]
    assert complete.data.tags["training.trial_number"] == "0" and complete.data.tags["state"] == "complete"
    assert history(client, complete.info.run_id, "entity_f1_epoch") == [(0, 0.2), (1, 0.4), (2, 0.3), (3, 0.6)]
    assert history(client, complete.info.run_id, "entity_f1_cv_running_mean") == [(0, 0.4), (1, 0.5)]
    assert history(client, complete.info.run_id, "entity_f1_fold") == [(0, 0.4), (1, 0.6)]
    assert complete.data.metrics["entity_f1"] == 0.5 and complete.data.metrics["cv_std"] == 0.1
    assert history(client, pruned.info.run_id, "entity_f1_epoch") == [(0, 0.1)]
    assert pruned.data.tags["state"] == "pruned"
    assert failed.data.tags["fail_reason"] == "trial 2: CUDA out of memory" and "entity_f1" not in failed.data.metrics
    assert complete.info.start_time == int(study.trials[0].datetime_start.timestamp() * 1000)


def test_a_resumed_sweep_finds_its_parent_run_and_another_storage_gets_its_own(
    store: str, record: SweepSettings
) -> None:
    first = tracker_of(store, record)
    first.end("KILLED")

    again = tracker_of(store, record)
    elsewhere = tracker_of(store, record.model_copy(update={"storage": "journal.log"}))

    client = mlflow.MlflowClient(tracking_uri=store)
    assert again.parent_run_id == first.parent_run_id
    assert client.get_run(first.parent_run_id).info.status == "RUNNING"
    assert elsewhere.parent_run_id != first.parent_run_id


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://host/runs", "tracking.mlflow: 'ftp://host/runs' is not an MLflow tracking URI; expected file, sqlite"),
        ("http://127.0.0.1:9", "tracking.mlflow: cannot use MLflow tracking URI 'http://127.0.0.1:9': "),
        ("http://me:pa55@127.0.0.1:9", "tracking.mlflow: cannot use MLflow tracking URI 'http://me:***@127.0.0.1:9': "),
    ],
)
def test_a_bad_or_unreachable_tracking_uri_is_one_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, uri: str, message: str
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once, not after minutes of retries
    with pytest.raises(ConfigError) as caught:
        connect(uri, CONFIG_SETTING)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert "pa55" not in str(caught.value)


def test_a_sweep_s_bad_tracking_uri_is_named_where_it_came_from(
    tiny_config: TrainingConfig,
    quick_settings: Callable[..., HPOConfig],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad mlflow_uri (--mlflow-uri) was named tracking.mlflow, a setting the caller never wrote."""
    from training.hpo import load_study, resume_hpo_sweep, run_local_hpo_sweep

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once, not after minutes of retries
    run = {"search_space": quick_settings("bad-uri"), "study_dir": tmp_path / "study", "isolation": "inprocess"}
    with pytest.raises(ConfigError, match=r"^mlflow_uri \(--mlflow-uri\): 'bogus://x' is not an MLflow tracking URI"):
        run_local_hpo_sweep(config=tiny_config, mlflow_uri="bogus://x", **run)
    config = tiny_config.with_values({"tracking.mlflow": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError, match=r"^tracking.mlflow: cannot use MLflow tracking URI 'http://127.0.0.1:9': "):
        run_local_hpo_sweep(config=config, **run)
    assert not (tmp_path / "study").exists()
    study = run_local_hpo_sweep(config=tiny_config, mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", **run)
    (tmp_path / "mlflow.db").write_text("not a database\n")  # the recorded store, unusable on a continuing run
    recorded = r"^the study's recorded mlflow_uri: cannot use MLflow tracking URI "  # not --mlflow-uri, never given
    with pytest.raises(ConfigError, match=recorded):
        run_local_hpo_sweep(config=tiny_config, **run)
    with pytest.raises(ConfigError, match=recorded):
        resume_hpo_sweep(tmp_path / "study")
    assert len(load_study(tmp_path / "study").trials) == len(study.trials)


@pytest.mark.slow
def test_a_tracked_sweep_its_resume_and_its_final_run_share_one_parent_run(
    tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig], store: str, tmp_path: Path
) -> None:
    from training.config import BestConfig
    from training.execution import execute_final_training
    from training.hpo import resume_hpo_sweep, run_local_hpo_sweep

    uri, study_dir = store, tmp_path / "study"
    hpo = quick_settings("tracked-sweep")
    config = tiny_config.with_values({"tracking.tensorboard": True})
    run_local_hpo_sweep(None, hpo, config=config, study_dir=study_dir, isolation="inprocess", mlflow_uri=uri)
    study = resume_hpo_sweep(study_dir, n_trials=3, isolation="inprocess", mlflow_uri=uri)

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked-sweep")
    parents = client.search_runs([experiment.experiment_id], "tags.`training.kind` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trials = client.search_runs([experiment.experiment_id], "tags.`training.kind` = 'trial'", order_by=["run_name"])
    assert [run.info.run_name for run in trials] == ["trial-0", "trial-1", "trial-2"]
    assert {run.data.tags["mlflow.parentRunId"] for run in trials} == {parents[0].info.run_id}
    for run, trial in zip(trials, study.trials, strict=True):
        assert history(client, run.info.run_id, "entity_f1_fold") == [
            (fold, value) for fold, value in enumerate(trial.user_attrs["fold_values"])
        ]
        # One epoch per fold, at most 2 (the base config): fold 1 starts at step 2.
        assert [step for step, _ in history(client, run.info.run_id, "entity_f1_epoch")] == [0, 2]

    for trial in study.trials:  # each fold of each trial writes its TensorBoard events under the study folder
        for fold in (0, 1):
            assert list((study_dir / "trials" / str(trial.number) / f"fold-{fold}" / "tensorboard").glob("events.*"))

    best = BestConfig.load(study_dir / "best_config.json")
    job = execute_final_training(best, output_dir=tmp_path / "final", tracking_uri=uri)
    final = client.get_run(job.tracked_run.run_id)
    assert final.data.tags["training.sweep_run_id"] == parents[0].info.run_id
    assert final.data.tags["training.trial_run_id"] == trials[best.study.trial_number].info.run_id


def test_a_sweep_and_its_resume_each_connect_to_the_tracking_store_once(
    tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig], store: str, tmp_path: Path
) -> None:
    """A sweep connected twice (a check before its study folder is written, then again to track); it tracks with
    the connection it checked. A connection is MLflow's one `search_experiments` request, seen in SQLite's log."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from training.hpo import resume_hpo_sweep, run_local_hpo_sweep
    from training.hpo.failures import SweepStopped

    statements: list[str] = []

    def executed(connection: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    def connections() -> int:
        searches = [text for text in statements if text.startswith("SELECT experiments.") and "ORDER BY" in text]
        statements.clear()
        return len(searches)

    study_dir = tmp_path / "study"
    study_dir.mkdir()
    (study_dir / "cache").write_text("a file where the feature cache belongs\n")  # every trial fails at once
    hpo = quick_settings("connected", max_failed_trials=1)
    run = {"config": tiny_config, "study_dir": study_dir, "isolation": "inprocess", "mlflow_uri": store}
    event.listen(Engine, "before_cursor_execute", executed)
    try:
        with pytest.raises(SweepStopped):
            run_local_hpo_sweep(None, hpo, **run)
        assert connections() == 1
        with pytest.raises(SweepStopped):
            resume_hpo_sweep(study_dir, isolation="inprocess", mlflow_uri=store)
        assert connections() == 1
    finally:
        event.remove(Engine, "before_cursor_execute", executed)
    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("connected")
    assert len(client.search_runs([experiment.experiment_id], "tags.`training.kind` = 'trial'")) == 2


def test_a_resume_without_a_tracking_uri_logs_where_the_sweep_did(
    tiny_config: TrainingConfig,
    quick_settings: Callable[..., HPOConfig],
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep was given a store relative to its working directory; the resume starts in another one."""
    from training.hpo import resume_hpo_sweep, run_local_hpo_sweep
    from training.hpo.failures import SweepStopped
    from training.hpo.storage import load_study

    study_dir = tmp_path / "study"
    study_dir.mkdir()
    (study_dir / "cache").write_text("a file where the feature cache belongs\n")  # every trial fails at once
    hpo = quick_settings("kept-uri", max_failed_trials=1)
    monkeypatch.chdir(tmp_path)
    run = {"config": tiny_config, "study_dir": study_dir, "isolation": "inprocess", "mlflow_uri": "sqlite:///mlflow.db"}
    with pytest.raises(SweepStopped):
        run_local_hpo_sweep(None, hpo, **run)
    monkeypatch.chdir(study_dir)
    assert SweepSettings.load(load_study(study_dir)).mlflow_uri == store  # MLflow caches stores by URI in a process
    with pytest.raises(SweepStopped):
        resume_hpo_sweep(study_dir, isolation="inprocess")
    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("kept-uri")
    assert len(client.search_runs([experiment.experiment_id], "tags.`training.kind` = 'trial'")) == 2


def test_a_sweep_run_again_without_a_tracking_uri_logs_where_it_did(
    tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig], store: str, tmp_path: Path
) -> None:
    """`hpo run` of a started study (without --mlflow-uri) logged nowhere, though its resume logs to the study's URI."""
    from training.hpo import run_local_hpo_sweep
    from training.hpo.failures import SweepStopped

    study_dir = tmp_path / "study"
    study_dir.mkdir()
    (study_dir / "cache").write_text("a file where the feature cache belongs\n")  # every trial fails at once
    run = {"config": tiny_config, "study_dir": study_dir, "isolation": "inprocess"}
    hpo = quick_settings("run-again", max_failed_trials=1)
    with pytest.raises(SweepStopped):
        run_local_hpo_sweep(None, hpo, **run, mlflow_uri=store)
    with pytest.raises(SweepStopped):
        run_local_hpo_sweep(None, hpo, **run)
    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("run-again")
    assert len(client.search_runs([experiment.experiment_id], "tags.`training.kind` = 'trial'")) == 2


def test_a_resume_of_a_sweep_tracked_with_a_password_asks_for_the_uri(
    tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig], tmp_path: Path
) -> None:
    from training.common.errors import InputError
    from training.hpo import resume_hpo_sweep

    study_dir = tmp_path / "study"
    storage = f"sqlite:///{study_dir / 'study.db'}"
    study_dir.mkdir()
    study = optuna.create_study(study_name="secret-uri", storage=storage, direction="maximize")
    record = sweep_record(tiny_config, quick_settings("secret-uri"), storage)
    data = {"data_path": tiny_config.data.path, "dataset_fingerprint": tiny_config.data.load().fingerprint}
    record.model_copy(update={"mlflow_uri": "http://me:***@127.0.0.1:9", **data}).save(study)
    with pytest.raises(InputError, match=r"^tracking URI 'http://me:\*\*\*@127.0.0.1:9': the password is not stored"):
        resume_hpo_sweep(storage=storage, study_name="secret-uri", isolation="inprocess")


@pytest.mark.slow
def test_hpo_run_with_a_bad_mlflow_uri_exits_2_with_one_line(config_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "training.cli", "hpo", "run", "--config-dir", str(config_dir), "--hpo", "quick"]
    command += ["--study-dir", str(tmp_path / "study"), "--mlflow-uri", "ftp://host/runs"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("training hpo run: error:")] == [
        "training hpo run: error: mlflow_uri (--mlflow-uri): 'ftp://host/runs' is not an MLflow tracking URI; expected "
        "file, sqlite, postgresql, mysql, mssql, http, https, databricks, azureml: or a folder"
    ]
    assert not (tmp_path / "study").exists()  # stopped before the study was created


def test_a_sweep_that_joins_a_study_made_while_it_started_logs_where_that_study_does(
    tiny_config: TrainingConfig,
    quick_settings: Callable[..., HPOConfig],
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two sweeps started together on a new folder: the one that joins the other's study looked up where to log before
    the study existed, and logged to its config's tracking (nowhere) instead of the study's URI."""
    from training.hpo import run_local_hpo_sweep, sweep
    from training.hpo.failures import SweepStopped

    study_dir = tmp_path / "study"
    study_dir.mkdir()
    (study_dir / "cache").write_text("a file where the feature cache belongs\n")  # every trial fails at once
    run = {"config": tiny_config, "study_dir": study_dir, "isolation": "inprocess"}
    hpo = quick_settings("together", max_failed_trials=1)
    start = sweep.start_trial_processes

    def first_sweep_meanwhile(isolation: str) -> None:  # the other sweep makes the study between lookup and lock
        monkeypatch.setattr(sweep, "start_trial_processes", start)
        with pytest.raises(SweepStopped):
            run_local_hpo_sweep(None, hpo, **run, mlflow_uri=store)
        start(isolation)

    monkeypatch.setattr(sweep, "start_trial_processes", first_sweep_meanwhile)
    with pytest.raises(SweepStopped):
        run_local_hpo_sweep(None, hpo, **run)
    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("together")
    assert len(client.search_runs([experiment.experiment_id], "tags.`training.kind` = 'trial'")) == 2
