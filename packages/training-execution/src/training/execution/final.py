"""`execute_final_training`: refit the best trial's configuration on all training data through a backend.

The refit trains on `train` + `validation` for the best trial's epochs without early stopping, and reports on `test`
(else a `data.holdout_fraction` hold-out; `keep_holdout=True`: the sweep's split). It keeps the last epoch's model:
the evaluation split never selects, so test scores are not optimistic.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from data.loaders import Dataset
from training.common.errors import ConfigError, DataError, expect_instance
from training.common.home import expand_home
from training.common.optional import require
from training.common.redact import redact_url, refuse_credentials, refuse_redacted
from training.config.best import BestConfig
from training.config.builder import load_execution_config
from training.config.execution import ExecutionConfig, is_local
from training.config.validation import validate
from training.core.run_folder import RunFolder
from training.execution.backends import SubprocessBackend, get_backend, process_count
from training.execution.handle import JobHandle, ProcessJob, interrupts_deferred
from training.execution.job_spec import DataPlan, JobSpec, Resources
from training.execution.lineage import Lineage
from training.execution.provenance import code_revision
from training.execution.tracking import CONFIG_SETTING, connect, log_final_run

REFIT = DataPlan(train=("train", "validation"), evaluate="test")
KEEP_HOLDOUT = DataPlan(train=("train",), evaluate="validation")


def execute_final_training(
    best_config: BestConfig | str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str],
    dataset: Dataset | None = None,
    data_path: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    nproc_per_node: int | None = None,
    execution_config: ExecutionConfig | str | os.PathLike[str] | None = None,
    keep_holdout: bool = False,
    force: bool = False,
    dry_run: bool = False,
    wait: bool = True,
    timeout: float | None = None,
    ml_client: Any = None,
    code_dir: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    registered_model_name: str | None = None,
    other_data: bool = False,
) -> JobHandle:
    """Refit `best_config` (a `BestConfig` or a `best_config.json` path) into `output_dir` and return the job.

    - Data: `dataset` (in-process only), else `data_path`, else the Azure `data_asset` (backend azure),
      else the data the sweep used (`best_config.data_path`), else the config's `data.path`. Its fingerprint must be
      the sweep's (an `InputError` naming both otherwise, before anything is written: a child process reads local data
      again), unless `other_data=True` says it is intended; the lineage then records both fingerprints.
    - Backend and processes: the arguments, else `execution_config` (a record or an `execution/<name>.yaml` path),
      else in-process with one process. torchrun refuses more processes than CUDA GPUs when it starts, not on a dry run.
      `ml_client` (an `MLClient` or `AzureClient`) applies to Azure ML; `code_dir` is the checkout whose git
      revision lineage records (default: the working directory).
    - Idempotent: a finished run of the same config and data in `output_dir` is reused and an interrupted
      one resumes; `force=True` trains again from scratch.
    - `dry_run` writes `job.json` (and the Azure job YAML) and starts nothing; `wait=False` returns once the
      job has started (in-process jobs always finish first). A failed job raises `ExecutionError` on `wait`.
    - `tracking_uri` (e.g. `sqlite:///mlflow.db`; default: the config's `tracking.mlflow` when the job is waited
      for) logs the finished run to MLflow, tagged with its lineage and the sweep's runs, its model loadable with
      `mlflow.pyfunc.load_model`, and registers the model as `registered_model_name` when given.
    """
    best = best_config if isinstance(best_config, BestConfig) else BestConfig.load(best_config)
    expect_instance(output_dir, (str, os.PathLike), "output_dir", "the path of a run folder")  # None: a TypeError
    # a Dataset here was recorded as the path of the data, its repr
    expected = "the path of the data (a Dataset in memory: dataset=), or None"
    expect_instance(data_path, (str, os.PathLike, type(None)), "data_path", expected, DataError)
    if dataset is not None:
        Dataset.check(dataset)
    RunFolder(expand_home(output_dir)).check_path()
    resources, processes_from = _resources(backend, nproc_per_node, execution_config)
    setting = "tracking_uri (--mlflow-uri)"  # in messages, where the URI came from: the argument or the config
    if tracking_uri is None and wait and not dry_run:
        tracking_uri, setting = best.config.tracking.mlflow, CONFIG_SETTING
        # an Azure sweep's: its snapshot kept no password
        refuse_redacted(tracking_uri, setting, "the best config holds it without its password", "tracking_uri")
    if tracking_uri is not None:
        if dry_run or not wait:
            raise ConfigError(f"{setting}: tracking logs a finished run; it needs wait=True and no dry_run (--dry-run)")
        connect(tracking_uri, setting)  # a bad store fails before the refit, not after
    path = _data_path(best, data_path, resources, has_dataset=dataset is not None, dry_run=dry_run)
    # The best trial's config, hyperparameters and epochs, without early stopping, keeping the last model.
    config = best.training_config().with_values({"training.early_stopping_patience": None, "training.keep": "last"})
    if path is not None and is_local(path):
        config = config.model_copy(update={"data": config.data.for_data(path, other_data=other_data)})
    hyperparameters = dict(best.hyperparameters)
    if best.num_epochs is not None:
        hyperparameters["training.num_epochs"] = best.num_epochs
    plan = KEEP_HOLDOUT if keep_holdout else REFIT
    spec = JobSpec(
        job_id=JobSpec.make_id("final", config, path, plan),
        config=config,
        data_path=path,
        output_dir=str(expand_home(output_dir).resolve()),
        data=plan,
        hyperparameters=hyperparameters,
        resources=resources,
        study=best.study.model_copy(update={"storage": redact_url(best.study.storage)}),
        other_data=other_data,
        resume=not force,
        code_revision=code_revision(code_dir),
    )
    data = dataset
    sweep_data = spec.study is not None and not other_data and not dry_run  # a dry run's data may be another machine's
    if data is None and path is not None and is_local(path) and sweep_data:
        data = spec.load_data()  # checked before job.json is written: a refused refit leaves nothing behind
    if data is not None:  # known before anything starts
        spec.check_data(data.fingerprint, "the dataset passed in" if dataset is not None else path)
    runner = get_backend(  # in process, the data just read trains; a child process reads it again
        resources.backend,
        nproc_per_node=resources.nproc_per_node,
        processes_from=processes_from,
        dataset=data if resources.backend == "local" else dataset,
        ml_client=ml_client,
    )
    del data  # not held here while a child process trains
    if resources.backend == "azure":  # data to upload, a backbone folder: refused before job.json is replaced
        from training.execution.azure_job import job_inputs

        job_inputs(spec)
    spec.save_to_output()
    if dry_run:
        return runner.prepare(spec)
    job: JobHandle | None = None
    try:
        # A child process is started and bound to `job` with interrupts held back, so that none lands between the
        # two; in process (the job is this process's work) and on Azure (an upload), Ctrl-C must reach the work.
        with interrupts_deferred() if isinstance(runner, SubprocessBackend) else contextlib.nullcontext():
            job = runner.submit(spec)
        if wait:
            job.wait(timeout)
    except KeyboardInterrupt:  # this process alone interrupted (a notebook): no orphan may go on writing the run
        if isinstance(job, ProcessJob):
            job.stop()
        raise
    if wait and tracking_uri is not None:
        lineage = extract_lineage_from_best_model(job)
        job.tracked_run = log_final_run(job.output_dir, lineage, tracking_uri, registered_model_name)
    return job


def extract_lineage_from_best_model(job_or_model_dir: JobHandle | str | os.PathLike[str]) -> Lineage:
    """The lineage of a trained model: from a job handle (waits for it to finish) or a run/model folder."""
    expected = "a JobHandle or the path of a run or model folder"
    expect_instance(job_or_model_dir, (JobHandle, str, os.PathLike), "job_or_model_dir", expected)
    if not isinstance(job_or_model_dir, JobHandle):
        return Lineage.load(job_or_model_dir)
    job = job_or_model_dir
    job.wait()
    lineage = Lineage.load(job.output_dir)
    updates = {key: value for key, value in job.lineage_updates().items() if getattr(lineage, key) != value}
    if updates:
        lineage = lineage.model_copy(update=updates)
        lineage.save(job.output_dir)
    return lineage


def _resources(
    backend: str | None, nproc_per_node: int | None, execution: ExecutionConfig | str | os.PathLike[str] | None
) -> tuple[Resources, str]:
    """Arguments win over the execution config, whose process count is its own backend's; Azure takes its processes
    per instance from its section. Also where the process count came from, for messages about it."""
    source = "execution_config" if isinstance(execution, ExecutionConfig) else str(execution)
    if not isinstance(execution, ExecutionConfig):
        execution = ExecutionConfig() if execution is None else load_execution_config(execution)
    name = backend or execution.backend
    azure = execution.azure
    if name == "azure":  # say which install is missing before anything else
        require("azure.ai.ml", "backend 'azure'")
        if azure is None:
            raise ConfigError("backend 'azure' needs execution_config with an 'azure:' section (at least 'compute')")
    own = execution.nproc_per_node if name == execution.backend else 1
    default = azure.processes_per_instance if name == "azure" and azure else own
    processes = process_count(nproc_per_node if nproc_per_node is not None else default)
    if name in ("local", "subprocess") and processes != 1:
        raise ConfigError(f"nproc_per_node={processes}: backend {name!r} runs one process; use backend 'torchrun'")
    if nproc_per_node is not None:
        source = f"nproc_per_node={processes} (--nproc-per-node {processes})"
    else:
        source = f"{source}: nproc_per_node {processes}"
    resources = validate(Resources, {"backend": name, "nproc_per_node": processes, "azure": azure}, "execution")
    return resources, source


def _data_path(
    best: BestConfig, given: str | os.PathLike[str] | None, resources: Resources, *, has_dataset: bool, dry_run: bool
) -> str | None:
    """The data to train on, as an absolute path when local (children may run elsewhere); None for a dataset in memory
    unless its path is given (the sweep's data path would be recorded as the data it trained on). The best config's
    local path must exist, unless on a dry run (its data may be another machine's)."""
    if has_dataset and given is None:
        return None
    asset = resources.azure.data_asset if resources.backend == "azure" and resources.azure else None
    path = str(given) if given is not None else asset or best.data_path or best.config.data.path
    if path is None:
        raise ConfigError("data.path: no data to train on; pass data_path (--data-path) or set it in the data config")
    refuse_credentials(path, "data path")  # job.json (an Azure job's code snapshot too) would hold it
    if given is None and not asset and is_local(path) and not dry_run and not expand_home(path).exists():
        raise DataError(  # the sweep's data, moved since: say where the path came from
            f"{path}: no such file or folder (the best config's data path); pass data_path (--data-path) where the "
            "data is now"
        )
    return str(expand_home(path).resolve()) if is_local(path) else path
