"""`training hpo azure --dry-run`: the sweep job YAML that `load_job` reads back, its code snapshot and environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from azure.ai.ml import load_job

SECRET = "env-5ecret-value"
EXECUTION = """\
backend: azure
azure:
  subscription_id: 00000000-0000-0000-0000-000000000000
  resource_group: rg-ner
  workspace: ws-ner
  compute: cpu-cluster
  experiment_name: ner-hpo
"""
HPO = """\
k_folds: 2
n_trials: 4
sampler: {type: random, seed: 1}
pruner: {type: none}
search_space:
  learning_rate: {type: loguniform, low: 3.0e-3, high: 2.0e-2}
  training.batch_size: {type: choice, values: [4, 8]}
"""


def training(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "training.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def azure_configs(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = shutil.copytree(config_dir, tmp_path_factory.mktemp("azure") / "configs")
    (folder / "execution").mkdir()
    (folder / "execution" / "azure.yaml").write_text(EXECUTION)
    (folder / "hpo" / "azure.yaml").write_text(HPO)
    return folder


@pytest.fixture(scope="module")
def dry_run(azure_configs: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    import os

    out = azure_configs.parent / "sweep out"  # a space: the printed command quotes it
    env = {**os.environ, "AZURE_CLIENT_SECRET": SECRET}
    done = training("hpo", "azure", "--config-dir", azure_configs, "--hpo", "azure", "--dry-run", "--out", out, env=env)
    return done, out


@pytest.mark.slow
def test_the_dry_run_writes_a_sweep_job_that_load_job_reads(
    dry_run: tuple[subprocess.CompletedProcess[str], Path], azure_configs: Path
) -> None:
    done, out = dry_run
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"sweep job: {out / 'sweep_job.yaml'}",
        f"submit it with: az ml job create --file '{out / 'sweep_job.yaml'}'",
    ]
    job = load_job(out / "sweep_job.yaml")
    assert job.type == "sweep" and job.objective.primary_metric == "entity_f1" and job.limits.max_total_trials == 4
    assert job.trial.command.startswith("python -m training.hpo.azure_trial --spec . --data ${{inputs.data}}")
    assert job.inputs["data"].path == str(azure_configs / "data" / "ner")  # the local folder, not an asset name
    assert Path(job.trial.environment.build.path) == out / "environment"


@pytest.mark.slow
def test_the_code_snapshot_and_environment_hold_what_the_job_runs_and_no_secret(
    dry_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = dry_run
    files = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    assert files == [
        "code/config.yaml",
        "code/hpo.yaml",
        "environment/Dockerfile",
        "environment/install.sh",
        "environment/requirements.txt",
        "environment/wheels/training_core-0.1.0-py3-none-any.whl",
        "environment/wheels/training_execution-0.1.0-py3-none-any.whl",
        "environment/wheels/training_hpo-0.1.0-py3-none-any.whl",
        "sweep_job.yaml",
    ]
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    requirements = (out / "environment" / "requirements.txt").read_text().split()
    assert "azureml-mlflow" in requirements and not any(line.startswith("training-") for line in requirements)


def test_hpo_best_needs_a_study_or_an_azure_job() -> None:
    done = training("hpo", "best")
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "hpo best: pass --study-dir (a local study) or --azure-job NAME (an Azure ML sweep)"
    )
    assert "Traceback" not in done.stderr


def test_an_unknown_execution_name_lists_the_available_ones(azure_configs: Path) -> None:
    done = training("hpo", "azure", "--config-dir", azure_configs, "--hpo", "azure", "--execution", "azur", "--dry-run")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{azure_configs / 'execution' / 'azur.yaml'}: no such execution config; did you mean 'azure'?" in (
        done.stderr
    )


def test_an_out_folder_that_is_or_lies_inside_a_file_is_named_as_the_option(azure_configs: Path) -> None:
    # It named ".../code/config.yaml: lies inside the file FILE", without --out.
    taken = azure_configs.parent / "notes.txt"
    taken.write_text("keep\n")
    expected = "expected a folder for the sweep job"
    for out, found in ((taken, "is a file"), (taken / "job", f"lies inside the file {taken}")):
        done = training("hpo", "azure", "--config-dir", azure_configs, "--hpo", "azure", "--dry-run", "--output", out)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.splitlines() == [f"training hpo azure: error: --output {out}: {found}; {expected}"]
    assert taken.read_text() == "keep\n"
