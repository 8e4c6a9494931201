"""A stand-in of the Azure ML service for the Azure tests: it runs every job's real command here, in a subprocess.

`AzureStandin` implements the toolkit's narrow `AzureClient`. Each job it is given is written as YAML by the SDK
and read back with `azure.ai.ml.load_job` (what the service would receive); then its command runs with `bash -c` in
its code snapshot, `python` being this interpreter, with `${{inputs.*}}`, `${{outputs.*}}` and (for a sweep's
trials) `${{search_space.*}}` replaced, as Azure does. A sweep's trials sample the search space with a seeded random
generator and log to an MLflow store (SQLite) through `MLFLOW_TRACKING_URI` and `MLFLOW_RUN_ID`, as Azure sets them.
"""

from __future__ import annotations

import math
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.ai.ml")
mlflow = pytest.importorskip("mlflow")

from azure.ai.ml import load_job  # noqa: E402
from azure.ai.ml.entities import Job  # noqa: E402
from azure.ai.ml.sweep import Choice, LogUniform, Uniform  # noqa: E402

from training.common.errors import ConfigError  # noqa: E402
from training.execution.azure_client import ChildRun  # noqa: E402

_PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs|search_space)\.(\w+)\}\}")


class AzureStandin:
    """The service, played locally: jobs run at submission; `get_job` then reports how they ended."""

    def __init__(self, root: Path, computes: tuple[str, ...] = ("cpu-cluster",), seed: int = 0) -> None:
        self.root, self.computes, self.random = root, computes, random.Random(seed)
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.jobs: dict[str, Job] = {}
        self.statuses: dict[str, str] = {}
        self.children: dict[str, list[str]] = {}
        self.run_ids: dict[str, str] = {}
        self.commands: dict[str, str] = {}
        self.streamed: list[str] = []

    @property
    def workspace(self) -> str:
        return "ws-ner"

    def check_compute(self, name: str) -> None:
        if name not in self.computes:
            raise ConfigError(f"azure.compute: no compute target {name!r} in workspace {self.workspace!r}")

    def create_job(self, job: Job) -> Job:
        name = f"job_{len(self.jobs) + 1}"
        folder = self.root / name
        folder.mkdir(parents=True)
        from training.execution.azure_job import write_job_yaml

        loaded = load_job(write_job_yaml(job, folder / "submitted.yaml"))  # what the service receives
        loaded.name = name
        if loaded.type == "sweep":
            self._run_sweep(loaded, folder)
        else:
            loaded._status = self._run(name, loaded.command, loaded.code, loaded.inputs, {}, ())
        self.jobs[name] = loaded
        return loaded

    def get_job(self, name: str) -> Job:
        return self.jobs[name]

    def stream_job(self, name: str) -> None:
        self.streamed.append(name)
        print(f"RunId: {name}\nStatus: {self.jobs[name].status}")

    def child_runs(self, name: str) -> list[ChildRun]:
        client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        return [
            ChildRun(
                name=child,
                status=self.statuses[child],
                metrics=client.get_run(self.run_ids[child]).data.metrics,
            )
            for child in self.children[name]
        ]

    def download_output(self, name: str, output_name: str, target: Path) -> Path:
        destination = target / "named-outputs" / output_name
        shutil.copytree(self.root / name / "outputs" / output_name, destination)
        return destination

    def metric_history(self, child: str, key: str) -> list[tuple[int, float]]:
        client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        return [(m.step, m.value) for m in client.get_metric_history(self.run_ids[child], key)]

    def _run_sweep(self, sweep: Any, folder: Path) -> None:
        client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        experiment = client.get_experiment_by_name(sweep.experiment_name) or None
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(sweep.experiment_name)
        self.children[sweep.name] = []
        for index in range(sweep.limits.max_total_trials):
            child = f"{sweep.name}_{index}"
            (self.root / child).mkdir()
            self.run_ids[child] = client.create_run(experiment_id, run_name=child).info.run_id
            values = {name: self._sample(space) for name, space in sweep.search_space.items()}
            status = self._run(child, sweep.trial.command, sweep.trial.code, sweep.inputs, values, ("trial",))
            client.set_terminated(self.run_ids[child], "FINISHED" if status == "Completed" else "FAILED")
            self.statuses[child] = status
            self.children[sweep.name].append(child)
        sweep._status = "Completed"

    def _run(
        self, name: str, command: str, code: str, inputs: dict, values: dict[str, Any], outputs: tuple[str, ...]
    ) -> str:
        """Run `command` as Azure would; returns the job's final Azure status."""
        folder = self.root / name
        paths = {("outputs", out): folder / "outputs" / out for out in (*outputs, "model")}

        def replace(found: re.Match[str]) -> str:
            kind, key = found.groups()
            if kind == "search_space":
                return shlex.quote(str(values[key]))
            if kind == "outputs":
                paths[(kind, key)].mkdir(parents=True, exist_ok=True)
                return shlex.quote(str(paths[(kind, key)]))
            return shlex.quote(str(inputs[key].path).removeprefix("azureml:"))

        line = _PLACEHOLDER.sub(replace, command)
        self.commands[name] = line
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env.update(MLFLOW_TRACKING_URI=self.tracking_uri, MLFLOW_RUN_ID=self.run_ids.get(name, ""))
        with (folder / "std_log.txt").open("w") as log:
            done = subprocess.run(
                ["bash", "-c", line], cwd=str(code).removeprefix("azureml:"), env=env, stdout=log, stderr=log
            )
        return "Completed" if done.returncode == 0 else "Failed"

    def _sample(self, space: Any) -> Any:
        if isinstance(space, Choice):
            return self.random.choice(space.values)
        if isinstance(space, LogUniform):
            return math.exp(self.random.uniform(space.min_value, space.max_value))
        if isinstance(space, Uniform):
            return self.random.uniform(space.min_value, space.max_value)
        raise NotImplementedError(type(space).__name__)


@pytest.fixture
def standin(tmp_path: Path) -> AzureStandin:
    return AzureStandin(tmp_path / "service")
