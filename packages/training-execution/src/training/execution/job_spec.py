"""`JobSpec`: everything a training job needs, given to a backend and written as `job.json` for its runner to read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from data.loaders import Dataset
from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError, DataError, InputError
from training.common.fingerprint import fingerprint
from training.common.json_files import read_json_file
from training.config.best import StudyRef
from training.config.execution import AzureConfig, BackendName
from training.config.schema import Section, TrainingConfig
from training.config.validation import validate
from training.core.run_folder import RunFolder

JOB_SPEC_FORMAT = 2
JOB_FILE = "job.json"


class DataPlan(Section):
    """Which splits of the data train the model (merged into one) and which one evaluates it; without the latter,
    `data.holdout_fraction` of the training split is held out (an error without one)."""

    train: tuple[str, ...] = ("train",)
    evaluate: str = "validation"

    def apply(self, dataset: Dataset, holdout_fraction: float | None, source: str) -> tuple[Dataset, str]:
        """The dataset `train_model` gets (`train`, plus `validation` unless it holds one out) and what evaluates."""
        if "train" not in dataset:
            raise DataError(f"{source}: the data has no 'train' split (it has {list(dataset)})")
        documents = tuple(doc for name in self.train if name in dataset for doc in dataset[name])
        evaluated_on = self.evaluated_on(dataset, holdout_fraction, source)
        splits = {"train": documents}
        if evaluated_on == self.evaluate:
            splits["validation"] = dataset[self.evaluate]
        return Dataset(splits, labels=dataset.labels, report=dataset.report), evaluated_on

    def evaluated_on(self, dataset: Dataset, holdout_fraction: float | None, source: str) -> str:
        """The split that evaluates the model, else the held-out part of train; an error when there is neither."""
        if self.evaluate in dataset and self.evaluate not in self.train:
            return self.evaluate
        if holdout_fraction is None:
            raise ConfigError(
                f"{source}: the data has no {self.evaluate!r} split to evaluate on (splits: {', '.join(dataset)}); "
                f"add a {self.evaluate} file, or set data.holdout_fraction to hold out part of the training data"
            )
        return f"holdout {holdout_fraction:g} of train"


class Resources(Section):
    """Where the job runs: the backend, processes per node, and the Azure settings for remote runs."""

    backend: BackendName = "local"
    nproc_per_node: int = Field(default=1, ge=1)
    azure: AzureConfig | None = None

    @property
    def processes(self) -> int:
        """Training processes in all: the world size that a run's batches and schedule depend on."""
        return self.nproc_per_node * (self.azure.instance_count if self.backend == "azure" and self.azure else 1)


class JobSpec(Section):
    """One training job: the resolved config, the data and how to split it, the output folder and resources."""

    format: int = JOB_SPEC_FORMAT
    job_id: str
    config: TrainingConfig
    data_path: str | None = Field(description="data folder/file, or an Azure asset (azureml:name:version, URI)")
    output_dir: str
    data: DataPlan = DataPlan()
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="dotted keys already applied")
    resources: Resources = Resources()
    study: StudyRef | None = Field(default=None, description="the sweep trial this job refits")
    other_data: bool = Field(default=False, description="the job trains on other data than the sweep's, on purpose")
    resume: bool = Field(default=True, description="reuse a finished identical run, continue an interrupted one")
    code_revision: str | None = None

    @field_validator("config")
    @classmethod
    def _without_credentials(cls, config: TrainingConfig) -> TrainingConfig:
        """The job logs nothing to MLflow (its launcher logs the finished run): its files need no password of it."""
        return config.redacted()

    @staticmethod
    def make_id(prefix: str, config: TrainingConfig, data_path: str | None, data: DataPlan) -> str:
        """A job id that names its content: equal config, data and split plan give the same id."""
        digest = fingerprint({"config": config.fingerprint, "data": data_path, "plan": data.model_dump(mode="json")})
        return f"{prefix}-{digest[:12]}"

    def load_data(self) -> Dataset:
        """Load `data_path` with the config's data settings (what the loader reported is logged by the training)."""
        if self.data_path is None:
            raise ConfigError(f"job {self.job_id}: data_path: no data given; pass --data or set it in the job spec")
        # A job's config is a sweep's or a run's (a refit's, a trained run's), and its data may be other than theirs:
        # the columns it does not take (a CoNLL corpus's positions for JSON files) are ignored, so that other data is
        # told apart by its fingerprint (`check_data`: pass --other-data), not refused for the sweep's positions.
        return self.config.data.load(self.data_path, inherited=True)

    def check_data(self, fingerprint: str, source: str) -> None:
        """Refuse data other than the sweep's (by content fingerprint), unless `other_data` says it is intended."""
        study = self.study
        if study is not None and fingerprint != study.dataset_fingerprint and not self.other_data:
            raise InputError(
                f"{source}: the data has fingerprint {fingerprint[:12]}, but study {study.study_name!r} chose its "
                f"configuration on data {study.dataset_fingerprint[:12]}; refit on the sweep's data, or pass "
                "--other-data (other_data=True) if that is intended"
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as JSON atomically."""
        return atomic_write_text(path, self.model_dump_json(indent=2) + "\n")

    @property
    def job_file(self) -> Path:
        """Where `save_to_output` writes the spec: `job.json` in its output folder."""
        return Path(self.output_dir) / JOB_FILE

    def save_to_output(self) -> Path:
        """Write the spec as `job.json` in its output folder, under the folder's writer lock (refused while another
        training writes there); a resuming job never overwrites the record of another job that began training there
        (one that failed before, as on a mistyped data path, left nothing else), nor that of the launch of this job
        that finished the run it reuses: like the run's lineage, `job.json` stays the record of what trained it."""
        target = self.job_file
        run = RunFolder(Path(self.output_dir))
        with run.writing():  # a folder that another job trains in now keeps its job.json
            if not self._reuses_finished_run(target, run):
                self.save(target)
            return target

    def _reuses_finished_run(self, target: Path, run: RunFolder) -> bool:
        """Whether the folder holds this job's finished run, recorded by an earlier launch's `job.json`. Refuse one
        that holds another job's run or a run of another config (refused by the runner too, but after this job.json
        had been left there), or this job's run on another process count."""
        if not self.resume:
            return False
        existing = JobSpec.load(target) if target.is_file() else None
        if existing is not None:
            began = (run.config, run.metrics, run.model, run.checkpoint, run.log, run.lineage)
            if existing.job_id != self.job_id and any(path.exists() for path in began):
                raise InputError(
                    f"{self.output_dir}: holds the run of job {existing.job_id}, not of {self.job_id}; choose another "
                    "output folder, or train over it (force=True, --force)"
                )
            # A finished run would be reused, an interrupted one continued, as if trained with this many processes.
            ran, processes = existing.resources.processes, self.resources.processes
            if (run.metrics.is_file() or run.checkpoint.exists()) and ran != processes:
                raise InputError(
                    f"{self.output_dir}: holds the run of job {self.job_id} on {ran} process(es), not {processes}; "
                    f"its batches and schedule depend on the count: run it with {ran}, choose another output folder, "
                    "or train over it (force=True, --force)"
                )
        record = run.read_metrics(training=True)  # a run no job made (`training train`'s)
        if record is not None and record.config_fingerprint != self.config.fingerprint:
            raise InputError(
                f"{self.output_dir}: holds a run of another config ({record.config_fingerprint[:12]}); choose another "
                "output folder, or train over it (force=True, --force)"
            )
        # A record of another folder (the run was moved here) would send the runner there: this launch's is written.
        kept = existing is not None and Path(existing.output_dir) == Path(self.output_dir)
        return kept and record is not None and record.completed

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JobSpec:
        """Read a `job.json`; a missing, unreadable or invalid file is a `ConfigError` naming it."""
        file = Path(path)
        data = read_json_file(file, "job spec")
        if isinstance(data, dict) and data.get("format") == 1:  # `other_data` was a field of the study
            study = data.get("study") or {}
            other_data = study.pop("other_data", False) if isinstance(study, dict) else False
            data = data | {"format": JOB_SPEC_FORMAT, "study": study or None, "other_data": other_data}
        if isinstance(data, dict) and data.get("format", JOB_SPEC_FORMAT) != JOB_SPEC_FORMAT:
            raise ConfigError(f"{file}: format: expected job spec format {JOB_SPEC_FORMAT}, got {data['format']!r}")
        return validate(cls, data, str(file))
