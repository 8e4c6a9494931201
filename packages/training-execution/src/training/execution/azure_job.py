"""Azure ML command jobs for a job spec: built with azure-ai-ml, written as YAML offline, submitted and followed.

The remote command is the same runner a local run uses, with the data and output folders that Azure
mounts: `python -m training.execution.runner ${{inputs.job}} --data ${{inputs.data}} --output ${{outputs.model}}`.
The environment is the configured image plus a pip list pinned to the versions installed here; Azure
registers it anonymously, versioned by a hash of its content, so equal specs reuse one built image.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import Input, MLClient, Output, PyTorchDistribution, command
from azure.ai.ml.entities import CommandJob, Environment, Job
from azure.core.exceptions import ResourceNotFoundError

from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError, DataError, ExecutionError
from training.common.optional import require
from training.config.schema import AzureConfig
from training.execution.handle import JobHandle, JobStatus, PreparedJob
from training.execution.job_spec import JOB_FILE, JobSpec
from training.execution.lineage import build_lineage

RUNNER_COMMAND = (
    "python -m training.execution.runner ${{inputs.job}} --data ${{inputs.data}} --output ${{outputs.model}}"
)
OUTPUT_NAME = "model"
AZURE_FOLDER = "azure"
# The distributions the remote environment installs, each with its own requirements.
ENVIRONMENT_DISTRIBUTIONS = ("training-core", "training-execution")
# Azure ML job states by the handle's status.
STATUSES: dict[str, JobStatus] = {
    "NotStarted": "queued",
    "Queued": "queued",
    "Preparing": "queued",
    "Provisioning": "queued",
    "Starting": "queued",
    "Running": "running",
    "Finalizing": "running",
    "CancelRequested": "running",
    "Completed": "completed",
    "Failed": "failed",
    "Canceled": "failed",
    "NotResponding": "failed",
}


def environment_spec() -> dict[str, Any]:
    """A conda file: this Python's minor version and pip pins of the toolkit and its requirements as installed."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return {
        "name": "training",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": _pins()}],
    }


def _pins() -> list[str]:
    names: dict[str, None] = {}
    for distribution in ENVIRONMENT_DISTRIBUTIONS:
        names[distribution] = None
        for requirement in metadata.requires(distribution) or ():
            if "extra ==" not in requirement:
                names[re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]] = None
    pins = []
    for name in names:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        pins.append(f"{name}=={version.split('+')[0]}")  # local labels such as +cpu are not on PyPI
    return sorted(pins, key=str.lower)


def data_input(data_path: str) -> Input:
    """The job's data: a registered asset (`azureml:name:version`), a datastore/web URI, or a local file or folder."""
    if data_path.startswith("azureml:") and not data_path.startswith("azureml://"):
        return Input(type="uri_folder", path=data_path)
    if "://" in data_path:
        kind = "uri_file" if Path(data_path.split("?")[0].rstrip("/")).suffix else "uri_folder"
        return Input(type=kind, path=data_path)
    local = Path(data_path).expanduser()
    if not local.exists():
        raise DataError(f"{local}: no such data file or folder to upload")
    return Input(type="uri_file" if local.is_file() else "uri_folder", path=str(local.resolve()))


def build_azure_job(spec: JobSpec, spec_file: Path, *, code_dir: str | Path | None = None) -> CommandJob:
    """The command job running `spec_file` on the spec's Azure compute; `code_dir` defaults to the job's folder."""
    azure = _azure_settings(spec)
    if spec.data_path is None:
        raise ConfigError(f"job {spec.job_id}: data_path: an Azure job needs a data path or azureml: asset")
    code = Path(code_dir) if code_dir is not None else azure_folder(spec)
    if not code.is_dir():
        raise ConfigError(f"code_dir: {code} is not a folder to snapshot")
    processes = spec.resources.nproc_per_node
    distributed = processes > 1 or azure.instance_count > 1
    node = command(
        code=str(code.resolve()),
        command=RUNNER_COMMAND,
        inputs={"job": Input(type="uri_file", path=str(spec_file.resolve())), "data": data_input(spec.data_path)},
        outputs={OUTPUT_NAME: Output(type="uri_folder")},
        environment=Environment(image=azure.image, conda_file=environment_spec()),
        compute=azure.compute,
        instance_count=azure.instance_count,
        distribution=PyTorchDistribution(process_count_per_instance=processes) if distributed else None,
        experiment_name=azure.experiment_name,
        display_name=spec.job_id,
        tags=build_lineage(spec).to_tags(),
    )
    return node._to_job()  # a CommandJob (not a pipeline node), which load_job reads back


def write_job_yaml(job: CommandJob, path: str | Path) -> Path:
    """Write `job` as YAML for `az ml job create --file` / `azure.ai.ml.load_job`, no credentials needed.

    The SDK writes a local input path as `azureml:<path>`, which would name a registered asset; the
    local path is written as it is instead, as Azure's own YAML examples do.
    """
    data = json.loads(json.dumps(job._to_dict()))
    for name, entry in data.get("inputs", {}).items():
        given = job.inputs[name].path
        if isinstance(entry, dict) and given and not given.startswith("azureml:") and "://" not in given:
            entry["path"] = given
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def create_ml_client(azure: AzureConfig) -> MLClient:
    """An `MLClient` for the configured workspace, authenticated with `DefaultAzureCredential`."""
    missing = [
        f"azure.{name}" for name in ("subscription_id", "resource_group", "workspace") if not getattr(azure, name)
    ]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: required to submit to Azure ML (or pass ml_client=)")
    identity = require("azure.identity", "Azure ML submission")
    return MLClient(identity.DefaultAzureCredential(), azure.subscription_id, azure.resource_group, azure.workspace)


def azure_folder(spec: JobSpec) -> Path:
    """`<output_dir>/azure`: the job's YAML, its status log and (by default) the code snapshot."""
    folder = Path(spec.output_dir) / AZURE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _azure_settings(spec: JobSpec) -> AzureConfig:
    azure = spec.resources.azure
    if azure is None:
        raise ConfigError(f"job {spec.job_id}: resources.azure: the Azure backend needs an 'azure:' section")
    if not azure.compute.strip():
        raise ConfigError(f"job {spec.job_id}: azure.compute: expected the name of a compute target, got ''")
    return azure


class AzureBackend:
    """Submits job specs as Azure ML command jobs; `prepare` writes the job YAML without credentials or network."""

    name = "azure"

    def __init__(self, ml_client: Any = None, code_dir: str | Path | None = None, poll_interval: float = 30.0) -> None:
        self.ml_client, self.code_dir, self.poll_interval = ml_client, code_dir, poll_interval

    def prepare(self, spec_file: Path) -> JobHandle:
        spec = JobSpec.load(spec_file)
        path = write_job_yaml(build_azure_job(spec, spec_file, code_dir=self.code_dir), azure_folder(spec) / "job.yaml")
        azure = _azure_settings(spec)
        command_line = ["az", "ml", "job", "create", "--file", str(path)]
        for flag, value in (("--resource-group", azure.resource_group), ("--workspace-name", azure.workspace)):
            command_line += [flag, value] if value else []
        return PreparedJob(spec.job_id, self.name, Path(spec.output_dir), path.parent / "status.log", command_line)

    def submit(self, spec_file: Path) -> JobHandle:
        spec = JobSpec.load(spec_file)
        job = build_azure_job(spec, spec_file, code_dir=self.code_dir)
        folder = azure_folder(spec)
        write_job_yaml(job, folder / "job.yaml")
        azure = _azure_settings(spec)
        client = self.ml_client if self.ml_client is not None else create_ml_client(azure)
        try:
            client.compute.get(azure.compute)
        except ResourceNotFoundError:
            workspace = getattr(client, "workspace_name", None) or azure.workspace
            raise ConfigError(
                f"azure.compute: no compute target {azure.compute!r} in workspace {workspace!r}; "
                "create it or name an existing one"
            ) from None
        submitted = client.jobs.create_or_update(job)
        return AzureJob(client, submitted, Path(spec.output_dir), folder / "status.log", self.poll_interval)


class AzureJob(JobHandle):
    """A submitted Azure ML job; `wait` polls its status and downloads its outputs into `output_dir`."""

    def __init__(self, client: Any, job: Job, output_dir: Path, log_file: Path, poll_interval: float) -> None:
        super().__init__(job.name, "azure", output_dir, log_file, job.command.split())
        self._client, self._job, self.poll_interval = client, job, poll_interval
        self._state: str | None = None
        self._record(job)

    @property
    def studio_url(self) -> str | None:
        return self._job.studio_url

    @property
    def status(self) -> JobStatus:
        return STATUSES.get(self._refresh().status or "", "running")

    def wait(self, timeout: float | None = None) -> JobStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status
            if status == "completed":
                self._download()
                return status
            if status == "failed":
                where = self.studio_url or "Azure ML studio"
                raise ExecutionError(f"Azure ML job {self.id} ended with status {self._state} (see {where})")
            if deadline is not None and time.monotonic() >= deadline:
                raise ExecutionError(f"Azure ML job {self.id} is still {self._state} after {timeout:g} s")
            left = self.poll_interval if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(self.poll_interval, left)))

    def lineage_updates(self) -> dict[str, str | None]:
        """The Azure job's name and parent, and where its outputs now lie on this machine."""
        return {
            "azure_job_name": self.id,
            "azure_parent_job": self._job.parent_job_name,
            "run_dir": str(self.output_dir),
            "model_path": str(self.model_dir),
        }

    def _refresh(self) -> Job:
        self._job = self._client.jobs.get(self.id)
        self._record(self._job)
        return self._job

    def _record(self, job: Job) -> None:
        """Append each new state to the status log, which `logs()` shows."""
        if job.status != self._state:
            self._state = job.status
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("a", encoding="utf-8") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {job.name} {job.status}\n")

    def _download(self) -> None:
        """Copy the job's `model` output (the run folder) into `output_dir`, keeping the local `job.json`."""
        with tempfile.TemporaryDirectory(dir=self.output_dir) as staging:
            self._client.jobs.download(self.id, download_path=staging, output_name=OUTPUT_NAME)
            outputs = Path(staging) / "named-outputs" / OUTPUT_NAME
            shutil.copytree(outputs, self.output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(JOB_FILE))
