"""Azure ML: the command job built offline, its YAML round trip, its command run locally, and submission.

Only the Azure service is stood in for (`FakeService`, an `AzureClient` that plays scripted states and returns real
azure-ai-ml entities); the jobs, inputs, environment and YAML are the SDK's own.
"""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

azure_ml = pytest.importorskip("azure.ai.ml", reason='the Azure tests need pip install "training-execution[azure]"')

from azure.ai.ml import MLClient, load_job  # noqa: E402
from azure.ai.ml.entities import CommandJob  # noqa: E402
from azure.core.exceptions import ResourceNotFoundError  # noqa: E402

from training.common.errors import ConfigError, ExecutionError, TrainingError  # noqa: E402
from training.config import AzureConfig, BestConfig, ExecutionConfig, TrainingConfig  # noqa: E402
from training.execution import execute_final_training, extract_lineage_from_best_model  # noqa: E402
from training.execution.azure_client import AzureClient, ChildRun, MLClientAzure, create_ml_client  # noqa: E402
from training.execution.azure_job import build_azure_job, data_input, write_job_yaml  # noqa: E402
from training.execution.handle import JobHandle  # noqa: E402
from training.execution.job_spec import JobSpec  # noqa: E402

AZURE = AzureConfig(
    subscription_id="00000000-0000-0000-0000-000000000000",
    resource_group="rg-ner",
    workspace="ws-ner",
    compute="cpu-cluster",
    processes_per_instance=2,
    experiment_name="ner-final",
)
EXECUTION = ExecutionConfig(backend="azure", azure=AZURE)


class _Computes:
    """The service's compute targets, as `MLClient.compute` answers."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def get(self, name: str) -> dict:
        if name not in self.names:
            raise ResourceNotFoundError(f"compute {name} not found")
        return {"name": name}


class FakeService(MLClientAzure):
    """Stands in for the Azure ML service: it knows some compute targets (asked through the real `check_compute`)
    and plays a script of job states."""

    def __init__(self, computes: tuple[str, ...], states: tuple[str, ...], outputs: Path | None = None) -> None:
        super().__init__(SimpleNamespace(workspace_name="ws-ner", compute=_Computes(computes)))
        self.states, self.outputs = iter(states), outputs
        self.submitted: list[CommandJob] = []
        self.polls = 0

    def create_job(self, job: CommandJob) -> CommandJob:
        created = copy.deepcopy(job)
        created.name, created._status = "quiet_river_4x2k", "NotStarted"
        self.submitted.append(created)
        return created

    def get_job(self, name: str) -> CommandJob:
        job = self.submitted[-1]
        assert name == job.name
        self.polls += 1
        job._status = next(self.states, job.status)
        return job

    def stream_job(self, name: str) -> None:
        raise AssertionError("not streamed in these tests")

    def child_runs(self, name: str) -> list[ChildRun]:
        return []

    def download_output(self, name: str, output_name: str, target: Path) -> Path:
        assert self.outputs is not None and output_name == "model"
        shutil.copytree(self.outputs, target / "named-outputs" / output_name)
        return target / "named-outputs" / output_name


@pytest.fixture(scope="module")
def dry_run(best_config: BestConfig, tmp_path_factory: pytest.TempPathFactory) -> JobHandle:
    output = tmp_path_factory.mktemp("azure") / "final"
    return execute_final_training(best_config, output_dir=output, execution_config=EXECUTION, dry_run=True)


@pytest.fixture(scope="module")
def remote_outputs(dry_run: JobHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs the job's own command here, with the inputs and outputs Azure would mount replaced by local paths."""
    job = load_job(dry_run.output_dir / "azure" / "job.yaml")._to_job()
    outputs = tmp_path_factory.mktemp("remote") / "model"
    line = job.command
    for placeholder, path in (("${{inputs.data}}", job.inputs["data"].path), ("${{outputs.model}}", str(outputs))):
        line = line.replace(placeholder, shlex.quote(path))
    argv = shlex.split(line)
    assert argv[:4] == ["python", "-m", "training.execution.runner", "job.json"]
    done = subprocess.run([sys.executable, *argv[1:]], cwd=job.code, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return outputs


def test_dry_run_writes_the_job_yaml_and_the_command_to_submit_it(dry_run: JobHandle) -> None:
    path = dry_run.output_dir / "azure" / "job.yaml"
    assert dry_run.status == "queued" and path.is_file()
    assert dry_run.command == [
        "az", "ml", "job", "create", "--file", str(path), "--subscription", "00000000-0000-0000-0000-000000000000",
        "--resource-group", "rg-ner", "--workspace-name", "ws-ner",
    ]  # fmt: skip
    with pytest.raises(ExecutionError, match=r"^job final-\w+ was prepared as a dry run and never started; run: az ml"):
        dry_run.wait()


def test_the_job_yaml_loads_back_to_an_equal_job(dry_run: JobHandle, tmp_path: Path) -> None:
    spec_file = dry_run.output_dir / "job.json"
    job = build_azure_job(JobSpec.load(spec_file))
    loaded = load_job(write_job_yaml(job, tmp_path / "job.yaml"))._to_job()

    assert isinstance(loaded, CommandJob)
    for name in ("command", "code", "compute", "display_name", "experiment_name", "tags"):
        assert getattr(loaded, name) == getattr(job, name), name
    assert job.command == (
        "python -m training.execution.runner job.json --data ${{inputs.data}} --output ${{outputs.model}}"
    )
    assert job.code == str(dry_run.output_dir / "azure" / "code") and job.compute == "cpu-cluster"
    assert (dry_run.output_dir / "azure" / "code" / "job.json").read_text() == spec_file.read_text()
    assert Path(loaded.environment.build.path) == dry_run.output_dir / "azure" / "environment"
    assert loaded.distribution.type == "pytorch" and loaded.distribution.process_count_per_instance == 2
    assert loaded.resources.instance_count == job.resources.instance_count == 1
    assert list(loaded.inputs) == ["data"] and loaded.inputs["data"].type == "uri_folder"
    assert (loaded.inputs["data"].type, loaded.inputs["data"].path) == (
        job.inputs["data"].type,
        job.inputs["data"].path,
    )
    assert loaded.outputs["model"].type == "uri_folder"
    assert job.tags["study.study_name"] == "ner-sweep" and job.tags["study.trial_number"] == "7"
    assert job.tags["hp.training.learning_rate"] == "0.0003" and "***" in job.tags["study.storage"]


def test_the_job_command_runs_locally_and_trains(remote_outputs: Path) -> None:
    record = json.loads((remote_outputs / "metrics.json").read_text())
    assert record["status"] == "completed" and (remote_outputs / "model" / "model.safetensors").is_file()
    assert json.loads((remote_outputs / "job.json").read_text())["output_dir"] == str(remote_outputs)
    assert json.loads((remote_outputs / "lineage.json").read_text())["evaluated_on"] == "test"


def test_submission_follows_the_job_and_brings_its_outputs_home(
    best_config: BestConfig, remote_outputs: Path, tmp_path: Path, planted_secret: Callable[..., None]
) -> None:
    service = FakeService(("cpu-cluster",), ("Queued", "Running", "Running", "Completed"), remote_outputs)
    job = execute_final_training(
        best_config, output_dir=tmp_path / "final", execution_config=EXECUTION, ml_client=service, wait=False
    )
    assert (job.id, job.backend, job.status) == ("quiet_river_4x2k", "azure", "queued")
    job.poll_interval = 0.01

    assert job.wait(timeout=30) == "completed" and service.polls == 4
    assert (job.output_dir / "metrics.json").is_file() and (job.model_dir / "model.safetensors").is_file()
    assert job.logs().splitlines()[-1].endswith("quiet_river_4x2k Completed")
    lineage = extract_lineage_from_best_model(job)
    assert lineage.azure_job_name == "quiet_river_4x2k" and lineage.azure_parent_job is None
    assert lineage.run_dir == str(job.output_dir) and lineage.model_path == str(job.model_dir)
    submitted = service.submitted[0]
    assert submitted.tags["run_id"] == lineage.run_id and submitted.experiment_name == "ner-final"
    planted_secret(job.output_dir, json.dumps(submitted.tags), job.logs(1000))


def test_a_failed_remote_job_is_an_execution_error(best_config: BestConfig, tmp_path: Path) -> None:
    service = FakeService(("cpu-cluster",), ("Running", "Failed"))
    job = execute_final_training(
        best_config, output_dir=tmp_path / "final", execution_config=EXECUTION, ml_client=service, wait=False
    )
    job.poll_interval = 0.01
    with pytest.raises(ExecutionError, match=r"^Azure ML job quiet_river_4x2k ended with status Failed \(see "):
        job.wait(timeout=30)


def test_a_compute_target_the_workspace_lacks_is_a_config_error(best_config: BestConfig, tmp_path: Path) -> None:
    service = FakeService(("gpu-cluster",), ())
    with pytest.raises(ConfigError, match=r"^azure.compute: no compute target 'cpu-cluster' in workspace 'ws-ner'; "):
        execute_final_training(best_config, output_dir=tmp_path / "f", execution_config=EXECUTION, ml_client=service)
    assert service.submitted == []
    with pytest.raises(ConfigError, match=r"^backend 'azure' needs execution_config with an 'azure:' section"):
        execute_final_training(best_config, output_dir=tmp_path / "h", backend="azure")


def test_an_ml_client_is_built_from_the_azure_config_offline() -> None:
    client = create_ml_client(AZURE)
    assert isinstance(client, MLClient) and client.workspace_name == "ws-ner"
    assert isinstance(FakeService((), ()), AzureClient)
    with pytest.raises(ConfigError, match=r"^azure.subscription_id, azure.resource_group: required to submit"):
        create_ml_client(AzureConfig(workspace="ws", compute="c"))


def test_data_inputs_by_kind(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n")
    assert (data_input("azureml:ner-corpus:3").type, data_input("azureml:ner-corpus:3").path) == (
        "uri_folder",
        "azureml:ner-corpus:3",
    )
    assert data_input("azureml://datastores/blob/paths/ner/train.jsonl").type == "uri_file"
    assert data_input("azureml://datastores/blob/paths/ner/").type == "uri_folder"
    # A trailing / names a folder, dotted or not: `conll2003.v2/` was mounted as a file, which the job could not read.
    assert data_input("azureml://datastores/blob/paths/conll2003.v2/").type == "uri_folder"
    assert data_input("https://acct.blob.core.windows.net/c/ner-1.0/").type == "uri_folder"
    assert data_input(str(tmp_path / "train.jsonl")).type == "uri_file"
    assert data_input(str(tmp_path)).type == "uri_folder"
    with pytest.raises(Exception, match=r"no-data: no such data file or folder to upload"):
        data_input(str(tmp_path / "no-data"))
    workspace = "azureml:/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w"
    for asset in ("azureml:ner-corpus@latest", "azureml:ner-corpus", f"{workspace}/data/ner/versions/3"):
        assert data_input(asset).path == asset
    for asset in ("azureml:", "azureml:ner-corpus:", "azureml:/x", "azureml://"):  # passed the dry run, failed in Azure
        with pytest.raises(ConfigError, match=rf"^data asset {asset!r}: expected azureml:<name>\[:<version> or "):
            data_input(asset)


@pytest.mark.parametrize("data", ["azureml:ner corpus:1", "no-such-folder"])
def test_a_bad_data_input_is_refused_before_the_job_or_its_code_snapshot_is_written(
    best_config: BestConfig, tmp_path: Path, data: str
) -> None:
    """An asset name Azure refuses, or a local folder that is not here to upload, was refused once `job.json` and the
    code snapshot had been replaced: the `job.yaml` of the dry run before then submitted this refused job's spec."""
    output = tmp_path / "final"
    execute_final_training(best_config, output_dir=output, execution_config=EXECUTION, dry_run=True)
    written = {path: path.read_bytes() for path in output.rglob("*") if path.is_file()}
    path = data if data.startswith("azureml:") else str(tmp_path / data)
    with pytest.raises(TrainingError, match=rf"^(data asset '{path}': expected azureml:|{path}: no such data file)"):
        execute_final_training(best_config, output_dir=output, execution_config=EXECUTION, data_path=path, dry_run=True)
    assert {path: path.read_bytes() for path in output.rglob("*") if path.is_file()} == written


@pytest.mark.parametrize(
    "uri", ["https://acct.blob.core.windows.net/c/corpus/", "wasbs://c@acct.blob.core.windows.net/corpus/train.jsonl"]
)
def test_a_web_or_storage_uri_is_written_as_given_and_one_with_a_credential_is_refused(
    best_config: BestConfig, tmp_path: Path, uri: str
) -> None:
    # The YAML named `azureml:https://...`, which `az ml job create` takes for a registered asset; a SAS token went into
    # job.yaml, job.json and the uploaded code snapshot.
    job = execute_final_training(
        best_config, output_dir=tmp_path / "final", execution_config=EXECUTION, data_path=uri, dry_run=True
    )
    written = yaml.safe_load((job.output_dir / "azure" / "job.yaml").read_text())
    assert written["inputs"]["data"]["path"] == uri
    assert load_job(job.output_dir / "azure" / "job.yaml")._to_job().inputs["data"].path == uri
    signed = f"{uri}?sv=2024-01-01&sig=SECRETSIG123"
    refused = r"^data path '.*sig=\*\*\*': carries a credential \(a SAS token or a password\), which the job's files"
    with pytest.raises(ConfigError, match=refused):
        execute_final_training(
            best_config, output_dir=tmp_path / "signed", execution_config=EXECUTION, data_path=signed, dry_run=True
        )
    assert not any("SECRETSIG123" in path.read_text() for path in (tmp_path / "signed").rglob("*") if path.is_file())


BLOCK_AZURE = textwrap.dedent(
    """
    import importlib.abc, sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "azure":
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def test_without_the_azure_extra_the_package_imports_and_the_backend_names_its_install(
    best_config: BestConfig, tmp_path: Path
) -> None:
    best_config.save(tmp_path / "best_config.json")
    code = BLOCK_AZURE + textwrap.dedent(
        f"""
        import training.execution
        from training.execution import execute_final_training
        from training.common.optional import MissingDependencyError
        for attempt in (
            lambda: execute_final_training({str(tmp_path / "best_config.json")!r}, output_dir={str(tmp_path)!r},
                                           backend="azure"),
            lambda: training.execution.build_azure_job,
        ):
            try:
                attempt()
            except MissingDependencyError as error:
                print(error)
        print(sorted(name for name in sys.modules if name.startswith("azure")))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "backend 'azure' needs 'azure', which is not installed: pip install \"training-execution[azure]\"",
        "training.execution.build_azure_job needs 'azure', which is not installed: "
        'pip install "training-execution[azure]"',
        "[]",
    ]


def test_a_local_backbone_is_checked_before_the_job_is_built(
    best_config: BestConfig, tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    """A missing folder was a traceback (the job's tags hashed it as a hub id); one without weights or with a Git LFS
    pointer in their place went into the job as it was, its wheels built and its data uploaded, to fail on Azure."""
    from training.core.model import create_model_and_tokenizer, save_model

    def refusal(backbone: Path) -> str:
        config = best_config.config.with_values({"model.backbone": str(backbone)})
        output = tmp_path / "final"
        with pytest.raises(ConfigError) as refused:
            execute_final_training(
                best_config.model_copy(update={"config": config}),
                output_dir=output,
                execution_config=EXECUTION,
                dry_run=True,
            )
        assert not (output / "azure").exists() and not (output / "job.json").exists()  # nothing built or written
        return str(refused.value)

    folder = save_model(*create_model_and_tokenizer(tiny_config), tmp_path / "backbone")
    weights = folder / "model.safetensors"
    weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 133\n")
    lfs = f"{weights} is a Git LFS pointer, not the weights; run `git lfs pull` in {folder}"
    assert refusal(folder) == f"model.backbone '{folder}': {lfs}"
    missing = tmp_path / "missing"
    assert refusal(missing) == f"model.backbone '{missing}': the folder {missing} does not exist"
    assert refusal(weights) == f"model.backbone '{weights}': {weights} is a file, not a model folder"
    weights.unlink()
    assert refusal(folder) == (
        f"model.backbone '{folder}': the folder {folder} holds no model weights "
        "(expected model.safetensors or pytorch_model.bin)"
    )


def test_a_local_backbone_folder_travels_as_an_input_and_the_run_records_it_as_given(
    best_config: BestConfig, tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    """The job took the folder's path as it was, and only job.json and the code went to Azure: the remote run looked
    for a folder that is not there. The folder is now an input the runner loads from, recorded as the user named it."""
    from training.core.model import create_model_and_tokenizer, save_model
    from training.execution.provenance import backbone_digest

    folder = save_model(*create_model_and_tokenizer(tiny_config), tmp_path / "backbone")
    config = best_config.config.with_values({"model.backbone": str(folder)})
    output = tmp_path / "final"
    prepared = execute_final_training(
        best_config.model_copy(update={"config": config}), output_dir=output, execution_config=EXECUTION, dry_run=True
    )
    job = build_azure_job(JobSpec.load(prepared.output_dir / "job.json"))
    assert job.command.endswith(" --backbone-folder ${{inputs.backbone}}")
    assert (job.inputs["backbone"].type, job.inputs["backbone"].path) == ("uri_folder", str(folder))
    loaded = load_job(write_job_yaml(job, tmp_path / "job.yaml"))._to_job()
    assert loaded.command == job.command and loaded.inputs["backbone"].path == str(folder)
    digest = backbone_digest(config.model)
    assert digest[0] is not None

    # Azure mounts the folder elsewhere; the user's path does not exist there.
    mounted = tmp_path / "mnt" / "inputs" / "backbone"
    shutil.move(folder, mounted)
    outputs = tmp_path / "remote" / "model"
    line = job.command
    for placeholder, path in (
        ("${{inputs.data}}", job.inputs["data"].path),
        ("${{inputs.backbone}}", str(mounted)),
        ("${{outputs.model}}", str(outputs)),
    ):
        line = line.replace(placeholder, shlex.quote(path))
    argv = shlex.split(line)
    done = subprocess.run([sys.executable, *argv[1:]], cwd=job.code, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    assert json.loads((outputs / "metrics.json").read_text())["status"] == "completed"
    assert TrainingConfig.from_yaml((outputs / "config.yaml").read_text()).model.backbone == str(folder)
    lineage = json.loads((outputs / "lineage.json").read_text())
    assert lineage["backbone"] == str(folder)
    assert (lineage["backbone_sha256"], lineage["backbone_hashed_file"]) == digest[:2]
    assert not [path for path in outputs.rglob("*") if path.is_file() and str(mounted).encode() in path.read_bytes()]


def test_a_hub_id_or_a_bundled_backbone_is_no_input(best_config: BestConfig, tmp_path: Path) -> None:
    for backbone in ("tiny-bert", "org/unknown-model"):
        config = best_config.config.with_values({"model.backbone": backbone})
        spec = JobSpec(
            job_id="final-x", config=config, data_path=config.data.path, output_dir=str(tmp_path / backbone),
            resources={"backend": "azure", "azure": AZURE.model_copy(update={"environment": "azureml:env:1"})},
        )  # fmt: skip
        job = build_azure_job(spec)
        assert list(job.inputs) == ["data"] and "--backbone-folder" not in job.command, backbone
