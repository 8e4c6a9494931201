"""The same k-fold sweep as an Azure ML sweep job: one search space, one objective, Azure's samplers and policies.

Each Azure trial runs `python -m training.hpo.azure_trial` (this package's own entry point) on the sweep's spec
folder (`config.yaml`, `hpo.yaml`) and the data, cross-validates one parameter set and logs the metric with MLflow.
Mappings: sampler tpe/random/grid -> bayesian/random/grid; pruner median -> MedianStoppingPolicy, hyperband ->
BanditPolicy (slack factor 0.1), both delayed by `warmup_steps` evaluations; none -> no policy. Azure does not allow an
early termination policy with bayesian sampling, nor log-scale distributions: those combinations are errors.
Conditional parameters are flattened (see `search_space`). Building and writing the job needs no credentials.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError
from training.common.optional import require
from training.config.builder import load_hpo_config
from training.config.schema import AzureConfig, HPOConfig, TrainingConfig
from training.config.yaml_io import dump_yaml
from training.hpo._version import __version__
from training.hpo.search_space import AzureAlgorithm, azure_input_name, create_search_space

ALGORITHMS: dict[str, AzureAlgorithm] = {"tpe": "bayesian", "random": "random", "grid": "grid"}
BANDIT_SLACK_FACTOR = 0.1
TRIAL_MODULE = "training.hpo.azure_trial"


def build_azure_sweep_job(
    hpo_config: HPOConfig | str | os.PathLike[str],
    config: TrainingConfig,
    azure: AzureConfig,
    *,
    spec_dir: str | os.PathLike[str],
    data: str | None = None,
    environment: str | None = None,
    max_concurrent_trials: int | None = None,
) -> Any:
    """An `azure.ai.ml` `SweepJob`; writes the trial spec (`config.yaml`, `hpo.yaml`) into `spec_dir`.

    `data` is an `azureml:name:version` asset, a datastore URI or a local path (default: `azure.data_asset`, then
    `config.data.path`). `environment` names a registered environment; by default one is built from `azure.image`
    with this version of training-hpo installed by pip.
    """
    ml = require("azure.ai.ml", "training.hpo.build_azure_sweep_job")
    sweep = require("azure.ai.ml.sweep", "training.hpo.build_azure_sweep_job")
    hpo = hpo_config if isinstance(hpo_config, HPOConfig) else load_hpo_config(hpo_config)
    space = create_search_space(hpo)
    algorithm = ALGORITHMS[hpo.sampler.type]
    distributions = space.to_azure(algorithm)
    policy = _policy(sweep, hpo, algorithm)
    data = data or azure.data_asset or config.data.path
    if data is None:
        raise ConfigError("azure sweep: no data; set azure.data_asset, data.path or pass data=")
    spec = Path(spec_dir).resolve()
    atomic_write_text(spec / "config.yaml", config.with_values({"training.metric_for_best": hpo.metric}).to_yaml())
    atomic_write_text(spec / "hpo.yaml", dump_yaml(hpo.model_dump(mode="json")))
    names = {key: azure_input_name(key) for key in space.parameters if azure_input_name(key) in distributions}
    command = " ".join(
        [
            f"python -m {TRIAL_MODULE} --spec ${{{{inputs.spec}}}} --data ${{{{inputs.data}}}}",
            "--output ${{outputs.trial}}",
            *(f"--param {key}=${{{{inputs.{name}}}}}" for key, name in names.items()),
        ]
    )
    job = ml.command(
        command=command,
        inputs={
            "spec": ml.Input(type="uri_folder", path=str(spec)),
            "data": ml.Input(type="uri_file" if Path(data).is_file() else "uri_folder", path=data),
            **{name: _example(distributions[name]) for name in names.values()},
        },
        outputs={"trial": ml.Output(type="uri_folder")},
        environment=environment or _environment(azure),
        compute=azure.compute,
        instance_count=azure.instance_count,
        experiment_name=azure.experiment_name,
        display_name=f"hpo-{hpo.name}",
    )
    sweep_node = job(**distributions).sweep(
        sampling_algorithm=algorithm,
        primary_metric=hpo.metric,
        goal=hpo.direction,
        compute=azure.compute,
        early_termination_policy=policy,
    )
    sweep_node.set_limits(
        max_total_trials=hpo.n_trials,
        max_concurrent_trials=max_concurrent_trials,
        timeout=int(hpo.timeout_s) if hpo.timeout_s else None,
    )
    job = sweep_node._to_job()  # a pipeline node until converted; `load_job` rejects a node's YAML
    job.experiment_name, job.display_name = azure.experiment_name, f"hpo-{hpo.name}"  # the node drops them
    return job


def write_azure_sweep_job(job: Any, path: str | os.PathLike[str]) -> Path:
    """Write the job as YAML (the dry run): `az ml job create -f` or `azure.ai.ml.load_job` read it back."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    job.dump(target)
    return target


def submit_azure_sweep_job(job: Any, azure: AzureConfig) -> Any:
    """Submit the job to the workspace `azure` names, with the default Azure credential; returns the created job."""
    ml = require("azure.ai.ml", "training.hpo.submit_azure_sweep_job")
    identity = require("azure.identity", "training.hpo.submit_azure_sweep_job")
    missing = [name for name in ("subscription_id", "resource_group", "workspace") if getattr(azure, name) is None]
    if missing:
        raise ConfigError(f"azure: submitting a job needs {', '.join(missing)}")
    client = ml.MLClient(
        identity.DefaultAzureCredential(), azure.subscription_id, azure.resource_group, azure.workspace
    )
    return client.jobs.create_or_update(job, experiment_name=azure.experiment_name)


def _policy(sweep: Any, hpo: HPOConfig, algorithm: AzureAlgorithm) -> Any:
    if hpo.pruner.type == "none":
        return None
    if algorithm == "bayesian":
        raise ConfigError(
            f"hpo {hpo.name!r}: Azure ML bayesian sampling (sampler tpe) allows no early termination; "
            f"set pruner: none or sampler: random"
        )
    delay = hpo.pruner.warmup_steps
    if hpo.pruner.type == "median":
        return sweep.MedianStoppingPolicy(delay_evaluation=delay, evaluation_interval=1)
    return sweep.BanditPolicy(slack_factor=BANDIT_SLACK_FACTOR, delay_evaluation=delay, evaluation_interval=1)


def _environment(azure: AzureConfig) -> Any:
    entities = require("azure.ai.ml.entities", "training.hpo.build_azure_sweep_job")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    conda = {
        "name": "training-hpo",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": [f"training-hpo=={__version__}", "azureml-mlflow"]}],
    }
    return entities.Environment(image=azure.image, conda_file=conda)


def _example(distribution: Any) -> Any:
    """A value of the distribution's kind for the command's input (the sweep replaces it)."""
    values = getattr(distribution, "values", None)
    return values[0] if values else distribution.min_value
