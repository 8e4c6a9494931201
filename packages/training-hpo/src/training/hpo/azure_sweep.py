"""The same k-fold sweep as an Azure ML sweep job: one search space, one objective, Azure's samplers.

Each trial runs `python -m training.hpo.azure_trial` on the code snapshot (`config.yaml`, `hpo.yaml`) and logs the
CV mean as the primary metric. Sampler tpe/random/grid -> bayesian/random/grid; pruner median -> Azure's median
stopping policy after each fold; hyperband and multi-node trials are refused. Building needs no credentials.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError
from training.common.optional import require
from training.config.builder import load_hpo_config
from training.config.execution import AzureConfig
from training.config.hpo_schema import HPOConfig
from training.config.schema import TrainingConfig
from training.config.yaml_io import dump_yaml
from training.hpo.search_space import AzureAlgorithm, azure_input_name, create_search_space

ALGORITHMS: dict[str, AzureAlgorithm] = {"tpe": "bayesian", "random": "random", "grid": "grid"}
TRIAL_MODULE = "training.hpo.azure_trial"
TRIAL_OUTPUT = "trial"
SWEEP_FILE = "sweep_job.yaml"
# What a trial imports: the distributions whose wheels the environment installs.
SWEEP_DISTRIBUTIONS = ("training-core", "training-execution", "training-hpo")
# Trials log their metrics with MLflow, which Azure ML serves through azureml-mlflow.
TRACKING = ("mlflow-skinny", "azureml-mlflow")


def build_azure_sweep_job(
    hpo_config: HPOConfig | str | os.PathLike[str],
    config: TrainingConfig,
    azure: AzureConfig,
    *,
    folder: str | os.PathLike[str],
    data: str | None = None,
    max_concurrent_trials: int | None = None,
) -> Any:
    """An `azure.ai.ml` `SweepJob`; writes its code snapshot (`<folder>/code`: `config.yaml`,
    `hpo.yaml`) and its environment (`<folder>/environment`, unless `azure.environment` names a registered one).

    `data` is an `azureml:name:version` asset, a datastore URI or a local path (default: `azure.data_asset`, then
    `config.data.path`).
    """
    ml = require("azure.ai.ml", "training.hpo.build_azure_sweep_job")
    from training.execution.azure_environment import job_environment
    from training.execution.azure_job import BACKBONE_ARGUMENT, backbone_input, data_input

    hpo = hpo_config if isinstance(hpo_config, HPOConfig) else load_hpo_config(hpo_config)
    if max_concurrent_trials is not None and max_concurrent_trials < 1:  # the SDK writes it as given
        raise ConfigError(f"max_concurrent_trials: expected at least 1 trial at a time, got {max_concurrent_trials}")
    _check_supported(hpo, azure)
    space = create_search_space(hpo)
    space.check(config)
    algorithm = ALGORITHMS[hpo.sampler.type]
    distributions = space.to_azure(algorithm)
    data = data or azure.data_asset or config.data.path
    if data is None:
        raise ConfigError("azure sweep: no data; set azure.data_asset, data.path or pass data=")
    inputs = {"data": data_input(data), **backbone_input(config)}  # each checked before the code snapshot is replaced
    root = Path(folder).resolve()
    code = root / "code"
    shutil.rmtree(code, ignore_errors=True)
    snapshot = config.redacted().with_values({"training.metric_for_best": hpo.metric})  # a trial logs where Azure says
    atomic_write_text(code / "config.yaml", snapshot.to_yaml())
    atomic_write_text(code / "hpo.yaml", dump_yaml(hpo.model_dump(mode="json")))
    names = {key: azure_input_name(key) for key in space.parameters if azure_input_name(key) in distributions}
    command = " ".join(
        [
            f"python -m {TRIAL_MODULE} --spec . --data ${{{{inputs.data}}}} --output ${{{{outputs.{TRIAL_OUTPUT}}}}}"
            + (BACKBONE_ARGUMENT if "backbone" in inputs else ""),
            *(f"--param {key}=${{{{inputs.{name}}}}}" for key, name in names.items()),
        ]
    )
    trial = ml.command(
        code=str(code),
        command=command,
        inputs=inputs | {name: _example(distributions[name]) for name in names.values()},
        outputs={TRIAL_OUTPUT: ml.Output(type="uri_folder")},
        environment=job_environment(
            azure, SWEEP_DISTRIBUTIONS, root / "environment", backbone=config.model.backbone, extra=TRACKING
        ),
        compute=azure.compute,
        experiment_name=azure.experiment_name,
        display_name=f"hpo-{hpo.name}",
    )
    sweep_node = trial(**distributions).sweep(
        sampling_algorithm=algorithm,
        primary_metric=hpo.metric,
        goal=hpo.direction,
        compute=azure.compute,
        early_termination_policy=early_termination(hpo),
    )
    sweep_node.set_limits(
        max_total_trials=hpo.n_trials,
        max_concurrent_trials=max_concurrent_trials,
        timeout=int(hpo.timeout_s) if hpo.timeout_s else None,
    )
    job = sweep_node._to_job()  # a pipeline node until converted; `load_job` rejects a node's YAML
    job.experiment_name, job.display_name = azure.experiment_name, f"hpo-{hpo.name}"  # the node drops them
    return job  # a SweepJob offers no _validate; its YAML round trip through load_job is the check


def write_azure_sweep_job(job: Any, path: str | os.PathLike[str]) -> Path:
    """Write the job as YAML (the dry run): `az ml job create -f` or `azure.ai.ml.load_job` read it back."""
    from training.execution.azure_job import write_job_yaml

    return write_job_yaml(job, path)


def submit_azure_sweep_job(
    job: Any, azure: AzureConfig, *, folder: str | os.PathLike[str], client: Any = None, poll_interval: float = 30.0
) -> Any:
    """Submit the sweep to the workspace `azure` names (or through `client`); returns its `AzureJob` handle."""
    from training.execution.azure_client import create_azure_client
    from training.execution.azure_job import AzureJob

    service = create_azure_client(azure, client)
    service.check_compute(azure.compute)
    created = service.create_job(job)
    return AzureJob(service, created, Path(folder), Path(folder) / "status.log", poll_interval)


def early_termination(hpo: HPOConfig) -> Any:
    """Azure's policy for the pruner: median stopping on the running CV mean after each fold (None: no pruner);
    `startup_trials` and `warmup_steps` have no Azure counterpart."""
    from training.hpo.azure_trial import reports_each_fold

    if not reports_each_fold(hpo):
        return None
    from azure.ai.ml.sweep import MedianStoppingPolicy

    return MedianStoppingPolicy(delay_evaluation=0, evaluation_interval=1)


def _check_supported(hpo: HPOConfig, azure: AzureConfig) -> None:
    if hpo.pruner.type == "hyperband":
        raise ConfigError(
            f"hpo {hpo.name!r}: pruner 'hyperband': Azure sweeps have no counterpart that reads a trial's folds; "
            "use pruner: median (Azure's median stopping policy after each fold) or none"
        )
    for name, value in (
        ("instance_count", azure.instance_count),
        ("processes_per_instance", azure.processes_per_instance),
    ):
        if value != 1:
            raise ConfigError(
                f"azure.{name}: {value}: an Azure sweep trial runs its folds in one process on one node (more would "
                f"run identical copies); set {name}: 1 and raise max_concurrent_trials instead"
            )


def _example(distribution: Any) -> Any:
    """A value of the distribution's kind for the command's input (the sweep replaces it)."""
    values = getattr(distribution, "values", None)
    return values[0] if values else distribution.min_value
