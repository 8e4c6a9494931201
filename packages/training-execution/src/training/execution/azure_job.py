"""Azure ML command jobs for a job spec: built with azure-ai-ml, written as YAML offline, submitted and followed.

The remote command is the local runner on the snapshot's `job.json` (`<output>/azure/code`) and the folders Azure
mounts; the code itself travels as wheels in the environment (see `azure_environment`).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import Input, Output, PyTorchDistribution, command
from azure.ai.ml.entities import CommandJob, Job

from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError, DataError, ExecutionError
from training.common.home import expand_home
from training.common.redact import refuse_credentials
from training.config.execution import AZURE_ASSET, AzureConfig, is_local
from training.config.schema import TrainingConfig
from training.core.backbones import ALIASES, local_backbone
from training.execution.azure_client import AzureClient, create_azure_client, staging_folder
from training.execution.azure_environment import job_environment
from training.execution.handle import JobHandle, JobStatus, PreparedJob
from training.execution.job_spec import JOB_FILE, JobSpec
from training.execution.provenance import build_lineage

RUNNER_COMMAND = (
    f"python -m training.execution.runner {JOB_FILE} --data ${{{{inputs.data}}}} --output ${{{{outputs.model}}}}"
)
# Added to a command whose job takes a local backbone folder as its input `backbone` (`backbone_input`).
BACKBONE_ARGUMENT = " --backbone-folder ${{inputs.backbone}}"
OUTPUT_NAME = "model"
AZURE_FOLDER = "azure"
# What the runner imports: the distributions whose wheels the job's environment installs.
JOB_DISTRIBUTIONS = ("training-core", "training-execution")
# The handle's status of each Azure ML job state (an unknown state counts as running).
STATUSES: dict[str, JobStatus] = {
    **dict.fromkeys(("NotStarted", "Queued", "Preparing", "Provisioning", "Starting"), "queued"),
    **dict.fromkeys(("Running", "Finalizing", "CancelRequested"), "running"),
    "Completed": "completed",
    **dict.fromkeys(("Failed", "Canceled", "NotResponding"), "failed"),
}


def data_input(data_path: str) -> Input:
    """The job's data: a registered asset (`azureml:name:version`), a datastore/web URI, or a local file or folder."""
    refuse_credentials(data_path, "data path")  # job.yaml and the code snapshot would hold it
    if data_path.startswith("azureml:") and not re.fullmatch(AZURE_ASSET, data_path):
        raise ConfigError(
            f"data asset {data_path!r}: expected azureml:<name>[:<version> or @latest], an azureml:// URI or an "
            "azureml:/subscriptions/... asset id"
        )
    if not is_local(data_path):  # a URI names a file by its suffix, unless a trailing / says folder
        path = data_path.split("?")[0]
        kind = "uri_file" if "://" in path and not path.endswith("/") and Path(path).suffix else "uri_folder"
        return Input(type=kind, path=data_path)
    local = expand_home(data_path)
    if not local.exists():
        raise DataError(f"{local}: no such data file or folder to upload")
    return Input(type="uri_file" if local.is_file() else "uri_folder", path=str(local.resolve()))


def backbone_input(config: TrainingConfig) -> dict[str, Input]:
    """The job input `backbone` uploading a local backbone folder, which the command passes on with
    `BACKBONE_ARGUMENT`; none for a bundled alias or a hub id, which the job finds itself. The folder is checked as a
    sweep checks it before its trials (its weights there, no Git LFS pointer in their place): a missing or unloadable
    one is said in one line here, not after an upload and a queue."""
    backbone = config.model.backbone
    if backbone in ALIASES:
        return {}
    folder = local_backbone(backbone)
    if folder is None:
        path = expand_home(backbone)
        if not (path.is_absolute() or backbone.startswith((".", "~"))):  # a hub id: the job downloads it
            return {}
        if path.exists():
            raise ConfigError(f"model.backbone {backbone!r}: {path} is a file, not a model folder")
        raise ConfigError(f"model.backbone {backbone!r}: the folder {path} does not exist")
    from training.core.model import check_backbone

    # the entity types only name the head's tags, which the check does not load: the data's may be read remotely
    check_backbone(config, labels=config.data.labels or ("ENTITY",))
    return {"backbone": Input(type="uri_folder", path=str(folder.resolve()))}


def job_inputs(spec: JobSpec) -> dict[str, Input]:
    """The job's inputs, `data` and a local backbone folder's `backbone`, each checked as it is made: a bad one is
    refused before any file of the job is written (`execute_final_training` asks before writing `job.json`)."""
    if spec.data_path is None:
        raise ConfigError(f"job {spec.job_id}: data_path: an Azure job needs a data path or azureml: asset")
    return {"data": data_input(spec.data_path), **backbone_input(spec.config)}


def build_azure_job(spec: JobSpec) -> CommandJob:
    """The command job running `spec` on its Azure compute; its code snapshot and environment go to `<output>/azure`."""
    azure = _azure_settings(spec)
    inputs = job_inputs(spec)
    folder = azure_folder(spec)
    code = folder / "code"
    shutil.rmtree(code, ignore_errors=True)
    spec.save(code / JOB_FILE)
    processes = spec.resources.nproc_per_node
    distributed = processes > 1 or azure.instance_count > 1
    node = command(
        code=str(code),
        command=RUNNER_COMMAND + (BACKBONE_ARGUMENT if "backbone" in inputs else ""),
        inputs=inputs,
        outputs={OUTPUT_NAME: Output(type="uri_folder")},
        environment=job_environment(
            azure, JOB_DISTRIBUTIONS, folder / "environment", backbone=spec.config.model.backbone
        ),
        compute=azure.compute,
        instance_count=azure.instance_count,
        distribution=PyTorchDistribution(process_count_per_instance=processes) if distributed else None,
        experiment_name=azure.experiment_name,
        display_name=spec.job_id,
        tags=build_lineage(spec).to_tags(),
    )
    job = node._to_job()  # a CommandJob (not a pipeline node), which load_job reads back
    job._validate()  # the SDK's own checks (command, environment, distribution)
    return job


def write_job_yaml(job: Job, path: str | Path) -> Path:
    """Write a command or sweep job as YAML for `az ml job create --file` / `azure.ai.ml.load_job`, offline; input
    paths other than assets as they are (the SDK's `azureml:<path>` of a local path or web URI names an asset)."""
    data = json.loads(json.dumps(job._to_dict()))
    written = data.get("inputs", {})  # the SDK's own dump: an input it leaves out stays out
    for name, given in (job.inputs or {}).items():
        source = getattr(given, "path", None)
        if source and not source.startswith("azureml:") and name in written:
            written[name]["path"] = source
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def azure_folder(spec: JobSpec) -> Path:
    """`<output_dir>/azure`: the job's YAML, its status log and the code snapshot."""
    folder = Path(spec.output_dir) / AZURE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _azure_settings(spec: JobSpec) -> AzureConfig:
    azure = spec.resources.azure
    if azure is None:
        raise ConfigError(f"job {spec.job_id}: resources.azure: the Azure backend needs an 'azure:' section")
    return azure


class AzureBackend:
    """Submits job specs as Azure ML command jobs; `prepare` writes the job YAML without credentials or network."""

    name = "azure"

    def __init__(self, ml_client: Any = None, poll_interval: float = 30.0) -> None:
        self.ml_client, self.poll_interval = ml_client, poll_interval

    def prepare(self, spec: JobSpec) -> JobHandle:
        azure, _, path = _job_yaml(spec)
        command_line = ["az", "ml", "job", "create", "--file", str(path)]  # submits the YAML by hand
        workspace = ("--resource-group", azure.resource_group), ("--workspace-name", azure.workspace)
        for flag, value in (("--subscription", azure.subscription_id), *workspace):
            command_line += [flag, value] if value else []
        return PreparedJob(spec.job_id, self.name, Path(spec.output_dir), path.parent / "status.log", command_line)

    def submit(self, spec: JobSpec) -> JobHandle:
        azure, job, path = _job_yaml(spec)
        client = create_azure_client(azure, self.ml_client)
        client.check_compute(azure.compute)
        submitted = client.create_job(job)
        output = Path(spec.output_dir)
        return AzureJob(client, submitted, output, path.parent / "status.log", self.poll_interval, OUTPUT_NAME)


def _job_yaml(spec: JobSpec) -> tuple[AzureConfig, CommandJob, Path]:
    """The spec's Azure settings and command job, and the job's YAML beside its code snapshot."""
    job = build_azure_job(spec)
    return _azure_settings(spec), job, write_job_yaml(job, azure_folder(spec) / "job.yaml")


class AzureJob(JobHandle):
    """A submitted Azure ML job; `wait` polls its status and downloads its output `output_name` into `output_dir`."""

    def __init__(
        self,
        client: AzureClient,
        job: Job,
        output_dir: Path,
        log_file: Path,
        poll_interval: float,
        output_name: str | None = None,
    ) -> None:
        super().__init__(str(job.name), "azure", output_dir, log_file, str(getattr(job, "command", "") or "").split())
        self._client, self._job, self.poll_interval, self.output_name = client, job, poll_interval, output_name
        self._state: str | None = None
        self._record(job)

    @property
    def studio_url(self) -> str | None:
        return self._job.studio_url

    @property
    def status(self) -> JobStatus:
        return STATUSES.get(self._refresh().status or "", "running")

    def stream(self) -> JobStatus:
        """Show the job's status and logs until it ends; then as `wait`."""
        self._client.stream_job(self.id)
        return self.wait()

    def wait(self, timeout: float | None = None) -> JobStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status
            if status == "completed":
                if self.output_name is not None:
                    self._download(self.output_name)
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
        self._job = self._client.get_job(self.id)
        self._record(self._job)
        return self._job

    def _record(self, job: Job) -> None:
        """Append each new state to the status log, which `logs()` shows."""
        if job.status != self._state:
            self._state = job.status
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("a", encoding="utf-8") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {job.name} {job.status}\n")

    def _download(self, output_name: str) -> None:
        """Copy the job's output (the run folder) into `output_dir`, keeping the local `job.json`."""
        with staging_folder(self.output_dir) as staging:
            outputs = self._client.download_output(self.id, output_name, Path(staging))
            shutil.copytree(outputs, self.output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(JOB_FILE))
