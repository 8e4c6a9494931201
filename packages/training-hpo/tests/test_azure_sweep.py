"""The Azure ML sweep: built offline, written as YAML that `load_job` reads back; its trial runs locally."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from training.common.errors import ConfigError, TrainingError
from training.config import AzureConfig, HPOConfig, TrainingConfig
from training.core.cv_utils import KFoldSplits
from training.hpo import build_azure_sweep_job, write_azure_sweep_job
from training.hpo.azure_trial import main as trial_main

pytest.importorskip("azure.ai.ml")
AZURE = AzureConfig(compute="cpu-cluster", experiment_name="ner-hpo")
DATA = "azureml://datastores/workspaceblobstore/paths/ner/"


def settings(**values: object) -> HPOConfig:
    return HPOConfig.model_validate(
        {
            "name": "azure",
            "k_folds": 2,
            "n_trials": 8,
            "timeout_s": 3600,
            "sampler": {"type": "random"},
            "pruner": {"type": "none"},
            "search_space": {
                "learning_rate": {"type": "loguniform", "low": 3e-3, "high": 8e-3},
                "batch_size": {"type": "choice", "values": [4, 8]},
                "scheduler": {"type": "choice", "values": ["linear", "cosine"]},
                "warmup_ratio": {"type": "uniform", "low": 0.0, "high": 0.2, "condition": {"scheduler": "cosine"}},
                "num_epochs": {"type": "fixed", "value": 1},
            },
            **values,
        }
    )


def test_the_sweep_yaml_round_trips(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    from azure.ai.ml import load_job
    from azure.ai.ml.sweep import Choice, LogUniform, Uniform

    job = build_azure_sweep_job(
        settings(), tiny_config, AZURE, folder=tmp_path / "sweep", data=DATA, max_concurrent_trials=2
    )
    loaded = load_job(write_azure_sweep_job(job, tmp_path / "sweep.yaml"))
    for sweep in (job, loaded):
        assert sweep.type == "sweep" and sweep.sampling_algorithm == "random"
        assert (sweep.objective.primary_metric, sweep.objective.goal) == ("entity_f1", "maximize")
        assert (sweep.limits.max_total_trials, sweep.limits.max_concurrent_trials, sweep.limits.timeout) == (8, 2, 3600)
        assert sweep.early_termination is None
        space = sweep.search_space
        assert set(space) == {
            "training__learning_rate",
            "training__batch_size",
            "training__scheduler",
            "training__warmup_ratio",
        }
        assert isinstance(space["training__learning_rate"], LogUniform)
        assert space["training__learning_rate"].min_value == pytest.approx(math.log(3e-3))
        assert isinstance(space["training__batch_size"], Choice) and space["training__batch_size"].values == [4, 8]
        assert isinstance(space["training__warmup_ratio"], Uniform)
        command = sweep.trial.command
        assert command.startswith("python -m training.hpo.azure_trial --spec . --data ${{inputs.data}} --output ")
        assert "--param training.learning_rate=${{search_space.training__learning_rate}}" in command
        assert "training.num_epochs" not in command  # fixed values travel in the spec
        assert sweep.inputs["data"].path == DATA
        assert str(sweep.trial.code).removeprefix("azureml:") == str((tmp_path / "sweep" / "code").resolve())
        assert sweep.compute.removeprefix("azureml:") == "cpu-cluster" and (
            sweep.experiment_name,
            sweep.display_name,
        ) == ("ner-hpo", "hpo-azure")
    assert sorted(path.name for path in (tmp_path / "sweep" / "code").iterdir()) == ["config.yaml", "hpo.yaml"]


def test_the_median_pruner_becomes_azure_s_median_stopping_policy(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    from azure.ai.ml import load_job
    from azure.ai.ml.sweep import MedianStoppingPolicy

    hpo = settings(pruner={"type": "median", "warmup_steps": 1})
    job = build_azure_sweep_job(hpo, tiny_config, AZURE, folder=tmp_path / "sweep", data=DATA)
    loaded = load_job(write_azure_sweep_job(job, tmp_path / "sweep.yaml"))
    for sweep in (job, loaded):
        policy = sweep.early_termination
        assert isinstance(policy, MedianStoppingPolicy)
        assert (policy.delay_evaluation, policy.evaluation_interval) == (0, 1)
    assert "median_stopping" in (tmp_path / "sweep.yaml").read_text()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sampler": {"type": "tpe"}}, "bayesian sampling does not support loguniform"),
        (
            {"pruner": {"type": "hyperband"}},
            r"^hpo 'azure': pruner 'hyperband': Azure sweeps have no counterpart that reads a trial's folds; use "
            r"pruner: median \(Azure's median stopping policy after each fold\) or none$",
        ),
        (
            {
                "sampler": {"type": "grid"},
                "search_space": {"num_epochs": {"type": "int", "low": 1, "high": 4, "log": True}},
            },
            "grid sampling does not support qloguniform",
        ),
        (
            {"search_space": {"model.max_length": {"type": "choice", "values": [16, 64]}}},
            r"^search_space: model.max_length=16 does not fit the config: model.stride: must be below half of ",
        ),
    ],
)
def test_what_azure_cannot_run_is_an_error(
    tiny_config: TrainingConfig, tmp_path: Path, values: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_azure_sweep_job(settings(**values), tiny_config, AZURE, folder=tmp_path, data=DATA)


@pytest.mark.parametrize("trials", [0, -3])
def test_fewer_than_one_concurrent_trial_is_refused_before_anything_is_written(
    tiny_config: TrainingConfig, tmp_path: Path, trials: int
) -> None:
    # The SDK wrote max_concurrent_trials: 0 into the job YAML; Azure would refuse it only at submission.
    expected = rf"^max_concurrent_trials: expected at least 1 trial at a time, got {trials}$"
    with pytest.raises(ConfigError, match=expected):
        build_azure_sweep_job(
            settings(), tiny_config, AZURE, folder=tmp_path / "sweep", data=DATA, max_concurrent_trials=trials
        )
    assert not (tmp_path / "sweep").exists()


def test_a_local_backbone_folder_without_weights_is_refused_before_anything_is_written(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    # Its wheels were built and the sweep written, and every trial failed on Azure.
    folder = tmp_path / "backbone"
    folder.mkdir()
    config = tiny_config.with_values({"model.backbone": str(folder)})
    with pytest.raises(ConfigError, match=rf"^model.backbone '{folder}': the folder {folder} does not hold a loadable"):
        build_azure_sweep_job(settings(), config, AZURE, folder=tmp_path / "sweep", data=DATA)
    assert not (tmp_path / "sweep").exists()


def test_the_code_snapshot_holds_no_credential_of_the_mlflow_uri(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    # Its config.yaml, uploaded to Azure, held the password; a trial logs where Azure's MLFLOW_TRACKING_URI says.
    config = tiny_config.with_values({"tracking.mlflow": "https://ml:Pw5ecret@mlflow.example.org/"})
    build_azure_sweep_job(settings(), config, AZURE, folder=tmp_path / "sweep", data=DATA)
    snapshot = (tmp_path / "sweep" / "code" / "config.yaml").read_text()
    assert "Pw5ecret" not in snapshot and "https://ml:***@mlflow.example.org/" in snapshot


@pytest.mark.parametrize("data", ["azureml:ner corpus:1", "no-such-folder"])
def test_bad_data_is_refused_before_anything_is_written(tiny_config: TrainingConfig, tmp_path: Path, data: str) -> None:
    # The code snapshot was replaced first: the sweep_job.yaml written before beside it then ran another hpo.yaml.
    path = data if data.startswith("azureml:") else str(tmp_path / data)
    with pytest.raises(TrainingError, match=rf"^(data asset '{path}': expected azureml:|{path}: no such data file)"):
        build_azure_sweep_job(settings(), tiny_config, AZURE, folder=tmp_path / "sweep", data=path)
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("name", ["instance_count", "processes_per_instance"])
def test_a_sweep_on_many_nodes_or_processes_is_refused(tiny_config: TrainingConfig, tmp_path: Path, name: str) -> None:
    azure = AZURE.model_copy(update={name: 2})
    with pytest.raises(ConfigError, match=rf"^azure.{name}: 2: an Azure sweep trial runs its folds in one process on "):
        build_azure_sweep_job(settings(), tiny_config, azure, folder=tmp_path, data=DATA)


def test_the_trial_entry_point_runs_one_trial_locally(
    tiny_config: TrainingConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_azure_sweep_job(settings(), tiny_config, AZURE, folder=tmp_path / "sweep", data=DATA)
    trial = [sys.executable, "-m", "training.hpo.azure_trial", "--spec", tmp_path / "sweep" / "code"]
    trial += ["--data", tiny_config.data.path, "--output", tmp_path / "out"]
    params = {
        "training.learning_rate": "0.005",
        "training.batch_size": "8",
        "training.scheduler": "linear",
        "training.warmup_ratio": "0.1",
    }
    result = subprocess.run(
        [*map(str, trial), *(f"--param={key}={value}" for key, value in params.items())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record == json.loads((tmp_path / "out" / "trial.json").read_text())
    assert record["hyperparameters"] == {
        "training.learning_rate": 0.005,
        "training.batch_size": 8,
        "training.scheduler": "linear",
        "training.num_epochs": 1,
    }
    assert len(record["fold_values"]) == 2 and record["objective"] == pytest.approx(sum(record["fold_values"]) / 2)
    assert (tmp_path / "out" / "splits.json").is_file() and (tmp_path / "out" / "fold-1" / "model").is_dir()
    assert KFoldSplits.load(tmp_path / "out" / "splits.json").group_by == "group"  # data.group_by reaches the trial

    wrong = [f"--param={key}={value}" for key, value in {**params, "training.batch_size": "12"}.items()]
    assert trial_main([*map(str, trial[3:]), *wrong]) == 2
    assert (
        capsys.readouterr().err == "azure trial: error: search_space.training.batch_size: '12' is not one of [4, 8]\n"
    )


def test_a_spec_built_before_a_check_was_added_still_runs_its_trials(
    tiny_config: TrainingConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_azure_sweep_job(settings(), tiny_config, AZURE, folder=tmp_path / "sweep", data=DATA)
    hpo = tmp_path / "sweep" / "code" / "hpo.yaml"
    hpo.write_text(hpo.read_text().replace("- 4\n", "- 4\n    - 8.0\n", 1))  # a duplicate choice, refused since
    assert "8.0" in hpo.read_text()
    missing = tmp_path / "no-data"
    args = ["--spec", str(hpo.parent), "--data", str(missing), "--output", str(tmp_path / "out")]
    args += ["--param=training.batch_size=8", "--param=training.learning_rate=0.005"]
    args += ["--param=training.scheduler=linear", "--param=training.warmup_ratio=0.1"]
    assert trial_main(args) == 2
    assert str(missing) in capsys.readouterr().err  # past the search space, to the data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"- a list\n", "expected a mapping of keys to values at the top level, got list"),
        (b"model: \xff\n", "cannot read the file"),
    ],
)
def test_a_damaged_spec_config_is_one_line_naming_the_file(
    tiny_config: TrainingConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    build_azure_sweep_job(settings(), tiny_config, AZURE, folder=tmp_path / "sweep", data=DATA)
    config = tmp_path / "sweep" / "code" / "config.yaml"
    config.write_bytes(content)
    spec = ["--spec", str(config.parent), "--data", str(tiny_config.data.path), "--output", str(tmp_path / "out")]
    assert trial_main(spec) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"azure trial: error: {config}: {message}") and error.count("\n") == 1


@pytest.mark.parametrize("pruner", ["none", "median"])
def test_the_primary_metric_is_the_cv_mean_logged_once_or_running_after_each_fold(
    tiny_config: TrainingConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pruner: str
) -> None:
    mlflow = pytest.importorskip("mlflow")
    from training.hpo.azure_trial import run_azure_trial

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    build_azure_sweep_job(settings(pruner={"type": pruner}), tiny_config, AZURE, folder=tmp_path / "sweep", data=DATA)
    params = {"training.learning_rate": "0.005", "training.batch_size": "8", "training.scheduler": "linear"}
    params |= {"training.warmup_ratio": "0.1"}  # sampled by Azure, unused with a linear schedule
    record = run_azure_trial(tmp_path / "sweep" / "code", Path(tiny_config.data.path), tmp_path / "out", params)
    run = mlflow.last_active_run()
    mlflow.end_run()
    client = mlflow.MlflowClient()
    logged = [(metric.step, metric.value) for metric in client.get_metric_history(run.info.run_id, "entity_f1")]
    first, second = record.fold_values
    expected = [(0, record.objective)] if pruner == "none" else [(0, first), (1, (first + second) / 2)]
    assert logged == [(step, pytest.approx(value)) for step, value in expected]
    assert client.get_run(run.info.run_id).data.metrics["entity_f1"] == pytest.approx(record.objective)


def test_a_local_backbone_folder_travels_as_an_input_and_the_trial_records_it_as_given(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    """Trials ran remotely on a config naming a folder of this machine, which never went to Azure."""
    import shutil

    from azure.ai.ml import load_job

    from training.core.model import create_model_and_tokenizer, save_model

    folder = save_model(*create_model_and_tokenizer(tiny_config), tmp_path / "backbone")
    config = tiny_config.with_values({"model.backbone": str(folder)})
    azure = AZURE.model_copy(update={"environment": "azureml:ner-env:1"})
    job = build_azure_sweep_job(settings(), config, azure, folder=tmp_path / "sweep", data=DATA)
    loaded = load_job(write_azure_sweep_job(job, tmp_path / "sweep.yaml"))
    for sweep in (job, loaded):
        assert " --backbone-folder ${{inputs.backbone}} " in sweep.trial.command
        assert (sweep.inputs["backbone"].type, sweep.inputs["backbone"].path) == ("uri_folder", str(folder))

    mounted = tmp_path / "mnt" / "backbone"  # where Azure mounts it; the user's folder is not there
    shutil.move(folder, mounted)
    args = ["--spec", str(tmp_path / "sweep" / "code"), "--data", str(tiny_config.data.path)]
    args += ["--output", str(tmp_path / "out"), "--backbone-folder", str(mounted)]
    args += ["--param=training.learning_rate=0.005"]
    args += ["--param=training.batch_size=8", "--param=training.scheduler=linear", "--param=training.warmup_ratio=0.1"]
    assert trial_main(args) == 0
    record = json.loads((tmp_path / "out" / "trial.json").read_text())
    assert record["config"]["model"]["backbone"] == str(folder)
    fold = TrainingConfig.from_yaml((tmp_path / "out" / "fold-0" / "config.yaml").read_text())
    assert fold.model.backbone == str(folder)


def test_a_hub_id_backbone_is_no_sweep_input(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    config = tiny_config.with_values({"model.backbone": "org/unknown-model"})
    azure = AZURE.model_copy(update={"environment": "azureml:ner-env:1"})
    job = build_azure_sweep_job(settings(), config, azure, folder=tmp_path / "sweep", data=DATA)
    assert list(job.inputs) == ["data"] and "--backbone-folder" not in job.trial.command
