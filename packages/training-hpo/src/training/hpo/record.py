"""`SweepRecord`: what a study stores about its sweep, so any process (a resume, a worker on another host, the best
config) can rebuild the sweep from the study alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import optuna

from training.common.errors import InputError
from training.config.schema import HPOConfig, TrainingConfig

RECORD = "sweep"
RECORD_FORMAT = 1


@dataclass(frozen=True)
class SweepRecord:
    """The base config every trial starts from, the sweep settings, the data and where the study lives."""

    config_yaml: str
    config_fingerprint: str
    hpo: dict[str, Any]
    dataset_fingerprint: str
    data_path: str | None
    study_dir: str
    storage: str
    max_epochs: int
    machine: str | None = None  # where the sweep started (`recovery.machine_name`): file storages stay on it
    format: int = RECORD_FORMAT

    @property
    def config(self) -> TrainingConfig:
        return TrainingConfig.from_yaml(self.config_yaml, f"study record of {self.study_dir}")

    @property
    def hpo_config(self) -> HPOConfig:
        return HPOConfig.model_validate(self.hpo)

    def save(self, study: optuna.Study) -> None:
        study.set_user_attr(RECORD, asdict(self))

    @classmethod
    def load(cls, study: optuna.Study) -> SweepRecord:
        """The record of a study made by `run_local_hpo_sweep`; any other study is an `InputError`."""
        data = study.user_attrs.get(RECORD)
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise InputError(
                f"study {study.study_name!r} was not made by run_local_hpo_sweep (no {RECORD!r} user attribute "
                f"of format {RECORD_FORMAT})"
            )
        return cls(**{field.name: data[field.name] for field in fields(cls) if field.name in data})
