"""The few Azure ML calls the toolkit makes, behind one narrow client (`AzureClient`): create, get, stream,
children, download. `MLClientAzure` implements it with azure-ai-ml; `create_azure_client` is the one factory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from azure.ai.ml import MLClient
from azure.ai.ml.entities import Job
from azure.core.exceptions import ResourceNotFoundError
from pydantic import BaseModel, ConfigDict

from training.common.errors import ConfigError
from training.common.optional import require
from training.config.execution import AzureConfig


class ChildRun(BaseModel):
    """One trial of a sweep as the service reports it: its job name, Azure status and last value of each metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    status: str
    metrics: dict[str, float] = {}


@runtime_checkable
class AzureClient(Protocol):
    """The Azure ML service as the toolkit uses it."""

    @property
    def workspace(self) -> str: ...

    def check_compute(self, name: str) -> None:
        """Raise `ConfigError` when the workspace has no compute target `name`."""

    def create_job(self, job: Job) -> Job:
        """Submit `job`; returns it as created (with its name and studio URL)."""

    def get_job(self, name: str) -> Job: ...

    def stream_job(self, name: str) -> None:
        """Print the job's status and logs until it ends."""

    def child_runs(self, name: str) -> list[ChildRun]:
        """The trials of the sweep job `name`, with their metrics."""

    def download_output(self, name: str, output_name: str, target: Path) -> Path:
        """Download the job's output `output_name` under `target`; returns the folder that holds it."""


class MLClientAzure:
    """`AzureClient` over an `MLClient`; child-run metrics come from the workspace's MLflow tracking server."""

    def __init__(self, ml_client: MLClient) -> None:
        self.ml_client = ml_client

    @property
    def workspace(self) -> str:
        return str(self.ml_client.workspace_name)

    def check_compute(self, name: str) -> None:
        try:
            self.ml_client.compute.get(name)
        except ResourceNotFoundError:
            raise ConfigError(
                f"azure.compute: no compute target {name!r} in workspace {self.workspace!r}; "
                "create it or name an existing one"
            ) from None

    def create_job(self, job: Job) -> Job:
        return self.ml_client.jobs.create_or_update(job)

    def get_job(self, name: str) -> Job:
        return self.ml_client.jobs.get(name)

    def stream_job(self, name: str) -> None:
        self.ml_client.jobs.stream(name)

    def child_runs(self, name: str) -> list[ChildRun]:
        mlflow = require("mlflow", "reading the metrics of Azure ML trials")
        tracking = self.ml_client.workspaces.get(self.workspace).mlflow_tracking_uri
        client = mlflow.MlflowClient(tracking_uri=tracking)
        return [
            ChildRun(name=child.name, status=str(child.status), metrics=client.get_run(child.name).data.metrics)
            for child in self.ml_client.jobs.list(parent_job_name=name)
        ]

    def download_output(self, name: str, output_name: str, target: Path) -> Path:
        self.ml_client.jobs.download(name, download_path=str(target), output_name=output_name)
        return target / "named-outputs" / output_name


def create_ml_client(azure: AzureConfig) -> MLClient:
    """An `MLClient` for the configured workspace, authenticated with `DefaultAzureCredential` (nothing is called)."""
    missing = [
        f"azure.{name}" for name in ("subscription_id", "resource_group", "workspace") if not getattr(azure, name)
    ]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: required to submit to Azure ML (or pass a client)")
    identity = require("azure.identity", "Azure ML submission")
    return MLClient(identity.DefaultAzureCredential(), azure.subscription_id, azure.resource_group, azure.workspace)


def create_azure_client(azure: AzureConfig, given: Any = None) -> AzureClient:
    """The client for `azure`: `given` as it is (an `AzureClient`) or wrapped (an `MLClient`), else a new one."""
    if given is None:
        return MLClientAzure(create_ml_client(azure))
    if isinstance(given, MLClient):
        return MLClientAzure(given)
    if not isinstance(given, AzureClient):
        raise ConfigError(f"ml_client: expected an MLClient or an AzureClient, got {type(given).__name__}")
    return given


def study_reference(azure: AzureConfig, workspace: str, job_name: str) -> str:
    """A sweep's address, as best configs and lineage record it (no credentials): its workspace and job name."""
    parts = [("subscriptions", azure.subscription_id), ("resourceGroups", azure.resource_group)]
    prefix = "".join(f"/{key}/{value}" for key, value in parts if value)
    return f"azureml:/{prefix}/workspaces/{workspace}/jobs/{job_name}"


def staging_folder(parent: Path) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder inside `parent` (same file system: downloads move into place by rename)."""
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=parent, prefix=".download-")
