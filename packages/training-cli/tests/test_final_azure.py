"""`training final --backend azure`: `--execution NAME` is `execution/NAME.yaml` of the config folder (or a path)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from training.config import BestConfig, StudyRef, build_training_config

pytest.importorskip("azure.ai.ml")

SUBSCRIPTION = "00000000-0000-0000-0000-00000000000a"
EXECUTION = (
    f"backend: azure\nazure:\n  compute: cpu-cluster\n  workspace: ws-ner\n  resource_group: rg-ner\n"
    f"  subscription_id: {SUBSCRIPTION}\n"
)


@pytest.fixture
def azure_configs(config_dir: Path, tmp_path: Path) -> Path:
    folder = shutil.copytree(config_dir, tmp_path / "configs")
    (folder / "execution").mkdir()
    (folder / "execution" / "azure.yaml").write_text(EXECUTION)
    BestConfig(
        config=build_training_config(None, folder),
        hyperparameters={"training.learning_rate": 0.002},
        study=StudyRef(
            metric="entity_f1",
            direction="maximize",
            objective=0.5,
            trial_number=1,
            trial_run="job_1_1",
            study_name="job_1",
            storage="azureml://workspaces/ws-ner/jobs/job_1",
            dataset_fingerprint="0" * 64,
        ),
    ).save(tmp_path / "best_config.json")
    return folder


@pytest.mark.slow
def test_final_on_azure_reads_the_execution_config_by_name_or_path(
    azure_configs: Path, tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    from azure.ai.ml import load_job

    best = str(tmp_path / "best_config.json")
    by_default = cli("final", best, "--backend", "azure", "--config-dir", str(azure_configs), "--output",
                     str(tmp_path / "a"), "--dry-run", "--json")  # fmt: skip
    assert by_default.returncode == 0, by_default.stderr
    assert json.loads(by_default.stdout)["status"] == "queued"
    job = load_job(tmp_path / "a" / "azure" / "job.yaml")
    assert job.compute == "cpu-cluster" and job.tags["study.trial_run"] == "job_1_1"
    assert job.tags["study.study_name"] == "job_1"
    assert sorted(path.name for path in (tmp_path / "a" / "azure" / "code").iterdir()) == ["job.json"]

    by_path = cli("final", best, "--execution", str(azure_configs / "execution" / "azure.yaml"), "--output",
                  str(tmp_path / "b"), "--dry-run")  # fmt: skip
    assert by_path.returncode == 0, by_path.stderr
    submit = ["az", "ml", "job", "create", "--file", str(tmp_path / "b" / "azure" / "job.yaml")]
    # The subscription was left out: az took the signed-in default, maybe another one.
    workspace = ["--subscription", SUBSCRIPTION, "--resource-group", "rg-ner", "--workspace-name", "ws-ner"]
    assert by_path.stdout == shlex.join([*submit, *workspace]) + "\n"

    missing = cli("final", best, "--config-dir", str(azure_configs), "--execution", "gpu", "--output",
                  str(tmp_path / "c"), "--dry-run")  # fmt: skip
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"{azure_configs / 'execution' / 'gpu.yaml'}: no such execution config; available: azure" in missing.stderr
