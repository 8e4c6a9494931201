"""Optional MLflow tracking of a final run: tagged with its lineage and the sweep runs it came from, the model
logged (as files and as a pyfunc model) and registered; mlflow is imported only when a tracking URI is given."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.common.errors import ConfigError, InputError, first_line
from training.common.fingerprint import fingerprint
from training.common.optional import require
from training.common.quiet import Quiet
from training.common.redact import redact_url
from training.config.validation import check_mlflow_uri
from training.core.run_folder import RunFolder
from training.execution.lineage import LINEAGE_FILE, Lineage

EXPERIMENT = "final-training"
CONFIG_SETTING = "tracking.mlflow"  # the config's tracking URI, named in messages about it
# Tags that tie the MLflow runs of a sweep (its parent run and a nested run per trial) and a final run together.
STUDY_TAG = "training.study"
STORAGE_TAG = "training.storage_fingerprint"
KIND_TAG = "training.kind"  # "sweep" (a study's parent run) or "trial"
TRIAL_TAG = "training.trial_number"
SWEEP_RUN_TAG, TRIAL_RUN_TAG = "training.sweep_run_id", "training.trial_run_id"
# MLflow's settings, read at each call, for its artifact progress bars and the run links it prints on stdout.
_QUIET_SETTINGS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def _hush_mlflow() -> Callable[[], None]:
    """Hides what MLflow (imported by then) prints among our output: its info and warning lines (a database set up,
    a pickled model), its Python warnings (shown, not filtered: it sets its own filters), progress bars and run links.
    Its errors still show; ours are raised."""
    logger, saved = logging.getLogger("mlflow"), {name: os.environ.get(name) for name in _QUIET_SETTINGS}
    level, show = logger.level, warnings.showwarning

    def show_ours(message: Any, category: Any, filename: str, lineno: int, *rest: Any) -> None:
        if "mlflow" not in Path(filename).parts:
            show(message, category, filename, lineno, *rest)

    logger.setLevel(logging.ERROR)
    os.environ.update(_QUIET_SETTINGS)
    warnings.showwarning = show_ours

    def restore() -> None:
        logger.setLevel(level)
        warnings.showwarning = show
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore


quiet_mlflow = Quiet(_hush_mlflow)


def storage_fingerprint(storage: str) -> str:
    """What a study's MLflow runs are found by: its storage URL without secrets, fingerprinted."""
    return fingerprint(redact_url(storage))


def connect(tracking_uri: str, setting: str) -> Any:
    """An `MlflowClient` of `tracking_uri`, checked by one request; a bad URI is a `ConfigError` naming `setting`."""
    mlflow = require("mlflow", setting)
    try:
        check_mlflow_uri(tracking_uri)
    except ValueError as error:
        raise ConfigError(redact_url(f"{setting}: {error}")) from None
    try:
        with quiet_mlflow():  # the first request sets a new database up, in info lines
            client = mlflow.MlflowClient(tracking_uri=tracking_uri)
            client.search_experiments(max_results=1)
    except Exception as error:  # any failure of the first request: the store is unusable, say which and why
        # The whole first line: MLflow ends some reasons with the fix (its file store names the variable to set).
        message = f"{setting}: cannot use MLflow tracking URI {tracking_uri!r}: {first_line(error)}"
        raise ConfigError(redact_url(message)) from error
    return client


def experiment_id(client: Any, name: str, tracking_uri: str) -> str:
    """The id of experiment `name`, created when missing (artifacts of a `sqlite:///` store go beside its file)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = str(Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts")
    return str(client.create_experiment(name, artifact_location=location))


@dataclass(frozen=True)
class TrackedRun:
    """Where a final run was logged: the MLflow run, its model files, its pyfunc model and registered version."""

    tracking_uri: str
    run_id: str
    model_uri: str
    pyfunc_uri: str
    model_name: str | None = None
    model_version: str | None = None


def log_final_run(
    run_dir: str | os.PathLike[str],
    lineage: Lineage,
    tracking_uri: str,
    registered_model_name: str | None = None,
    experiment_name: str = EXPERIMENT,
) -> TrackedRun:
    """Log the finished run in `run_dir` as one MLflow run, tagged with its sweep's and trial's runs when this store
    has them, and (optionally) register its model. A run logged before (reused by a rerun) is returned, not logged
    again."""
    run = RunFolder(Path(run_dir))
    if not run.model.is_dir():
        raise InputError(f"{run.model}: no model folder to log; has the run finished?")
    client = connect(tracking_uri, "tracking_uri")
    with quiet_mlflow():
        tags = {**lineage.to_tags(), **_sweep_links(client, lineage)}
        experiment = experiment_id(client, experiment_name, tracking_uri)
        same_run = {"run_id": lineage.run_id, "created_at": tags["created_at"]}  # a forced refit's is new (ms)
        logged = find_runs(client, experiment_name, same_run)
        finished = [found for found in logged if client.get_run(found).info.status == "FINISHED"]
        run_id = finished[0] if finished else _log_run(client, experiment, tags, lineage, run)
        from training.execution.mlflow_model import PYFUNC_PATH

        model_uri, pyfunc_uri = f"runs:/{run_id}/model", f"runs:/{run_id}/{PYFUNC_PATH}"
        if registered_model_name is None:
            return TrackedRun(tracking_uri, run_id, model_uri, pyfunc_uri)
        if not client.search_registered_models(filter_string=f"name = '{registered_model_name}'"):
            client.create_registered_model(registered_model_name)
        versions = client.search_model_versions(f"name = '{registered_model_name}' and run_id = '{run_id}'")
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = versions[0] if versions else client.create_model_version(registered_model_name, source, run_id, tags)
        return TrackedRun(tracking_uri, run_id, model_uri, pyfunc_uri, registered_model_name, str(version.version))


def _log_run(client: Any, experiment: str, tags: dict[str, str], lineage: Lineage, run: RunFolder) -> str:
    """A new MLflow run holding the run folder's metrics, hyperparameters, model (files and pyfunc) and records."""
    run_id = str(client.create_run(experiment, tags=tags, run_name=lineage.run_id).info.run_id)
    for key, value in lineage.final_metrics.items():
        client.log_metric(run_id, key, value)
    for name, value in lineage.hyperparameters.items():
        client.log_param(run_id, name, value)
    client.log_artifacts(run_id, str(run.model), "model")
    client.log_artifact(run_id, str(run.root / LINEAGE_FILE), "model")  # a registered version's download carries it
    for file in (run.root / LINEAGE_FILE, run.config, run.metrics):
        client.log_artifact(run_id, str(file))
    from training.execution.mlflow_model import log_pyfunc_model

    log_pyfunc_model(client, run_id, run)
    client.set_terminated(run_id)
    return run_id


def _sweep_links(client: Any, lineage: Lineage) -> dict[str, str]:
    """Tags naming the MLflow runs of the study and trial the final config came from, where this store has them."""
    chosen = lineage.study
    if chosen is None:
        return {}
    study = {STUDY_TAG: chosen.study_name, STORAGE_TAG: storage_fingerprint(chosen.storage)}
    sweep = find_runs(client, chosen.study_name, {**study, KIND_TAG: "sweep"})
    trial = find_runs(client, chosen.study_name, {**study, KIND_TAG: "trial", TRIAL_TAG: str(chosen.trial_number)})
    return {tag: runs[0] for tag, runs in ((SWEEP_RUN_TAG, sweep), (TRIAL_RUN_TAG, trial)) if runs}


def find_runs(client: Any, experiment_name: str, tags: dict[str, str]) -> list[str]:
    """Ids of the live runs of `experiment_name` carrying all `tags`, oldest first."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    quoted = {key: value.replace("\\", "\\\\").replace("'", "\\'") for key, value in tags.items()}
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in quoted.items())
    runs = client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time ASC"])
    return [run.info.run_id for run in runs]
