"""Optional MLflow tracking of a final run: tagged with its lineage, the model logged and registered.

Off unless a tracking URI is given; mlflow is imported only then (extra `training-execution[mlflow]`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from training.common.errors import InputError
from training.common.optional import require
from training.core.run_folder import RunFolder
from training.execution.lineage import LINEAGE_FILE, Lineage

EXPERIMENT = "final-training"


@dataclass(frozen=True)
class TrackedRun:
    """Where a final run was logged: the MLflow run, its model artifact and the registered version if any."""

    tracking_uri: str
    run_id: str
    model_uri: str
    model_name: str | None = None
    model_version: str | None = None


def log_final_run(
    run_dir: str | os.PathLike[str],
    lineage: Lineage,
    tracking_uri: str,
    registered_model_name: str | None = None,
    experiment_name: str = EXPERIMENT,
) -> TrackedRun:
    """Log the finished run in `run_dir` as one MLflow run and (optionally) register its model from it.

    A new experiment on a `sqlite:///path/db` store keeps its artifacts in `mlartifacts/` beside the database.
    """
    mlflow = require("mlflow", "tracking (tracking_uri=...)")
    run = RunFolder(Path(run_dir))
    if not run.model.is_dir():
        raise InputError(f"{run.model}: no model folder to log; has the run finished?")
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(experiment_name, artifact_location=_artifact_location(tracking_uri))
    )
    tags = lineage.to_tags()
    created = client.create_run(experiment_id, tags=tags, run_name=lineage.run_id)
    run_id = created.info.run_id
    for key, value in lineage.final_metrics.items():
        client.log_metric(run_id, key, value)
    for name, value in lineage.hyperparameters.items():
        client.log_param(run_id, name, value)
    client.log_artifacts(run_id, str(run.model), "model")
    for file in (run.root / LINEAGE_FILE, run.config, run.metrics):
        client.log_artifact(run_id, str(file))
    client.set_terminated(run_id)
    model_uri = f"runs:/{run_id}/model"
    if registered_model_name is None:
        return TrackedRun(tracking_uri, run_id, model_uri)
    if not client.search_registered_models(filter_string=f"name = '{registered_model_name}'"):
        client.create_registered_model(registered_model_name)
    version = client.create_model_version(
        registered_model_name, source=f"{created.info.artifact_uri}/model", run_id=run_id, tags=tags
    )
    return TrackedRun(tracking_uri, run_id, model_uri, registered_model_name, str(version.version))


def _artifact_location(tracking_uri: str) -> str | None:
    if tracking_uri.startswith("sqlite:///"):
        return str(Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts")
    return None
