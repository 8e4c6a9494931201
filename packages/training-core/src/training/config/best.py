"""`BestConfig`: what a sweep chose, with enough provenance to refit it and trace the result back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from training.common.atomic import atomic_write_text
from training.common.errors import ConfigError, expect_instance
from training.config.schema import Int, Section, TrainingConfig
from training.config.validation import read_record

BEST_CONFIG_FORMAT = 2


class StudyRef(Section):
    """The sweep trial that chose a configuration, as a refit and its lineage need it (no credentials in `storage`)."""

    study_name: str
    storage: str = Field(description="study storage URL with any password removed")
    trial_number: Int = Field(ge=0)
    trial_run: str | None = Field(default=None, description="the run that trained the trial (Azure ML child job)")
    metric: str
    direction: Literal["maximize", "minimize"]
    objective: float = Field(description="mean of the metric over the folds")
    cv_std: float = 0.0
    fold_values: tuple[float, ...] = ()
    dataset_fingerprint: str = Field(description="content fingerprint of the data the sweep ran on")


def nest_study(flat: dict[str, Any], fingerprint_key: str) -> dict[str, Any]:
    """A format-1 record (flat study fields, the data fingerprint under `fingerprint_key`) with them nested as
    `study` (None without a study name, unless the record nests one already)."""
    names = {name: name for name in StudyRef.model_fields} | {"dataset_fingerprint": fingerprint_key}
    study = {name: flat[key] for name, key in names.items() if flat.get(key) is not None}
    rest = {key: value for key, value in flat.items() if key not in names.values()}
    return rest | {"study": study if "study_name" in study else flat.get("study")}  # nested already: as it is


class BestConfig(Section):
    """The best trial of a study: its hyperparameters, the study and trial it came from, and how to refit it."""

    format: Literal[2] = BEST_CONFIG_FORMAT
    config: TrainingConfig = Field(description="the base config every trial started from")
    hyperparameters: dict[str, Any] = Field(description="dotted config keys the trial set, e.g. training.learning_rate")
    num_epochs: Int | None = Field(default=None, ge=1, description="epochs the best trial trained (refit uses them)")
    study: StudyRef
    data_path: str | None = Field(default=None, description="the data the sweep used (a refit's default data)")
    splits_path: str | None = None
    checkpoint: str | None = Field(default=None, description="model folder of the best trial, when kept")

    @model_validator(mode="before")
    @classmethod
    def _nest_format_1(cls, data: Any) -> Any:
        """Read a format-1 file (study fields at the top level) as format 2."""
        if isinstance(data, dict) and data.get("format") == 1:
            return nest_study(data, "dataset_fingerprint") | {"format": BEST_CONFIG_FORMAT}
        return data

    @property
    def backbone(self) -> str:
        return self.config.model.backbone

    def training_config(self, source: str = "hyperparameters") -> TrainingConfig:
        """The base config with the best hyperparameters (and epoch count) applied: what a refit trains; errors start
        with `source`."""
        values = dict(self.hyperparameters)
        if self.num_epochs is not None:
            values["training.num_epochs"] = self.num_epochs
        return self.config.with_values(values, source)

    def save(self, path: str | Path) -> Path:
        """Write `best_config.json` atomically."""
        return atomic_write_text(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> BestConfig:
        """Read a `best_config.json`; a missing, unreadable or invalid file (hyperparameters included) is a
        `ConfigError` naming it."""
        expected = "a BestConfig or the path of a best_config.json"  # None raised a TypeError naming nothing
        expect_instance(path, (str, os.PathLike), "best_config", expected, ConfigError)
        best = read_record(cls, path, "best-config file")
        best.training_config(f"{path}: hyperparameters")
        return best
