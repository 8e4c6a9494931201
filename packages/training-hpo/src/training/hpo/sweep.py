"""`run_local_hpo_sweep`: a persisted, resumable k-fold Optuna sweep; `resume_hpo_sweep` continues or joins one.

After a crash the same call continues the study (a dead process's trial is re-run); any number of processes on any
hosts may work on one study, whose trial and time budget is shared.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from data.hf_datasets import HUB_PREFIX
from data.loaders import Dataset
from training.common.errors import ConfigError, DataError, InputError, TrainingError, expect_instance
from training.common.home import expand_home
from training.common.redact import redact_url
from training.common.store_urls import absolute_tracking_uri
from training.config.builder import build_training_config, load_hpo_config
from training.config.hpo_schema import Choice, Fixed, HPOConfig
from training.config.schema import TrainingConfig
from training.config.validation import validate
from training.core.cv_utils import KFoldSplits, create_kfold_splits
from training.hpo.budget import Budget
from training.hpo.devices import parse_gpus
from training.hpo.events import EventSink
from training.hpo.objective import max_epochs
from training.hpo.processes import Isolation, start_trial_processes
from training.hpo.recovery import machine_name
from training.hpo.search_space import SearchSpace, create_search_space
from training.hpo.storage import (
    check_own_study,
    existing_study,
    find_study,
    load_study,
    one_host_for_files,
    open_storage,
    recording_to,
    storage_location,
)
from training.hpo.study_folder import StudyFolder, StudyManifest
from training.hpo.sweep_settings import NewerRecordError, SweepSettings
from training.hpo.trial_runner import check_model
from training.hpo.worker import SweepWorker, check_parallel

if TYPE_CHECKING:
    from training.hpo.mlflow_tracking import SweepTracker

logger = logging.getLogger("training.hpo")

# Settings that define what a study measures; a study cannot continue with other ones.
DEFINING_SETTINGS = ("metric", "direction", "k_folds", "validation", "sampler", "pruner", "search_space")


def run_local_hpo_sweep(
    backbone: str | None = None,
    search_space: SearchSpace | HPOConfig | str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    study_dir: str | os.PathLike[str],
    config: TrainingConfig | None = None,
    config_dir: str | os.PathLike[str] | None = None,
    dataset: Dataset | None = None,
    data_path: str | os.PathLike[str] | None = None,
    hpo_config: HPOConfig | str | os.PathLike[str] | None = None,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    storage: str | None = None,
    isolation: Isolation | None = None,
    parallel_trials: int | None = None,
    study_name: str | None = None,
    gpus: Sequence[str] | None = None,
    mlflow_uri: str | None = None,
    events: EventSink | None = None,
) -> optuna.Study:
    """Run (or continue) a k-fold sweep in `study_dir` and return its Optuna study.

    `backbone` names a model config in `config_dir` or a backbone id that replaces `config.model.backbone`.
    Settings come from `hpo_config` (an `HPOConfig` or `hpo/<name>.yaml`), else from the config the search space was
    made from; `n_trials`, `timeout_s`, `storage`, `isolation` and `parallel_trials` override them. The data is
    `dataset`, else `data_path`, else the data of the study it continues, else the config's `data.path`; its `train`
    split is cross-validated. Parallel trials take the GPUs `gpus` (ids as in `CUDA_VISIBLE_DEVICES`; default: every
    visible one) round-robin.
    `mlflow_uri` (default: where the study it continues logs, else the config's `tracking.mlflow`) logs the study and
    each trial to MLflow.
    `events` receives the sweep's progress (`training.hpo.events`) as it happens.
    """
    overrides = {
        "n_trials": n_trials,
        "timeout_s": timeout_s,
        "storage": storage,
        "isolation": isolation,
        "parallel_trials": parallel_trials,
        "name": study_name,
    }
    if dataset is not None:
        Dataset.check(dataset)
    if isinstance(gpus, str):  # gpus="0,1" would be read letter by letter
        gpus = parse_gpus(gpus, "gpus")
    folder = StudyFolder(Path(expect_instance(study_dir, (str, os.PathLike), "study_dir", "a study folder's path")))
    hpo, space = _settings(search_space, hpo_config, folder.root, overrides)
    base = _base_config(backbone, config, config_dir, hpo.metric)
    space.check(base)
    location = storage_location(hpo.storage, folder)
    check_own_study(folder, hpo.name, location)  # before its storage is opened to find where it logs
    stored = _stored(folder, location, hpo.name)  # the study this sweep continues, as its resume would
    tracking_uri = stored.tracking_uri(mlflow_uri) if stored is not None else mlflow_uri or base.tracking.mlflow
    tracking = _tracking(tracking_uri, base, mlflow_uri)
    data_location = _data_location(data_path)
    if dataset is None:
        # Data moved: the config's data.path, whose fingerprint is checked below.
        recorded = stored.data_path if stored is not None and not stored.data_gone() else None
        data_location = data_location or recorded or base.data.path
        if data_location is None:
            raise InputError("no data: pass data_path (--data-path) or dataset, or set data.path in the data config")
        if stored is not None and stored.data_gone() and data_location == stored.data_path:  # nowhere else to look
            stored.check_data(folder.root, hpo.name, data_location, None)
    start_trial_processes(hpo.isolation)  # once the settings are known good
    if dataset is None:
        dataset = _load(data_location, base)
    if stored is not None:  # both named, before the folds' check
        stored.check_data(folder.root, hpo.name, data_location, dataset.fingerprint)
    check_model(base, dataset.labels, hpo.isolation, backbone, folder.root / "error.log")
    # sweeps started together on a new folder: one makes the study, the others join it
    with folder.locked(), recording_to(location):
        check_own_study(folder, hpo.name, location)  # again: another sweep may have made it meanwhile
        have_splits = folder.splits.is_file() or hpo.validation == "split"
        if have_splits:  # splits of other data are refused before the storage is touched
            _splits(folder, dataset, hpo, base)
        record = SweepSettings(
            config=base,
            config_fingerprint=base.fingerprint,
            hpo_config=hpo,
            dataset_fingerprint=dataset.fingerprint,
            data_path=data_location,
            study_dir=str(folder.root.resolve()),
            storage=redact_url(location),
            max_epochs=max_epochs(space, base),
            machine=machine_name(),
            mlflow_uri=redact_url(absolute_tracking_uri(mlflow_uri, Path.cwd())) if mlflow_uri else None,
        )
        study, stored = record.claim(hpo.name, open_storage(location, write=True), hpo.direction)
        if stored is not None:  # made before, or by a sweep started with this one (on any folder): joined if alike
            record = _joined(stored, record, folder, study.study_name)
        if (joined := record.tracking_uri(mlflow_uri)) != tracking_uri:
            tracking = _tracking(joined, base, mlflow_uri)  # a sweep started with this one made the study: log there
        Budget(n_trials=hpo.n_trials, timeout_s=hpo.timeout_s).record(study)
        manifest = StudyManifest(study_name=hpo.name, storage=redact_url(location), study_dir=record.study_dir)
        folder.write_manifest(manifest)
        if not have_splits:
            _splits(folder, dataset, hpo, base)
    return SweepWorker(
        location, study, record, folder, dataset, hpo.isolation, hpo.parallel_trials, gpus, tracking, events
    ).run()


def resume_hpo_sweep(
    study_dir: str | os.PathLike[str] | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    dataset: Dataset | None = None,
    data_path: str | os.PathLike[str] | None = None,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    isolation: Isolation | None = None,
    parallel_trials: int | None = None,
    worker: bool = False,
    gpus: Sequence[str] | None = None,
    single_host: bool = False,
    mlflow_uri: str | None = None,
    events: EventSink | None = None,
) -> optuna.Study:
    """Continue a study made by `run_local_hpo_sweep`, from its folder or from its storage URL and name.

    Everything else comes from the study itself. `n_trials`/`timeout_s` change the study's budget for every worker;
    `isolation` and `parallel_trials` (trials this process runs at once) default to the sweep's.
    A `worker` joins a study that others are running (each new trial draws from a seed of its own, so processes started
    together do not suggest the same parameters). `gpus` restricts this process's trials to those GPUs.
    A worker on another machine than the sweep's is refused on a file storage (journal, SQLite), which cannot tell a
    dead host's trials from live ones, unless `single_host` says the risk is accepted.
    `mlflow_uri` (default: the sweep's, else the `tracking.mlflow` of the study's config) logs to the study's MLflow
    parent run. `events` receives the progress.
    """
    if dataset is not None:
        Dataset.check(dataset)
    if isinstance(gpus, str):  # gpus="0,1" would be read letter by letter
        gpus = parse_gpus(gpus, "gpus")
    location, study = existing_study(study_dir, storage=storage, study_name=study_name, write=True)
    record = SweepSettings.load(study, redact_url(location))
    if worker and not single_host:
        one_host_for_files(location, record.machine)
    overrides = {"n_trials": n_trials, "timeout_s": timeout_s, "isolation": isolation}  # a bad budget is not recorded
    hpo = _with_overrides(record.hpo_config.model_dump(), overrides | {"parallel_trials": parallel_trials})
    folder = StudyFolder(Path(study_dir) if study_dir is not None else Path(record.study_dir))
    path = None if dataset is not None else _data_location(data_path) or record.data_path
    if dataset is None and path is None:
        raise InputError(
            f"study {study.study_name!r} was run on a dataset in memory; pass its data path as data_path (--data)"
        )
    if record.data_gone() and path == record.data_path:  # nowhere else to look
        record.check_data(folder.root, study.study_name, path, None, worker=worker)
    tracking = _tracking(record.tracking_uri(mlflow_uri), record.config, mlflow_uri)
    start_trial_processes(hpo.isolation)  # once the settings are known good
    if dataset is None:
        assert path is not None
        dataset = _load(path, record.config)
    record.check_data(folder.root, study.study_name, path, dataset.fingerprint, worker=worker)
    check_model(record.config, dataset.labels, hpo.isolation, None, folder.root / "error.log")  # offline: fail once
    _splits(folder, dataset, record.hpo_config, record.config)
    if n_trials is not None or timeout_s is not None:
        old = Budget.of(study)
        with recording_to(location):
            Budget(n_trials=n_trials or old.n_trials, timeout_s=timeout_s or old.timeout_s).record(study)
    return SweepWorker(
        location, study, record, folder, dataset, hpo.isolation, hpo.parallel_trials, gpus, tracking, events
    ).run()


def _tracking(
    tracking_uri: str | None, config: TrainingConfig, given: str | None
) -> Callable[[str, SweepSettings], SweepTracker] | None:
    """The sweep's MLflow tracker, given its study's name and settings (None: no tracking); its store is connected to
    once, here, before any work: a bad store stops the sweep first, naming where the URI came from."""
    if tracking_uri is None:
        return None
    from training.execution.tracking import CONFIG_SETTING, connect
    from training.hpo.mlflow_tracking import SweepTracker

    if tracking_uri == config.tracking.mlflow:
        setting = CONFIG_SETTING
    else:
        setting = "mlflow_uri (--mlflow-uri)" if tracking_uri == given else "the study's recorded mlflow_uri"
    return functools.partial(SweepTracker, connect(tracking_uri, setting), tracking_uri)


def _stored(folder: StudyFolder, location: str, name: str) -> SweepSettings | None:
    """The record of the study a sweep continues (where it logs, its data), where its storage holds one (a new study's
    storage is not created); another folder's study, or a newer release's record, is refused before the data is read."""
    study = find_study(name, location)
    if study is None:
        return None
    try:
        stored = SweepSettings.load(study, redact_url(location))
    except InputError as error:
        if isinstance(error, NewerRecordError):
            raise
        return None  # a study whose record is not saved yet (or never was): checked when it is claimed
    stored.check_study_dir(folder, name, location)
    return stored


def _settings(
    search_space: Any,
    hpo_config: HPOConfig | str | os.PathLike[str] | None,
    study_dir: Path,
    overrides: Mapping[str, Any],
) -> tuple[HPOConfig, SearchSpace]:
    """The sweep settings (with overrides applied, validated again) and the search space."""
    if search_space is None and hpo_config is None:
        raise InputError("run_local_hpo_sweep needs a search space or an hpo config")
    StudyFolder(study_dir).check_path()  # before the seconds of set-up
    space = _space(search_space if search_space is not None else hpo_config, study_dir, overrides.get("storage"))
    if isinstance(hpo_config, (str, os.PathLike)):
        hpo_config = load_hpo_config(hpo_config)
    hpo = hpo_config or space.hpo_config
    data = hpo.model_dump() if hpo is not None else {"name": study_dir.resolve().name}
    data["search_space"] = {key: parameter.model_dump() for key, parameter in space.parameters.items()}
    hpo = _with_overrides(data, overrides)
    wanted = "minimize" if hpo.metric == "loss" else "maximize"
    if hpo.direction != wanted:
        raise ConfigError(f"sweep settings: direction: {hpo.metric} must be {wanted}d, got {hpo.direction!r}")
    return hpo, space


def _space(source: Any, study_dir: Path, storage: str | None) -> SearchSpace:
    """The search space of `source`; one refused by a check added since (a one-value choice) still continues the
    study in `study_dir` that began with exactly that space, as its resume would."""
    try:
        return create_search_space(source)
    except ConfigError as refused:
        if StudyFolder(study_dir).manifest.is_file():
            with contextlib.suppress(TrainingError):  # no such study, or another space: the refusal stands
                space = create_search_space(source, recorded=True)
                stored = SweepSettings.load(load_study(study_dir, storage=storage)).hpo_config.search_space
                if stored == space.parameters:
                    return space
        raise refused from None


def _with_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> HPOConfig:
    """Sweep settings with the overrides that are given, validated again."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return check_parallel(validate(HPOConfig, data | given, "sweep settings"))


def _base_config(
    backbone: str | None,
    config: TrainingConfig | None,
    config_dir: str | os.PathLike[str] | None,
    metric: str,
) -> TrainingConfig:
    """The config every trial starts from: `backbone` applied, checkpoints chosen by the sweep's metric."""
    if config is None:
        if not isinstance(config_dir, (str, os.PathLike)):  # an int failed as a TypeError in Path()
            raise InputError(f"run_local_hpo_sweep needs config= (a TrainingConfig) or config_dir=, got {config_dir!r}")
        named = backbone is not None and (expand_home(config_dir) / "model" / f"{backbone}.yaml").is_file()
        config = build_training_config({"backbone": backbone} if named else None, config_dir)
        if named:
            backbone = None
    else:
        TrainingConfig.check(config)
    if backbone is not None and backbone not in (config.model.name, config.model.backbone):
        config = config.with_values({"model.backbone": backbone})
    return config.with_values({"training.metric_for_best": metric})


def _data_location(data_path: str | os.PathLike[str] | None) -> str | None:
    """A data path given to a sweep as the study records it: absolute, but a hub id (`hf://org/name`) kept as it is
    (a Path would fold its `//`)."""
    if data_path is None:
        return None
    location = os.fspath(data_path)
    return location if location.startswith(HUB_PREFIX) else str(expand_home(location).resolve())


def _load(path: str, config: TrainingConfig) -> Dataset:
    dataset = config.data.load(path)
    for line in dataset.report.lines():
        logger.info("%s", line)
    return dataset


def _joined(stored: SweepSettings, record: SweepSettings, folder: StudyFolder, study_name: str) -> SweepSettings:
    """The sweep `record` joining the existing study `study_name` recorded as `stored`: it must be this folder's and
    have the same config, data and settings, and goes on with its own search space (a one-value choice may come back
    fixed) and URI."""
    # Again, as it is read here: a sweep started with this one on another folder may have made it since `_stored`.
    stored.check_study_dir(folder, study_name, record.storage)
    new, old = _defining(record.hpo_config), _defining(stored.hpo_config)
    differences = [
        name
        for name, ours, theirs in (
            ("config", record.config_fingerprint, stored.config_fingerprint),
            ("data", record.dataset_fingerprint, stored.dataset_fingerprint),
            *((name, new[name], old[name]) for name in DEFINING_SETTINGS),
        )
        if ours != theirs
    ]
    if differences:
        raise InputError(
            f"{folder.root}: study {study_name!r} was run with another {', '.join(differences)}; "
            "resume it unchanged or choose another study folder"
        )
    space = {"search_space": stored.hpo_config.search_space}  # its trials go on alike (suggested or not, in the grid)
    hpo = record.hpo_config.model_copy(update=space)
    return record.model_copy(update={"hpo_config": hpo, "mlflow_uri": stored.mlflow_uri})  # it logs where it began


def _defining(hpo: HPOConfig) -> dict[str, Any]:
    """The defining settings as studies are compared by them: a choice of one value is that value fixed."""
    space = {
        key: Fixed(type="fixed", value=p.values[0], condition=p.condition)
        if isinstance(p, Choice) and len(p.values) == 1
        else p
        for key, p in hpo.search_space.items()
    }
    return {name: getattr(hpo, name) for name in DEFINING_SETTINGS} | {"search_space": space}


def _splits(folder: StudyFolder, dataset: Dataset, hpo: HPOConfig, config: TrainingConfig) -> KFoldSplits | None:
    """The study's folds, made once and saved, then reloaded; none with `validation: split`."""
    k = hpo.k_folds
    if hpo.validation == "split":
        if "validation" not in dataset or "train" not in dataset:
            raise DataError(
                f"{dataset.report.source}: hpo.validation 'split' needs a 'train' and a 'validation' split; the data "
                f"has {', '.join(dataset)} (use validation: kfold to cross-validate train)"
            )
        return None
    if folder.splits.is_file():
        splits = KFoldSplits.load(folder.splits, dataset)
        if splits.k != k:
            raise ConfigError(f"{folder.splits}: has {splits.k} folds, but the sweep asks for k_folds {k}")
        return splits
    splits = create_kfold_splits(
        dataset, k, seed=config.training.seed, stratify=config.data.stratify, group_by=config.data.group_by
    )
    splits.save(folder.splits)
    return splits
