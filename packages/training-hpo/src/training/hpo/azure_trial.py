"""One trial of an Azure ML sweep (or of any launcher): cross-validate one parameter set, log the metric.

    python -m training.hpo.azure_trial --spec SPEC_DIR --data DATA --output OUT --param training.learning_rate=3e-5

SPEC_DIR holds the sweep's `config.yaml` and `hpo.yaml`; folds are made as a local sweep makes them. With MLflow
(`MLFLOW_TRACKING_URI`) it logs `<metric>_epoch`, `<metric>_fold` and the primary `<metric>`: the CV mean, or with a
pruner the running CV mean after each fold. OUT receives `trial.json` (also printed) and a run folder per fold.
Exit codes: 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from training.common.arguments import non_empty
from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError, InputError, TrainingError, print_error
from training.common.malloc import keep_freed_memory
from training.config.builder import load_hpo_config
from training.config.hpo_schema import HPOConfig
from training.config.schema import TrainingConfig
from training.config.validation import read_record, validate
from training.config.yaml_io import load_yaml_mapping, parse_yaml
from training.core.cv_utils import create_kfold_splits
from training.hpo.objective import TrialSpec, cross_validate, max_epochs
from training.hpo.search_space import create_search_space

TRIAL_FILE = "trial.json"
EPOCH_SUFFIX, FOLD_SUFFIX = "_epoch", "_fold"


class AzureTrialRecord(BaseModel):
    """What one Azure trial found, written as `trial.json` in its output: enough to make its `BestConfig`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    direction: Literal["maximize", "minimize"]
    objective: float
    cv_std: float
    fold_values: tuple[float, ...]
    fold_best_epochs: tuple[int | None, ...]
    hyperparameters: dict[str, Any]
    config: TrainingConfig
    dataset_fingerprint: str

    @model_validator(mode="before")
    @classmethod
    def _read_config_yaml(cls, data: Any) -> Any:
        """Records written before the config was nested held it as YAML text (`config_yaml`)."""
        if not isinstance(data, dict) or not isinstance(data.get("config_yaml"), str):
            return data  # anything else is refused by the fields' own checks, naming the field
        try:
            config = parse_yaml(data["config_yaml"], "config_yaml")
        except ConfigError as error:
            raise ValueError(str(error)) from error  # reported with the file's name, as every field's fault
        return {key: value for key, value in data.items() if key != "config_yaml"} | {"config": config}

    @classmethod
    def load(cls, path: Path) -> AzureTrialRecord:
        return read_record(cls, path, "Azure trial record")


class MetricLogger:
    """Logs each epoch as `<metric>_epoch` and, with `each_fold`, the running CV mean as the primary metric (for
    Azure's early termination); it never prunes itself."""

    def __init__(self, metric: str, mlflow: ModuleType | None, max_epochs: int, *, each_fold: bool) -> None:
        self.metric, self.mlflow, self.max_epochs, self.each_fold = metric, mlflow, max_epochs, each_fold

    def report(self, step: int, value: float) -> bool:
        fold, position = divmod(step, self.max_epochs + 1)
        if self.mlflow is None:
            return False
        if position < self.max_epochs:
            self.mlflow.log_metric(self.metric + EPOCH_SUFFIX, value, step=fold * self.max_epochs + position)
        elif self.each_fold:
            self.mlflow.log_metric(self.metric, value, step=fold)
        return False


def run_azure_trial(
    spec_dir: Path, data: Path, output: Path, params: dict[str, str], *, backbone_folder: Path | None = None
) -> AzureTrialRecord:
    """Cross-validate the sampled `params` (text values, as Azure passes them); returns the trial record.
    `backbone_folder` holds the files of the config's local backbone here (the job's mounted copy of the folder)."""
    config_file = spec_dir / "config.yaml"
    if not config_file.is_file():
        raise InputError(f"{config_file}: no such file; --spec must be a sweep spec folder")
    config = validate(TrainingConfig, load_yaml_mapping(config_file), str(config_file))
    hpo = load_hpo_config(spec_dir / "hpo.yaml")
    space = create_search_space(hpo, recorded=True)  # checked when the sweep was built
    values = space.resolve(params)
    dataset = config.data.load(data)
    splits = create_kfold_splits(
        dataset, hpo.k_folds, seed=config.training.seed, stratify=config.data.stratify, group_by=config.data.group_by
    )
    splits_path = splits.save(output / "splits.json")
    mlflow = _mlflow()
    epochs = max_epochs(space, config)
    with tempfile.TemporaryDirectory(prefix="features-") as cache:
        spec = TrialSpec(
            number=0,
            config=config.with_values(values),
            metric=hpo.metric,
            splits_path=str(splits_path),
            trial_dir=str(output),
            cache_dir=cache,
            max_epochs=epochs,
            backbone_folder=None if backbone_folder is None else str(backbone_folder),
        )
        each_fold = reports_each_fold(hpo)
        outcome = cross_validate(spec, dataset, MetricLogger(hpo.metric, mlflow, epochs, each_fold=each_fold))
    if mlflow is not None:
        for fold in outcome.folds:
            mlflow.log_metric(hpo.metric + FOLD_SUFFIX, fold.value, step=fold.fold)
        if not each_fold:
            mlflow.log_metric(hpo.metric, outcome.mean)  # once: the value Azure ranks trials by
    if hpo.keep_checkpoints == "none":
        for fold in range(hpo.k_folds):
            shutil.rmtree(output / f"fold-{fold}" / "model", ignore_errors=True)
    record = AzureTrialRecord(
        metric=hpo.metric,
        direction=hpo.direction,
        objective=outcome.mean,
        cv_std=outcome.std,
        fold_values=tuple(outcome.values),
        fold_best_epochs=tuple(fold.best_epoch for fold in outcome.folds),
        hyperparameters=values,
        config=config,
        dataset_fingerprint=dataset.fingerprint,
    )
    atomic_write_text(output / TRIAL_FILE, record.model_dump_json(indent=2) + "\n")
    return record


def reports_each_fold(hpo: HPOConfig) -> bool:
    """Whether a trial logs its running CV mean after each fold (for the sweep's early-termination policy)."""
    return hpo.pruner.type != "none"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.hpo.azure_trial", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=non_empty(Path), required=True, help="sweep spec folder (config.yaml, hpo.yaml)")
    parser.add_argument("--data", type=non_empty(Path), required=True, help="data folder or file")
    parser.add_argument(
        "--output", type=non_empty(Path), required=True, help="folder for the trial's runs and trial.json"
    )
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a sampled value")
    parser.add_argument(
        "--backbone-folder", type=non_empty(Path), help="the folder holding the files of the config's local backbone"
    )
    args = parser.parse_args(argv)
    keep_freed_memory()  # the trial's own process on its Azure node
    try:
        params = dict(_pair(text) for text in args.param)
        record = run_azure_trial(args.spec, args.data, args.output, params, backbone_folder=args.backbone_folder)
    except TrainingError as error:
        print_error(f"azure trial: error: {error}")
        return error.exit_code
    print(record.model_dump_json())
    return 0


def _pair(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise InputError(f"--param {text!r}: expected KEY=VALUE, e.g. training.learning_rate=3e-5")
    return key, value


def _mlflow() -> ModuleType | None:
    """MLflow, when installed and pointed at a tracking server (Azure ML sets MLFLOW_TRACKING_URI in its jobs)."""
    if importlib.util.find_spec("mlflow") is None or not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    import mlflow

    return mlflow


if __name__ == "__main__":
    sys.exit(main())
